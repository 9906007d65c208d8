"""The process survives what a client can do to it, and stops when told (issue 9, in a
subprocess: resource limits and signals are the process's own)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from ._proc import TREADLE, spawned
from ._wire import Client


class Treadle:
    """A ``python -m treadle`` child whose stderr is read by a thread, line by line."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.clients: list[Client] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.addr = (host, int(port))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # EOF
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """The first stderr line containing ``text`` (waiting for it to be written)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                assert left > 0 and "" not in self.lines, f"no {text!r} in {self.lines[-5:]}"
                self._changed.wait(left)

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def connect(self, timeout: float = 10.0) -> Client:
        client = Client(socket.create_connection(self.addr, timeout=timeout))
        self.clients.append(client)
        return client

    def wait_until_idle(self, busy: int, timeout: float = 10.0) -> None:
        """Until the server's stats say ``busy`` worker threads are at work."""
        deadline = time.monotonic() + timeout
        while True:
            stats = json.loads(
                self.connect().request(b"GET /_stats HTTP/1.1\r\nHost: t\r\n\r\n").body
            )
            if stats["busy_threads"] == busy:
                return
            assert time.monotonic() < deadline, stats
            time.sleep(0.01)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def treadle(*args: str, limits: Callable[[], None] | None = None) -> Iterator[Treadle]:
    argv = [*TREADLE, "--bind", "127.0.0.1:0", *args, "treadle.demo:app"]
    with spawned(argv, preexec_fn=limits) as (proc, url):
        server = Treadle(proc, url)
        try:
            yield server
        finally:
            for client in server.clients:
                client.close()


def _fd_limit(soft: int) -> Callable[[], None]:
    def apply() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _file_size_limit(size: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(
            resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1])
        )

    return apply


HELLO = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"


def test_defect1_file_size_limit_fails_one_upload_not_the_process() -> None:
    """``ulimit -f``: the spool file cannot grow past 256 KiB; a 1 MiB upload gets 503."""
    with treadle(limits=_file_size_limit(256 * 1024)) as server:
        client = server.connect()
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
        with suppress(OSError):  # the server may close before it has read everything
            client.send(b"x" * 1048576)
        response = client.read_response()
        assert response.status == 503
        assert server.connect().request(HELLO).status == 200
        assert server.proc.poll() is None


def test_defect3_acceptor_backs_off_at_the_fd_limit() -> None:
    """``ulimit -n 64`` and 100 connections: no spinning, no log flood, open connections served."""
    with treadle("--max-connections", "1000", limits=_fd_limit(64)) as server:
        keeper = server.connect()
        assert keeper.request(HELLO).status == 200
        crowd = [socket.create_connection(server.addr, timeout=5) for _ in range(100)]
        try:
            server.wait_for("cannot accept")
            before = server.cpu_seconds()
            slow = keeper.request(b"GET /sleep?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert slow.status == 200
            # A spinning acceptor burns a core for that whole second.
            assert server.cpu_seconds() - before < 0.3
            assert server.count("cannot accept") <= 3
        finally:
            for sock in crowd:
                sock.close()
        assert server.connect().request(HELLO).status == 200  # accepting again


def test_defect9_sigterm_right_after_the_listening_line_is_kept() -> None:
    for _ in range(3):
        with treadle() as server:
            server.proc.send_signal(signal.SIGTERM)
            try:
                assert server.proc.wait(10) == 0
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running after SIGTERM; it said {server.lines}")
            server.wait_for("stopped")


def test_defect9_sigint_after_sigterm_stops_at_once() -> None:
    with treadle("--graceful-timeout", "30", "--stats-path", "/_stats") as server:
        client = server.connect()
        client.send(b"GET /sleep?ms=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert server.connect().request(HELLO).status == 200  # the sleeper is in a worker
        server.wait_until_idle(busy=1)  # only the sleeper
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for("SIGTERM: stopping")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(10) == 0
        assert time.monotonic() - started < 10  # not the 30 s graceful timeout
        line = server.wait_for("graceful deadline")
        assert "1 cut" in line and "GET /sleep?ms=20000 HTTP/1.1" in line
        client.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_defect9_stop_is_logged_with_how_it_ended(signum: int) -> None:
    with treadle("--stats-path", "/_stats") as server:
        assert server.connect().request(HELLO).status == 200
        server.wait_until_idle(busy=0)  # the worker has finished with /hello, not just sent it
        server.proc.send_signal(signum)
        assert server.proc.wait(10) == 0
        assert "none cut" in server.wait_for("stopped")
