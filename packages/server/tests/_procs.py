"""A process tree under test: started in a session of its own, its stderr read line by line by a
thread, waited on by what it says (never a sleep), and killed whole (its process group) at the
end, so that no worker outlives a test."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ._wire import Client, Response

TREADLE = [sys.executable, "-m", "treadle"]
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")


class Tree:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.addr: tuple[str, int] = ("", 0)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def mark(self) -> int:
        """Where the log is now: ``wait_for(..., start=mark)`` looks only at what follows."""
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str, start: int = 0, timeout: float = 15.0) -> re.Match[str]:
        """The first line from ``start`` on that matches ``pattern`` (a regex)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    if match := regex.search(line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(f"no {pattern!r} in:\n{''.join(self.lines[-30:])}")
                self._changed.wait(left)

    def count(self, pattern: str, start: int = 0) -> int:
        regex = re.compile(pattern)
        with self._changed:
            return sum(1 for line in self.lines[start:] if regex.search(line))

    def listening(self) -> tuple[str, int]:
        match = self.wait_for(LISTENING.pattern)
        self.addr = (match[1], int(match[2]))
        return self.addr

    def connect(self, timeout: float = 10.0) -> Client:
        return Client(socket.create_connection(self.addr, timeout=timeout))

    def get(self, target: str = "/", timeout: float = 10.0) -> Response:
        """One request on a new connection, closed after the answer."""
        client = self.connect(timeout)
        try:
            head = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            return client.request(head.encode())
        finally:
            client.close()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        status = self.proc.wait(timeout)
        self._reader.join(timeout)
        return status


@contextlib.contextmanager
def started(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> Iterator[Tree]:
    proc = subprocess.Popen(
        [str(a) for a in argv],
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        pass_fds=tuple(pass_fds),
        start_new_session=True,  # its own process group: killed whole below
    )
    tree = Tree(proc)
    try:
        yield tree
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.stderr is not None:
            tree._reader.join(5)
            proc.stderr.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet waited for, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pids: Sequence[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.02)
