"""Where the scenarios go: a running server named by URL, or a command started here.

A command either binds port 0 and says where it listens (treadle's startup line, matched by
`listening on (http://\\S+)`), or contains `{port}`, which is replaced by a free port; then the
port is polled until it accepts a connection. Both waits are bounded, and the process is ended
(SIGTERM, then SIGKILL) when the run is over. Only the process started here is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LISTENING = re.compile(r"listening on (http://\S+)")
STARTUP_TIMEOUT = 20.0


def treadle_command(keep_alive: float = 3, timeout: float = 3) -> str:
    """treadle with 5 threads and the reflection app, on a port it picks."""
    return (
        f"{shlex.quote(sys.executable)} -m treadle --threads 5 --bind 127.0.0.1:0 "
        f"--keep-alive {keep_alive} --timeout {timeout} treadle_conformance.reflect:app"
    )


class TargetError(Exception):
    pass


@dataclass(slots=True)
class Target:
    host: str
    port: int
    name: str = "target"
    reflect: bool = False
    process: subprocess.Popen[str] | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    idle_bound: float = 12.0
    examples: int = 60

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def probe_reflect(self) -> bool:
        from treadle_conformance.wire import Wire

        try:
            with Wire(self.host, self.port, timeout=5.0) as wire:
                wire.send(b"GET /__probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                response = wire.read_response()
        except (OSError, ValueError):
            return False
        return response is not None and response.json() is not None

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def from_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise TargetError(f"only http://HOST:PORT URLs are supported, not {url!r}")
    target = Target(parts.hostname, parts.port or 80, name=url)
    target.reflect = target.probe_reflect()
    return target


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _pump(proc: subprocess.Popen[str], lines: deque[str], found: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if LISTENING.search(line):
            found.set()


def _wait_port(host: str, port: int, proc: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            # The server is not listening yet: wait on its exit for a moment, then retry.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
    raise TargetError(f"nothing accepted connections on {host}:{port} within {STARTUP_TIMEOUT}s")


@contextlib.contextmanager
def started(command: str, name: str = "", env: dict[str, str] | None = None) -> Iterator[Target]:
    """Start command, yield a Target for it, and always end the process."""
    port = free_port() if "{port}" in command else 0
    argv = shlex.split(command.replace("{port}", str(port)))
    lines: deque[str] = deque(maxlen=200)
    found = threading.Event()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    pump = threading.Thread(target=_pump, args=(proc, lines, found), daemon=True)
    pump.start()
    target = Target("127.0.0.1", port, name=name or argv[0], process=proc, output=lines)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        if port:
            _wait_port("127.0.0.1", port, proc, deadline)
        else:
            while not found.wait(0.05):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise TargetError(
                        "no 'listening on http://...' line from the server:\n" + "\n".join(lines)
                    )
            match = next(m for m in map(LISTENING.search, list(lines)) if m)
            url = urlsplit(match.group(1))
            target.host = url.hostname or "127.0.0.1"
            target.port = url.port or 80
        target.reflect = target.probe_reflect()
        yield target
    finally:
        target.stop()
        pump.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
