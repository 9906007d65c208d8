"""Scenario 6's idle keep-alive connections.

Each connection sends one real request and reads its whole answer, so the server sees a finished
keep-alive exchange (not a half-open socket waiting for its first request), then stays silent.
Opening is sequential and bounded: a per-socket timeout and an overall deadline.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from dataclasses import dataclass, field

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SOCKET_TIMEOUT = 5.0
OPEN_DEADLINE = 60.0
# scenario 6 opens this many sockets in the harness and as many in the server, plus wrk's
IDLE_CONNECTIONS_FDS = 4096


def raise_fd_limit(wanted: int = 65536) -> int:
    """Lift the soft limit on open files toward ``wanted`` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _read_response(sock: socket.socket) -> bool:
    """Read one response framed by Content-Length; True when it was a 200."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        body += chunk
    return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))


@dataclass(slots=True)
class IdleConnections:
    """Up to ``count`` idle keep-alive connections to 127.0.0.1:``port``; close() releases them."""

    port: int
    count: int
    socks: list[socket.socket] = field(default_factory=list)
    failures: int = 0

    def open(self) -> int:
        deadline = time.monotonic() + OPEN_DEADLINE
        while len(self.socks) < self.count and time.monotonic() < deadline:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), SOCKET_TIMEOUT)
            except OSError:
                self.failures += 1
                break
            try:
                sock.sendall(REQUEST)
                ok = _read_response(sock)
            except OSError:
                ok = False
            if not ok:
                sock.close()
                self.failures += 1
                break
            self.socks.append(sock)
        return len(self.socks)

    def still_open(self) -> int:
        """How many the server has not closed (a closed one reads as EOF or a reset)."""
        alive = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                if sock.recv(1):
                    alive += 1  # unexpected bytes, but the connection is there
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        return alive

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks.clear()
