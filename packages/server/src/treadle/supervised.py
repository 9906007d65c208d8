"""The worker side of ``--workers``: what a process started by the supervisor does besides
serving (the supervisor itself is ``supervisor.py``).

A worker is an ordinary ``treadle`` process, started with the supervisor's own command line and
one more environment variable, ``TREADLE_SUPERVISED`` (JSON, removed once read, like systemd's
``LISTEN_FDS``). It tells the worker

- ``fds``: the listening sockets the supervisor bound, ``[[fd, scheme], ...]``, served with
  ``fd://`` binds and ``shared_listeners`` (a stop leaves the backlog to the other workers);
- ``pipe``: the write end of a pipe to the supervisor, on which the worker writes one byte:
  ``R`` once it is ready to serve, ``M`` once it has served ``max_requests`` requests (the
  supervisor then starts its replacement, and stops this one once that one is ready);
- ``stats_fd`` and ``slot``: a ``StatsBoard`` (a file shared by all) and this worker's place
  in it, where it writes its stats every ``STATS_INTERVAL``, so that whichever worker a stats
  request reaches answers for all;
- ``ppid``: the supervisor; a worker whose supervisor is gone stops (gracefully).

Everything runs from the server's ``heartbeat`` hook, in the acceptor thread, so a worker whose
accept loop is stuck stops reporting rather than reporting that all is well.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import struct
import tempfile
import time
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass

from .server import HttpServer, Stats

error_log = logging.getLogger("treadle.error")

ENV_VAR = "TREADLE_SUPERVISED"
READY = b"R"
RECYCLE = b"M"
# How often a worker writes its stats; a stats answer is at most this old for the others.
STATS_INTERVAL = 0.5
SLOT_SIZE = 4096
_SLOT_HEAD = struct.Struct("<II")  # length of the JSON that follows, its CRC-32


class StatsBoard:
    """Every worker's latest stats, in one file of fixed-size slots.

    The supervisor opens it as an unlinked temporary file and its workers inherit the
    descriptor, so nothing is left on disk however the processes end. A worker writes its slot
    whole with one ``pwrite`` (length, CRC-32, JSON); a reader takes each slot with one
    ``pread`` and re-reads one whose checksum shows it caught a write halfway. The supervisor
    clears the slot of a worker that is gone.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def create(cls) -> StatsBoard:
        with tempfile.TemporaryFile(prefix="treadle-stats-") as file:
            return cls(os.dup(file.fileno()))

    def write(self, slot: int, stats: Stats) -> None:
        data = json.dumps(stats, separators=(",", ":")).encode()
        if len(data) > SLOT_SIZE - _SLOT_HEAD.size:
            raise ValueError(f"stats of {len(data)} bytes do not fit a slot")
        os.pwrite(self.fd, _SLOT_HEAD.pack(len(data), zlib.crc32(data)) + data, slot * SLOT_SIZE)

    def clear(self, slot: int) -> None:
        os.pwrite(self.fd, bytes(_SLOT_HEAD.size), slot * SLOT_SIZE)

    def read(self, skip: int | None = None) -> list[Stats]:
        """Every filled slot's stats but ``skip``'s, in slot order."""
        out: list[Stats] = []
        slots = -(-os.fstat(self.fd).st_size // SLOT_SIZE)
        for slot in range(slots):
            if slot == skip:
                continue
            for _ in range(3):
                raw = os.pread(self.fd, SLOT_SIZE, slot * SLOT_SIZE)
                if len(raw) < _SLOT_HEAD.size:
                    break
                length, crc = _SLOT_HEAD.unpack_from(raw)
                data = raw[_SLOT_HEAD.size : _SLOT_HEAD.size + length]
                if length == 0:
                    break
                if len(data) == length and zlib.crc32(data) == crc:
                    out.append(json.loads(data))
                    break
        return out

    def close(self) -> None:
        os.close(self.fd)


@dataclass(slots=True)
class Supervised:
    fds: list[tuple[int, str]]
    pipe: int
    board: StatsBoard | None
    slot: int
    ppid: int
    number: int
    max_requests: int | None
    _published_at: float = 0.0
    _server: HttpServer | None = None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Supervised | None:
        """The link to this process's supervisor, or None when it has none."""
        env = os.environ if environ is None else environ
        text = env.pop(ENV_VAR, None)
        if text is None:
            return None
        spec = json.loads(text)
        link = cls(
            fds=[(int(fd), str(scheme)) for fd, scheme in spec["fds"]],
            pipe=int(spec["pipe"]),
            board=StatsBoard(int(spec["stats_fd"])) if spec.get("stats_fd") is not None else None,
            slot=int(spec.get("slot", 0)),
            ppid=int(spec["ppid"]),
            number=int(spec["number"]),
            max_requests=spec.get("max_requests"),
        )
        board = [link.board.fd] if link.board is not None else []
        for fd in [link.pipe, *board, *(fd for fd, _ in link.fds)]:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)  # not for processes the app starts
        # The supervisor answers these; the terminal's job control must not stop a worker.
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, signal.SIG_IGN)
        return link

    def binds(self) -> list[str]:
        return [f"{scheme}://fd://{fd}" for fd, scheme in self.fds]

    def attach(self, server: HttpServer) -> None:
        """Give ``server`` this worker's hooks: shared listeners, heartbeat, stats for all."""
        self._server = server
        server.shared_listeners = True
        server.heartbeat = self.heartbeat
        server.request_limit = self.max_requests
        server.on_request_limit = self.recycle
        if self.board is not None:
            server.stats_source = self.all_stats

    def ready(self) -> None:
        """Listening, app imported: publish the first numbers, then tell the supervisor."""
        if self.board is not None and self._server is not None:
            self.publish(self._server.stats())
        self._tell(READY)

    def heartbeat(self) -> None:
        server = self._server
        assert server is not None
        if os.getppid() != self.ppid:
            error_log.warning("worker %d: the supervisor is gone; stopping", self.number)
            server.interrupt()
            return
        now = time.monotonic()
        if self.board is not None and now - self._published_at >= STATS_INTERVAL:
            self.publish(server.stats())

    def recycle(self) -> None:
        """--max-requests reached: ask for a replacement (this one serves on until it is
        ready, then the supervisor stops it)."""
        error_log.info("worker %d: %d requests (--max-requests): to be replaced", self.number,
                       self.max_requests)  # fmt: skip
        self._tell(RECYCLE)

    def _tell(self, message: bytes) -> None:
        with contextlib.suppress(OSError):  # the supervisor is gone; the heartbeat notices
            os.write(self.pipe, message)

    def publish(self, stats: Stats) -> None:
        assert self.board is not None
        self._published_at = time.monotonic()
        try:
            self.board.write(self.slot, {"pid": os.getpid(), **stats})
        except (OSError, ValueError) as exc:
            error_log.debug("worker %d: cannot publish stats: %s", self.number, exc)

    def all_stats(self, own: Stats) -> list[Stats]:
        """This worker's live stats and the others' latest, each with its ``pid``."""
        assert self.board is not None
        try:
            others = self.board.read(skip=self.slot)
        except (OSError, ValueError):
            others = []
        return [{"pid": os.getpid(), **own}, *others]
