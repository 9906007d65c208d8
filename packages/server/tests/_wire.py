"""A raw-socket test client with a small, strict HTTP/1.1 response reader."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent more than once"
        return values[0] if values else None


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, data: bytes, method: str = "GET") -> Response:
        self.send(data)
        return self.read_response(method)

    def _line(self) -> bytes:
        line = self.file.readline(65537)
        if not line:
            raise ConnectionError("connection closed")
        assert line.endswith(b"\r\n"), f"line not CRLF-terminated: {line!r}"
        return line[:-2]

    def read_response(self, method: str = "GET") -> Response:
        version, status, reason = self._line().decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", version
        response = Response(int(status), reason)
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            assert name and name == name.strip(), f"bad field line {line!r}"
            response.headers.append((name, value.strip()))
        if method == "HEAD" or response.status in (204, 304) or response.status < 200:
            return response
        te = response.header("Transfer-Encoding")
        cl = response.header("Content-Length")
        if te is not None:
            assert cl is None and te == "chunked"
            response.body = self._read_chunked(response)
        elif cl is not None:
            response.body = self._read_exact(int(cl))
        else:
            response.body = self.file.read()
        return response

    def _read_exact(self, size: int) -> bytes:
        data = self.file.read(size)
        assert len(data) == size, f"short body: {len(data)} of {size}"
        return data

    def _read_chunked(self, response: Response) -> bytes:
        body = b""
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                break
            body += self._read_exact(size)
            assert self._read_exact(2) == b"\r\n"
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            response.trailers.append((name, value.strip()))
        return body

    def at_eof(self) -> bool:
        """True when the server closed the connection (reads until EOF or timeout)."""
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()
