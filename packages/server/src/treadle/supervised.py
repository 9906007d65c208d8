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
- ``stats_dir``: where every worker writes its stats (``PID.json``, replaced whole every
  ``STATS_INTERVAL``), so that whichever worker a stats request reaches answers for all;
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
import time
from collections.abc import MutableMapping
from dataclasses import dataclass

from .server import HttpServer, Stats

error_log = logging.getLogger("treadle.error")

ENV_VAR = "TREADLE_SUPERVISED"
READY = b"R"
RECYCLE = b"M"
# How often a worker writes its stats file; a stats answer is at most this old for the others.
STATS_INTERVAL = 0.5
# A stats file not rewritten for this long belongs to a worker that is stuck or gone.
STATS_STALE = 10.0


@dataclass(slots=True)
class Supervised:
    fds: list[tuple[int, str]]
    pipe: int
    stats_dir: str | None
    ppid: int
    number: int
    max_requests: int | None
    _recycling: bool = False
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
            stats_dir=spec.get("stats_dir"),
            ppid=int(spec["ppid"]),
            number=int(spec["number"]),
            max_requests=spec.get("max_requests"),
        )
        for fd in [link.pipe, *(fd for fd, _ in link.fds)]:
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
        if self.stats_dir is not None:
            server.stats_source = self.all_stats

    def ready(self) -> None:
        self._tell(READY)

    def heartbeat(self) -> None:
        server = self._server
        assert server is not None
        if os.getppid() != self.ppid:
            error_log.warning("worker %d: the supervisor is gone; stopping", self.number)
            server.interrupt()
            return
        if (
            self.max_requests is not None
            and not self._recycling
            and server.requests.served >= self.max_requests
        ):
            self._recycling = True
            error_log.info(
                "worker %d: served %d requests (--max-requests): to be replaced",
                self.number,
                server.requests.served,
            )
            self._tell(RECYCLE)
        now = time.monotonic()
        if self.stats_dir is not None and now - self._published_at >= STATS_INTERVAL:
            self._published_at = now
            self.publish(server.stats())

    def _tell(self, message: bytes) -> None:
        try:
            os.write(self.pipe, message)
        except OSError:  # the supervisor is gone; the heartbeat will notice
            pass

    def publish(self, stats: Stats) -> None:
        assert self.stats_dir is not None
        pid = os.getpid()
        path = os.path.join(self.stats_dir, f"{pid}.json")
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w") as file:
                json.dump({"pid": pid, **stats}, file)
            os.replace(tmp, path)  # readers see the old numbers or the new, never half
        except OSError as exc:
            error_log.debug("worker %d: cannot write stats: %s", self.number, exc)

    def all_stats(self, own: Stats) -> list[Stats]:
        """This worker's live stats and the others' latest, each with its ``pid``."""
        assert self.stats_dir is not None
        pid = os.getpid()
        out: list[Stats] = [{"pid": pid, **own}]
        now = time.time()
        try:
            names = sorted(os.listdir(self.stats_dir))
        except OSError:
            return out
        for name in names:
            if not name.endswith(".json") or name == f"{pid}.json":
                continue
            path = os.path.join(self.stats_dir, name)
            try:
                if now - os.stat(path).st_mtime > STATS_STALE:
                    continue
                with open(path) as file:
                    stats = json.load(file)
            except (OSError, ValueError):
                continue  # gone since the listing
            if isinstance(stats, dict):
                out.append(stats)
        return out
