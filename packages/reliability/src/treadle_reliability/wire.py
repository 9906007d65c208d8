"""A small raw-socket HTTP/1.1 client: exact bytes out, one response in, every wait bounded.

The attacks need sockets they control byte by byte, so no HTTP library sits in between. A
response is read to its end (Content-Length, chunked, or close) before it counts; anything
short of that (a reset, an early EOF, the deadline) raises ``WireError`` with the reason.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

RECV = 65536
MAX_HEAD = 64 * 1024


class WireError(Exception):
    """No complete response: ``reason`` is ``timeout``, ``reset``, ``eof``, ``refused`` or
    ``garbled``; ``before_answer`` when not one byte of a response had arrived."""

    def __init__(self, reason: str, detail: str = "", before_answer: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.before_answer = before_answer


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # names lower-cased; a repeated name keeps its last value
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get(b"connection", b"").lower() == b"close"


def request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    close: bool = False,
    length: int | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A request's bytes; ``length`` declares a Content-Length other than ``len(body)`` (for
    a body that follows later, or never)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: reliability"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    elif body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Reads whole responses from one socket; bytes past a response stay for the next one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.received = 0  # bytes of responses received so far

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        nothing = self.received == 0
        if left <= 0:
            raise WireError("timeout", before_answer=nothing)
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV)
        except TimeoutError:
            raise WireError("timeout", before_answer=nothing) from None
        except OSError as exc:
            raise WireError("reset", str(exc), before_answer=nothing) from None
        if not data:
            raise WireError("eof", before_answer=nothing)
        self.received += len(data)
        self.buf += data

    def _line(self, deadline: float) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > MAX_HEAD:
                raise WireError("garbled", "line too long")
            self._fill(deadline)

    def _exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buf) < size:
            self._fill(deadline)
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def read_head(self, deadline: float) -> tuple[int, dict[bytes, bytes]]:
        """The next final (non-1xx) status and its fields."""
        while True:
            line = self._line(deadline)
            parts = line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise WireError("garbled", repr(line[:60]))
            status = int(parts[1])
            headers: dict[bytes, bytes] = {}
            while True:
                field = self._line(deadline)
                if not field:
                    break
                name, _, value = field.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200 or status == 101:
                return status, headers

    def read_response(self, deadline: float, head_request: bool = False) -> Response:
        self.received = len(self.buf)
        status, headers = self.read_head(deadline)
        if head_request or status in (204, 304):
            return Response(status, headers, b"")
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return Response(status, headers, self._chunked(deadline))
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise WireError("garbled", "content-length")
            return Response(status, headers, self._exactly(int(length), deadline))
        try:  # no framing: the body runs until the server closes
            while True:
                self._fill(deadline)
        except WireError as exc:
            if exc.reason != "eof":
                raise
        body = bytes(self.buf)
        self.buf.clear()
        return Response(status, headers, body)

    def _chunked(self, deadline: float) -> bytes:
        body = bytearray()
        while True:
            size_line = self._line(deadline).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise WireError("garbled", "chunk size") from None
            if size == 0:
                while self._line(deadline):
                    pass
                return bytes(body)
            body += self._exactly(size, deadline)
            if self._line(deadline):
                raise WireError("garbled", "chunk end")


def exchange(
    address: tuple[str, int], data: bytes, timeout: float = 5.0, head_request: bool = False
) -> Response:
    """One request on a new connection; the whole exchange (connect included) within
    ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        sock = connect(address, timeout)
    except TimeoutError:
        raise WireError("timeout", "connect") from None
    except OSError as exc:
        raise WireError("refused", str(exc)) from None
    try:
        try:
            sock.sendall(data)
        except OSError as exc:
            raise WireError("reset", f"send: {exc}") from None
        return Reader(sock).read_response(deadline, head_request)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
