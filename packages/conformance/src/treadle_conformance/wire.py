"""Raw sockets and a strict HTTP/1.1 response reader.

The harness must not trust the server under test, nor reuse its parser, so it reads responses
with its own grammar (RFC 9112 sections 4-7): a status line, CRLF-terminated field lines with no
folding, then a body framed by the table of RFC 9112 section 6.3 (no body for HEAD, 1xx, 204 and
304; chunked when Transfer-Encoding ends in chunked; Content-Length; otherwise until close).
Anything the grammar does not allow raises `ResponseError`; violations that keep the framing
readable (a Content-Length on a 204, say) are recorded on the `Response` instead, so a scenario
can report them. Bytes arriving after the responses a scenario expects are how "two responses to
one request" and "a body on a HEAD response" show up.
"""

from __future__ import annotations

import json
import random
import re
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

# status-line = HTTP-version SP status-code SP [ reason-phrase ]
# reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) ([1-9]\d\d) ([\t \x21-\x7e\x80-\xff]*)")
# field-name = token
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# field-value = *field-content, with OWS around it removed
_FIELD_VALUE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
# chunk-size [ chunk-ext ] ; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"(?:[^\"\\]|\\.)*\"))?)*)"
)

MAX_HEAD = 65536
RECV_SIZE = 65536


class ResponseError(Exception):
    """The server sent bytes that are not a valid HTTP/1.1 response."""


class Incomplete(ResponseError):
    """The connection ended (or went quiet) inside a response."""


@dataclass(frozen=True, slots=True)
class Response:
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    framing: str
    trailers: tuple[tuple[str, str], ...] = ()
    interim: tuple[int, ...] = ()
    violations: tuple[str, ...] = ()
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return ", ".join(values) if values else None

    def header_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    def has_token(self, name: str, token: str) -> bool:
        value = self.header(name) or ""
        return token.lower() in (t.strip().lower() for t in value.split(","))

    def signals_close(self) -> bool:
        """The server said it closes after this response (RFC 9112 §9.3, §9.6)."""
        if self.has_token("Connection", "close"):
            return True
        return self.version == "HTTP/1.0" and not self.has_token("Connection", "keep-alive")

    def json(self) -> dict[str, Any] | None:
        """What the reflection app saw, or None when the body is not its JSON."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(data, dict) and data.get("reflect") == "treadle-conformance":
            return data
        return None


def split_random(data: bytes, rng: random.Random) -> list[bytes]:
    pieces: list[bytes] = []
    i = 0
    top = max(2, len(data) // 4)
    while i < len(data):
        n = rng.randint(1, top)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def fragments(data: bytes, mode: str, rng: random.Random) -> list[bytes]:
    if mode == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    if mode == "random":
        return split_random(data, rng)
    return [data]


@dataclass(slots=True)
class Wire:
    """One client connection: write bytes as asked, read responses strictly."""

    host: str
    port: int
    timeout: float = 3.0
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None
    sock: socket.socket = field(init=False)
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False
    reset: bool = False
    send_error: str | None = None
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_hostname or self.host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, mode: str = "whole", rng: random.Random | None = None) -> None:
        """Send data whole, byte by byte or in random pieces; a refused write is recorded."""
        if self.send_error is not None:
            return
        for piece in fragments(data, mode, rng or random.Random(0)):
            try:
                self.sock.sendall(piece)
                self.sent += piece
            except OSError as exc:
                self.send_error = f"{type(exc).__name__}: {exc}"
                return

    def shutdown_write(self) -> None:
        if isinstance(self.sock, ssl.SSLSocket):
            # Python's SSLSocket.shutdown drops the TLS layer for reading too.
            self.send_error = "a half-close is not available over TLS"
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.send_error = f"{type(exc).__name__}: {exc}"

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False at end of stream; TimeoutError past the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            raise
        except ConnectionResetError:
            self.reset = True
            data = b""
        except ssl.SSLError:
            # A TLS peer that resets or ends without close_notify: the stream is over.
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.received += data
        return True

    def wait_readable(self, timeout: float) -> bool:
        """True when bytes (or the end of the stream) arrive within timeout."""
        if self.buf or self.eof:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(ready)

    def wait_closed(self, timeout: float) -> bool:
        """True when the server closes within timeout; bytes that arrive meanwhile stay buffered."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True

    def read_response(self, *, head: bool = False, timeout: float | None = None) -> Response | None:
        """Read one final response (skipping and recording 1xx); None on a clean close before it."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        interim: list[int] = []
        while True:
            raw_head = self._read_head(deadline, started=bool(interim))
            if raw_head is None:
                return None
            version, status, reason, headers, violations = parse_head(raw_head)
            if 100 <= status < 200 and status != 101:
                if any(n.lower() == "content-length" for n, _ in headers):
                    violations.append("Content-Length in a 1xx response (RFC 9110 8.6)")
                interim.append(status)
                if violations:
                    raise ResponseError("; ".join(violations))
                continue
            body, framing, trailers = self._read_body(status, headers, head, violations, deadline)
            return Response(
                version=version,
                status=status,
                reason=reason,
                headers=tuple(headers),
                body=body,
                framing=framing,
                trailers=tuple(trailers),
                interim=tuple(interim),
                violations=tuple(violations),
                raw_head=raw_head,
            )

    def _read_head(self, deadline: float, *, started: bool) -> bytes | None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                raw = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return raw
            if len(self.buf) > MAX_HEAD:
                raise ResponseError(
                    f"response head over {MAX_HEAD} bytes: {bytes(self.buf[:80])!r}"
                )
            try:
                more = self._fill(deadline)
            except TimeoutError:
                if self.buf or started:
                    raise Incomplete(
                        f"timed out inside a response head: {bytes(self.buf[:200])!r}"
                    ) from None
                raise
            if not more:
                if self.buf:
                    raise Incomplete(
                        f"connection closed inside a response head: {bytes(self.buf[:200])!r}"
                    )
                if started:
                    raise Incomplete("connection closed after an interim response")
                return None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            try:
                more = self._fill(deadline)
            except TimeoutError:
                raise Incomplete(f"timed out after {len(self.buf)} of {n} body bytes") from None
            if not more:
                raise Incomplete(f"connection closed after {len(self.buf)} of {n} body bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_line(self, deadline: float, what: str) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                if b"\n" in line or b"\r" in line:
                    raise ResponseError(f"bare CR or LF in {what}: {line[:80]!r}")
                return line
            if len(self.buf) > MAX_HEAD:
                raise ResponseError(f"{what} over {MAX_HEAD} bytes")
            try:
                more = self._fill(deadline)
            except TimeoutError:
                raise Incomplete(f"timed out reading {what}") from None
            if not more:
                raise Incomplete(f"connection closed inside {what}: {bytes(self.buf[:80])!r}")

    def _read_body(
        self,
        status: int,
        headers: list[tuple[str, str]],
        head: bool,
        violations: list[str],
        deadline: float,
    ) -> tuple[bytes, str, list[tuple[str, str]]]:
        lengths = [v for n, v in headers if n.lower() == "content-length"]
        codings = [
            c.strip().lower()
            for n, v in headers
            if n.lower() == "transfer-encoding"
            for c in v.split(",")
            if c.strip()
        ]
        if status in (204, 304) or head or status == 101:
            if status == 204 and lengths:
                violations.append("Content-Length in a 204 response (RFC 9110 8.6)")
            if status == 204 and codings:
                violations.append("Transfer-Encoding in a 204 response (RFC 9112 6.1)")
            return b"", "none", []
        if codings:
            if lengths:
                violations.append("both Transfer-Encoding and Content-Length (RFC 9112 6.1)")
            if codings[-1] == "chunked":
                body, trailers = self._read_chunked(deadline)
                return body, "chunked", trailers
            return self._read_to_close(deadline), "close", []
        if lengths:
            values = {v.strip() for lv in lengths for v in lv.split(",")}
            if len(lengths) > 1:
                violations.append("more than one Content-Length field (RFC 9110 8.6)")
            if len(values) != 1:
                raise ResponseError(f"conflicting Content-Length values {lengths}")
            value = values.pop()
            if not value.isascii() or not value.isdigit():
                raise ResponseError(f"invalid Content-Length {value!r}")
            return self._read_exact(int(value), deadline), "length", []
        return self._read_to_close(deadline), "close", []

    def _read_chunked(self, deadline: float) -> tuple[bytes, list[tuple[str, str]]]:
        body = bytearray()
        while True:
            line = self._read_line(deadline, "a chunk-size line")
            match = _CHUNK_LINE.fullmatch(line)
            if match is None:
                raise ResponseError(f"invalid chunk-size line {line[:80]!r}")
            size = int(match.group(1), 16)
            if size == 0:
                break
            body += self._read_exact(size, deadline)
            if self._read_exact(2, deadline) != b"\r\n":
                raise ResponseError("chunk data not followed by CRLF")
        trailers: list[tuple[str, str]] = []
        while True:
            line = self._read_line(deadline, "the trailer section")
            if not line:
                return bytes(body), trailers
            trailers.append(parse_field_line(line))

    def _read_to_close(self, deadline: float) -> bytes:
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            raise Incomplete("close-delimited body but the connection stayed open") from None
        data = bytes(self.buf)
        self.buf.clear()
        return data


def parse_field_line(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise ResponseError(f"obs-fold in a response: {line[:80]!r}")
    name, colon, value = line.partition(b":")
    if not colon or _TOKEN.fullmatch(name) is None:
        raise ResponseError(f"invalid field line {line[:80]!r}")
    value = value.strip(b" \t")
    if _FIELD_VALUE.fullmatch(value) is None:
        raise ResponseError(f"invalid field value {line[:80]!r}")
    return name.decode("ascii"), value.decode("latin-1")


def parse_head(raw: bytes) -> tuple[str, int, str, list[tuple[str, str]], list[str]]:
    """Parse a response head ending in CRLF CRLF."""
    text = raw[:-4]
    if b"\n" in text.replace(b"\r\n", b"") or b"\r" in text.replace(b"\r\n", b""):
        raise ResponseError(f"bare CR or LF in a response head: {raw[:200]!r}")
    lines = text.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise ResponseError(f"invalid status line {lines[0][:120]!r}")
    if match.group(1) != b"1":
        raise ResponseError(f"response version HTTP/{match.group(1)!r} on an HTTP/1.1 wire")
    version = f"HTTP/1.{match.group(2).decode()}"
    headers = [parse_field_line(line) for line in lines[1:]]
    return version, int(match.group(3)), match.group(4).decode("latin-1"), headers, []


def http2_settings(data: bytes) -> bool:
    """data starts with an HTTP/2 SETTINGS frame on stream 0 (RFC 9113 §4.1, §6.5): what a
    server speaking HTTP/2 with prior knowledge sends first (RFC 9113 §3.4)."""
    if len(data) < 9:
        return False
    length = int.from_bytes(data[:3], "big")
    stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
    return data[3] == 0x04 and data[4] == 0 and stream == 0 and length % 6 == 0
