"""Where the scenarios go: a running server named by URL, or a command started here.

A command either binds port 0 and says where it listens (treadle's startup line, matched by
`listening on (http://\\S+)`), or contains `{port}`, which is replaced by a free port; then the
port is polled until it accepts a connection. The command's program is looked up on PATH before
anything starts, so a missing program is one clear error, not one per scenario. Both waits are
bounded, and the process is ended (SIGTERM, then SIGKILL) when the run is over. Only the process
started here is ever signalled.

Before the first scenario, `preflight` proves the target answers HTTP at all, learns whether it
hosts the reflection app, and records the baseline answer to the sentinel request: the request
the runner sends after a scenario, on the same connection, to see what the server made of the
bytes the scenario left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from treadle_conformance.backend import Backend
from treadle_conformance.wire import Response, ResponseError, Wire

LISTENING = re.compile(r"listening on (https?://\S+)")
STARTUP_TIMEOUT = 20.0
DEFAULT_HOST = "example.test"
SENTINEL_PATH = "/__sentinel"
# Proxy mode's sentinel path, so the backend's records tell the runner's requests apart.
PROXY_SENTINEL = "/__sentinel"
# What a server says when it refuses to parse a request; anything else "accepted" it.
REFUSALS = frozenset({400, 408, 411, 413, 414, 431, 505})


def treadle_command(keep_alive: float = 3, timeout: float = 3) -> str:
    """treadle with 5 threads and the reflection app, on a port it picks."""
    return (
        f"{shlex.quote(sys.executable)} -m treadle --threads 5 --bind 127.0.0.1:0 "
        f"--keep-alive {keep_alive} --timeout {timeout} treadle_conformance.reflect:app"
    )


class TargetError(Exception):
    """The target cannot be started or does not answer: one line says why."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The waits and names a run uses; every one is a command-line option."""

    host_header: str = DEFAULT_HOST
    path: str = "/"
    timeout: float = 3.0
    close_wait: float = 2.0
    idle_bound: float = 10.0
    examples: int = 60
    insecure: bool = False
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    """How the target answers the sentinel request on a fresh connection."""

    status: int
    body_length: int
    body_sha256: str
    closes: bool
    reflect_path: str | None

    def differs(self, response: Response) -> str | None:
        """Why response is not the sentinel's usual answer, or None when it is."""
        if response.status != self.status:
            return f"status {response.status}, a fresh connection gets {self.status}"
        if self.reflect_path is not None:
            data = response.json()
            path = data.get("path") if data else None
            if path != self.reflect_path:
                return f"the app answered {path!r}, the sentinel asks for {self.reflect_path!r}"
        elif hashlib.sha256(response.body).hexdigest() != self.body_sha256:
            return f"a body of {len(response.body)} bytes, a fresh connection gets another one"
        return None


@dataclass(slots=True)
class Target:
    host: str
    port: int
    name: str = "target"
    reflect: bool = False
    interface: str = ""
    scheme: str = "http"
    process: subprocess.Popen[str] | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    settings: Settings = field(default_factory=Settings)
    baseline: Baseline | None = None
    tls: ssl.SSLContext | None = None
    # Proxy mode: the target is a reverse proxy forwarding to this recording backend.
    backend: Backend | None = None
    # Proxy + origin mode: the target is a reverse proxy in front of this server.
    origin: Target | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def idle_bound(self) -> float:
        return self.settings.idle_bound

    @property
    def examples(self) -> int:
        return self.settings.examples

    def connect(self, timeout: float | None = None) -> Wire:
        return Wire(
            self.host,
            self.port,
            timeout=self.settings.timeout if timeout is None else timeout,
            tls=self.tls,
        )

    def accepted(self, response: Response | None) -> bool:
        """The request was served: 200 from the reflection app, or no refusal from another
        server (which may well answer 404 or 405 to the harness's paths and methods)."""
        if response is None:
            return False
        if self.reflect:
            return response.status == 200
        return response.status not in REFUSALS and response.status < 500

    def saw_body(self, response: Response | None, body: str) -> bool:
        """The app received body; without the app, only that the request was served."""
        if not self.accepted(response) or response is None:
            return False
        if not self.reflect:
            return True
        data = response.json()
        return data is not None and data.get("body") == body

    def host_for(self, data: bytes) -> bytes:
        """data with --host in its first head's Host field (a body's bytes stay as counted)."""
        if self.settings.host_header == DEFAULT_HOST:
            return data
        end = data.find(b"\r\n\r\n")
        head, rest = (data, b"") if end < 0 else (data[:end], data[end:])
        new = f"Host: {self.settings.host_header}".encode("latin-1")
        return head.replace(f"Host: {DEFAULT_HOST}".encode(), new, 1) + rest

    def sentinel(self) -> bytes:
        """The request sent after a scenario; it asks the server to close after answering."""
        path = SENTINEL_PATH if self.reflect else self.settings.path
        return (
            f"GET {path} HTTP/1.1\r\nHost: {self.settings.host_header}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")

    def _ask(self, request: bytes) -> tuple[Response | None, bool]:
        with self.connect() as wire:
            wire.send(request)
            if wire.send_error:
                raise OSError(wire.send_error)
            response = wire.read_response()
            closed = wire.wait_closed(self.settings.close_wait)
        return response, closed

    def preflight(self) -> None:
        """Prove the target answers, learn whether it hosts the app, and record the baseline."""
        probe = (
            f"GET /__probe HTTP/1.1\r\nHost: {self.settings.host_header}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        try:
            response, _ = self._ask(probe)
        except TimeoutError:
            raise TargetError(
                f"{self.url} accepted a connection but sent no response within "
                f"{self.settings.timeout}s"
            ) from None
        except (OSError, ResponseError) as exc:
            raise TargetError(f"{self.url} does not answer: {_why(exc)}") from None
        if response is None:
            raise TargetError(f"{self.url} closed the connection without answering a GET")
        seen = response.json()
        self.reflect = seen is not None
        self.interface = str(seen.get("interface", "wsgi")) if seen is not None else ""
        try:
            sentinel, closes = self._ask(self.sentinel())
        except (OSError, ResponseError) as exc:
            raise TargetError(f"{self.url} does not answer the sentinel: {_why(exc)}") from None
        if sentinel is None:
            raise TargetError(f"{self.url} closed without answering the sentinel request")
        self.baseline = Baseline(
            status=sentinel.status,
            body_length=len(sentinel.body),
            body_sha256=hashlib.sha256(sentinel.body).hexdigest(),
            closes=closes,
            reflect_path=SENTINEL_PATH if self.reflect else None,
        )

    def alive(self) -> str | None:
        """None while the target still accepts connections; otherwise what happened to it."""
        proc = self.process
        if proc is not None and proc.poll() is not None:
            return f"the server process exited with status {proc.returncode}"
        behind = self.origin.alive() if self.origin is not None else None
        if behind is not None:
            return f"the origin behind the proxy is gone: {behind}"
        try:
            with socket.create_connection((self.host, self.port), timeout=self.settings.timeout):
                return None
        except OSError as exc:
            return f"{self.url} no longer accepts connections: {_why(exc)}"

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


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ResponseError) else text


def tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def from_url(url: str, settings: Settings | None = None) -> Target:
    """A Target for a running server; nothing is sent until `preflight`."""
    settings = settings or Settings()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"only http:// and https:// URLs are supported, not {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetError(f"bad port in {url!r}: {exc}") from None
    tls = tls_context(settings) if parts.scheme == "https" else None
    return Target(parts.hostname, port, name=url, scheme=parts.scheme, settings=settings, tls=tls)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While in this block, SIGTERM stops the run as Ctrl-C does (KeyboardInterrupt), so the
    servers and proxies it started are ended, not orphaned. For a program's main function."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def resolve(argv: list[str], env: dict[str, str]) -> list[str]:
    """argv with its program found on PATH (the tox env's bin first, then the user's PATH)."""
    if not argv:
        raise TargetError("--server-cmd is empty")
    program = argv[0]
    if os.sep in program:
        if not os.access(program, os.X_OK):
            raise TargetError(f"cannot start the server: {program!r} is not an executable file")
        return argv
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise TargetError(
            f"cannot start the server: {program!r} was not found on PATH "
            "(install it, or give its full path in --server-cmd)"
        )
    return [found, *argv[1:]]


def _pump(proc: subprocess.Popen[str], lines: deque[str], found: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if LISTENING.search(line):
            found.set()


def _exited(proc: subprocess.Popen[str], lines: deque[str]) -> TargetError:
    tail = " | ".join(list(lines)[-3:])
    return TargetError(
        f"the server exited with status {proc.returncode}" + (f": {tail}" if tail else "")
    )


def _wait_port(host: str, port: int, proc: subprocess.Popen[str], lines: deque[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _exited(proc, lines)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            # The server is not listening yet: wait on its exit for a moment, then retry.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
    raise TargetError(f"nothing accepted connections on {host}:{port} within {STARTUP_TIMEOUT}s")


@contextlib.contextmanager
def started(
    command: str,
    name: str = "",
    env: dict[str, str] | None = None,
    settings: Settings | None = None,
    port: int = 0,
) -> Iterator[Target]:
    """Start command, yield a Target for it (not yet pre-flighted), and always end the process.

    `port`: the command listens there (its configuration says so); otherwise `{port}` in the
    command is replaced by a free port, or the command prints where it listens."""
    settings = settings or Settings()
    if not port and "{port}" in command:
        port = free_port()
    full_env = {**os.environ, **(env or {})}
    argv = resolve(shlex.split(command.replace("{port}", str(port))), full_env)
    lines: deque[str] = deque(maxlen=200)
    found = threading.Event()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=full_env,
        )
    except OSError as exc:
        raise TargetError(f"cannot start the server: {_why(exc)}") from None
    pump = threading.Thread(target=_pump, args=(proc, lines, found), daemon=True)
    pump.start()
    target = Target(
        "127.0.0.1",
        port,
        name=name or os.path.basename(argv[0]),
        process=proc,
        output=lines,
        settings=settings,
    )
    try:
        if port:
            _wait_port("127.0.0.1", port, proc, lines)
        else:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not found.wait(0.05):
                if proc.poll() is not None:
                    raise _exited(proc, lines)
                if time.monotonic() > deadline:
                    raise TargetError(
                        "no 'listening on http://...' line from the server within "
                        f"{STARTUP_TIMEOUT}s and no {{port}} in the command"
                    )
            match = next(m for m in map(LISTENING.search, list(lines)) if m)
            url = urlsplit(match.group(1))
            target.host = url.hostname or "127.0.0.1"
            target.port = url.port or 80
            if url.scheme == "https":
                target.scheme, target.tls = "https", tls_context(settings)
        yield target
    finally:
        target.stop()
        pump.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
