"""Proxy mode's origin: a raw backend that records the exact bytes a proxy forwards.

A reverse proxy under test forwards to this server. Each connection is read with a small framing
reader of the harness's own (head up to the blank line; body by chunked when Transfer-Encoding
ends in chunked, else by a Content-Length whose values all agree, else none), and every request
it finds is recorded byte for byte as a `Forwarded` and answered with the same marker response,
so the sentinel request has a fixed answer (no body after a HEAD); the answer names the path it
answers in `X-Backend-Path`. A request for `/__backend/KIND` is answered wrongly on purpose
instead (see `splicing`). A request whose framing cannot be read is recorded
with what arrived, answered 400, and the connection closed. The backend knows nothing of the
scenario: `mark()` before a scenario and `since(mark)` after it give what that scenario caused.

`forwarded_issues` is the judge of one forwarded request, pure over its bytes: a proxy must not
pass on a message in a form the next parser may read differently (RFC 9112 §6.3, §5.2, §2.2;
RFC 9110 §5.5).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from treadle_conformance.splicing import PATH_HEADER, PREFIX, answers

MARKER = b"treadle-conformance backend\n"
SEQ_HEADER = "X-Backend-Seq"
_LAST_CHUNK_TIMEOUT = 10.0
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?")
_DIGITS = re.compile(rb"[0-9]+")
_TOKEN = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One request as it reached the backend: `head` up to and with the blank line, `body` as
    framed (chunked bodies raw, with their chunk lines), `complete` False when the connection
    ended or the framing could not be read before the request was whole."""

    connection: int
    seq: int
    head: bytes
    body: bytes
    complete: bool = True
    error: str = ""

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\n", 1)[0].rstrip(b"\r")

    @property
    def path(self) -> str:
        parts = self.request_line.split(b" ")
        return parts[1].decode("latin-1") if len(parts) >= 2 else ""

    @property
    def method(self) -> str:
        return self.request_line.split(b" ", 1)[0].decode("latin-1")

    def fields(self) -> list[tuple[bytes, bytes]]:
        """(name, value) pairs as sent, names lower-cased; continuation lines kept raw."""
        lines = re.split(rb"\r?\n", self.head)[1:]
        out = []
        for line in lines:
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if sep:
                out.append((name.lower(), value.strip(b" \t")))
        return out

    def describe(self) -> str:
        state = "" if self.complete else f" (incomplete: {self.error})"
        return f"{self.request_line[:80]!r} + {len(self.body)} body bytes{state}"


def forwarded_issues(request: Forwarded) -> list[str]:
    """Why this forwarded request is ambiguous to the next parser; empty when it is not."""
    issues: list[str] = []
    head = request.head
    fields = request.fields()
    names = [n for n, _ in fields]
    body_head = head[:-4] if head.endswith(b"\r\n\r\n") else head
    if re.search(rb"(?<!\r)\n", body_head) or re.search(rb"\r(?!\n)", body_head):
        issues.append("a bare LF or CR in the forwarded head (RFC 9112 §2.2)")
    if b"\x00" in head:
        issues.append("a NUL in the forwarded head (RFC 9110 §5.5)")
    if re.search(rb"\r?\n[ \t]", body_head):
        issues.append("obs-fold forwarded, not replaced by SP (RFC 9112 §5.2)")
    for line in re.split(rb"\r?\n", body_head)[1:]:
        name = line.split(b":", 1)[0]
        if line[:1] not in (b" ", b"\t") and b":" in line and name != name.rstrip(b" \t"):
            issues.append(f"whitespace before the colon forwarded: {line[:60]!r} (RFC 9112 §5.1)")
    te = [v for n, v in fields if n == b"transfer-encoding"]
    cl = [v for n, v in fields if n == b"content-length"]
    if te and cl:
        issues.append(
            "both Transfer-Encoding and Content-Length forwarded: an intermediary MUST remove "
            "the Content-Length first (RFC 9112 §6.3)"
        )
    if len(cl) > 1 or any(not _DIGITS.fullmatch(v) for v in cl):
        issues.append(f"Content-Length forwarded as {cl!r}, not one decimal value (RFC 9112 §6.3)")
    if te and (why := _te_trouble(te)):
        issues.append(f"Transfer-Encoding forwarded as {te!r}: {why} (RFC 9112 §6.1)")
    if any(n != n.strip() or not n for n in names):
        issues.append("a field name with whitespace forwarded (RFC 9112 §5.1)")
    return issues


def _te_trouble(values: list[bytes]) -> str | None:
    """Why Transfer-Encoding field values, combined into one list, are not a plain coding list
    ending in one chunked; None when they are. The list grammar is RFC 9110 §5.6.1's: OWS
    around commas and empty elements are allowed ("chunked," is chunked), so a conforming next
    parser reads such a value one way and it is not flagged."""
    elements = [e.strip(b" \t") for v in values for e in v.split(b",")]
    codings = [e.lower() for e in elements if e]
    if any(not _TOKEN.fullmatch(c) for c in codings):
        return "not a list of transfer-coding names (obfuscated)"
    if codings.count(b"chunked") > 1:
        return "chunked twice (a sender MUST NOT apply it more than once)"
    if codings and codings[-1] != b"chunked":
        return "chunked is not the final coding, so the request cannot be framed"
    return None


def judge_forwarded(requests: list[Forwarded], most: int, sentinel_path: str) -> str | None:
    """Why what reached the backend for one scenario shows a desync or an ambiguity the proxy
    passed on; None when it does not. `most`: how many requests a correct reading of the
    client's bytes finds; requests for `sentinel_path` (and under it) are the runner's own."""
    own = [r for r in requests if not r.path.startswith(sentinel_path)]
    reasons = [
        f"forwarded {r.describe()}: " + "; ".join(issues)
        for r in own
        if (issues := forwarded_issues(r))
    ]
    reasons += [
        f"the smuggled request reached the backend as a request: {r.describe()}"
        for r in own
        if r.path.startswith("/smuggled")
    ]
    if len(own) > most:
        seen = ", ".join(r.describe() for r in own)
        reasons.append(f"{len(own)} requests reached the backend, the client sent {most}: {seen}")
    return " / ".join(reasons) or None


def describe_all(requests: list[Forwarded]) -> str:
    if not requests:
        return "nothing forwarded"
    return f"{len(requests)} forwarded: " + "; ".join(r.describe() for r in requests)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def more(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def until(self, marker: bytes) -> bytes | None:
        while (end := self.buf.find(marker)) < 0:
            if not self.more():
                return None
        out, self.buf = self.buf[: end + len(marker)], self.buf[end + len(marker) :]
        return out

    def exactly(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self.more():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _chunked(reader: _Reader) -> tuple[bytes, str]:
    """The raw chunked body and an error ("" when it was read whole)."""
    raw = b""
    while True:
        line = reader.until(b"\r\n")
        if line is None:
            return raw, "the connection ended in a chunk-size line"
        raw += line
        match = _CHUNK_SIZE.fullmatch(line[:-2])
        if match is None:
            return raw, f"an unreadable chunk-size line {line[:40]!r}"
        size = int(match.group(1), 16)
        if size == 0:
            while True:
                trailer = reader.until(b"\r\n")
                if trailer is None:
                    return raw, "the connection ended in the trailer section"
                raw += trailer
                if trailer == b"\r\n":
                    return raw, ""
        data = reader.exactly(size + 2)
        if data is None:
            return raw + reader.buf, "the connection ended inside a chunk"
        raw += data
        if not data.endswith(b"\r\n"):
            return raw, "chunk data not followed by CRLF"


class Backend:
    """The recording backend, on 127.0.0.1 at `port` (0: a free one); a thread per connection."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self._records: list[Forwarded] = []
        self._lock = threading.Lock()
        self._connections = 0
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> Backend:
        self._acceptor.start()
        return self

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._acceptor.join(5)

    def mark(self) -> int:
        with self._lock:
            return len(self._records)

    def since(self, mark: int) -> list[Forwarded]:
        with self._lock:
            return list(self._records[mark:])

    def _record(self, request: Forwarded) -> None:
        with self._lock:
            self._records.append(request)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
                number = self._connections
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, connection: int) -> None:
        sock.settimeout(_LAST_CHUNK_TIMEOUT)
        reader = _Reader(sock)
        seq = 0
        with sock, contextlib.suppress(OSError):
            while True:
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    if reader.buf:
                        self._record(Forwarded(connection, seq, reader.buf, b"", False, "no head"))
                    return
                seq += 1
                request = self._read_body(reader, connection, seq, head)
                self._record(request)
                if not request.complete:
                    sock.sendall(_answer(400, seq, request.path, close=True))
                    return
                sock.sendall(_respond(request))

    @staticmethod
    def _read_body(reader: _Reader, connection: int, seq: int, head: bytes) -> Forwarded:
        partial = Forwarded(connection, seq, head, b"")
        fields = partial.fields()
        te = [v for n, v in fields if n == b"transfer-encoding"]
        cl = {item.strip() for n, v in fields if n == b"content-length" for item in v.split(b",")}
        # Empty list elements are ignored (RFC 9110 §5.6.1): "chunked," is chunked.
        codings = [c.strip().lower() for c in b",".join(te).split(b",") if c.strip()]
        if codings and codings[-1] == b"chunked":
            body, error = _chunked(reader)
            return Forwarded(connection, seq, head, body, not error, error)
        if te:
            return Forwarded(connection, seq, head, b"", False, "a transfer coding without chunked")
        if not cl:
            return partial
        if len(cl) != 1 or not _DIGITS.fullmatch(next(iter(cl))):
            return Forwarded(connection, seq, head, b"", False, "an invalid Content-Length")
        length = int(next(iter(cl)))
        data = reader.exactly(length)
        if data is None:
            return Forwarded(connection, seq, head, reader.buf, False, "the body was cut short")
        return Forwarded(connection, seq, head, data)


def _respond(request: Forwarded) -> bytes:
    ordinary = _answer(200, request.seq, request.path, head=request.method == "HEAD")
    if request.path.startswith(PREFIX):
        return answers(request.path[len(PREFIX) :], ordinary, request.path) or ordinary
    return ordinary


def _answer(status: int, seq: int, path: str, close: bool = False, head: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request"}[status]
    text = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(MARKER)}\r\n{SEQ_HEADER}: {seq}\r\n"
    )
    # The path as it arrived, made safe for a field value.
    text += f"{PATH_HEADER}: " + "".join(c if " " < c < "\x7f" else "?" for c in path) + "\r\n"
    if close:
        text += "Connection: close\r\n"
    return text.encode("latin-1") + b"\r\n" + (b"" if head else MARKER)


@contextlib.contextmanager
def running(port: int = 0) -> Iterator[Backend]:
    backend = Backend(port).start()
    try:
        yield backend
    finally:
        backend.close()
