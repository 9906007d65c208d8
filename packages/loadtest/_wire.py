"""Raw sockets for the clients Locust's HTTP clients cannot be: attackers and newcomers.

A newcomer opens a fresh connection, sends one whole request and reads the answer's head; the
attackers open connections and then misbehave on them (see starvation.py). Under Locust the
standard library is patched for gevent, so these block only their own greenlet.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

TCP_ESTABLISHED = 1
MAX_HEAD = 64 * 1024
SMALL_RCVBUF = 4096  # a client that never reads: keep what the kernel reads for it small


class BadAnswer(Exception):
    """The server answered, but not with a 2xx status."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"want an http://HOST:PORT URL, got {url!r}")
        return cls(parts.hostname, parts.port or 80)

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def connect(self, timeout: float | None = None, rcvbuf: int = 0) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def head(self, method: str, path: str, *fields: str) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.authority}", *fields]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def ask(target: Target, path: str, timeout: float) -> int:
    """One request on a fresh connection; the answer's length so far. Raises when not 2xx."""
    with target.connect(timeout) as sock:
        sock.sendall(target.head("GET", path, "Connection: close"))
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < MAX_HEAD:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    status = buf.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.") or status[9:10] != b"2":
        raise BadAnswer(status.decode("latin-1", "replace")[:80] or "closed without an answer")
    return len(buf)


def established(sock: socket.socket) -> bool:
    """Is the connection still up, without reading from it? (The peer has not closed it.)"""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return True
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 1)[0] == TCP_ESTABLISHED
    except OSError:
        return False
