"""Start treadle (or a Python snippet that serves) in a subprocess; readiness is its own
startup line, never a sleep."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ._wire import Client, Response

LISTENING = re.compile(r"listening on (\S+)")
TREADLE = [sys.executable, "-m", "treadle"]


@contextmanager
def spawned(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    ready: re.Pattern[str] | None = LISTENING,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Yield the process and what ``ready`` captured from its stderr (the first bound address,
    by default); kill it on the way out if it is still running."""
    proc = subprocess.Popen(
        [str(a) for a in argv],
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        pass_fds=tuple(pass_fds),
        preexec_fn=preexec_fn,  # noqa: PLW1509 -- tests pass setrlimit calls only
    )
    try:
        assert proc.stderr is not None
        found = ""
        if ready is not None:
            seen = []
            for line in proc.stderr:
                seen.append(line)
                if match := ready.search(line):
                    found = match[1]
                    break
            else:
                raise AssertionError(f"no startup line; stderr: {''.join(seen)}")
        yield proc, found
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@contextmanager
def notify_socket(directory: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """What systemd listens on for ``sd_notify``: a datagram socket, and the environment
    (``NOTIFY_SOCKET`` set) for the process that is to notify it."""
    path = directory / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        yield sock, {**os.environ, "NOTIFY_SOCKET": str(path)}


def unix_get(path: str | Path, target: str = "/hello") -> Response:
    """One GET over a Unix socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    client = Client(sock)
    try:
        return client.request(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    finally:
        client.close()
