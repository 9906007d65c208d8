"""A tiny HTTP/1.1 server that is strict by default and lax on request, to prove the vectors.

With no flags it parses RFC 9112's grammar and answers like the reflection app (JSON naming the
method, path, headers and body). Each flag turns on one leniency that real parsers have had;
a vector's test turns on the flag and checks that the harness calls the result unsafe or a
miss. Flags:

    lf              a bare LF ends a line          cr              a bare CR ends a line too
    rl-split        request-line split on any whitespace (str.split)
    fold-new        a continuation line is a new field line
    name-strip      field names through str.strip() (NEL, NBSP, ... vanish)
    strip           field values through str.strip()
    exact-names     only exact-case Transfer-Encoding / Content-Length are framing fields
    te-first        only the first Transfer-Encoding field counts
    te-substring    chunked when the value contains "chunked"
    te-exact        chunked only when the value is exactly "chunked"; otherwise no body
    te-over-cl      Transfer-Encoding and Content-Length: chunked, connection kept open
    cl-prefix       Content-Length read by its leading digits
    cl-skip-empty   empty Content-Length fields are ignored
    size-prefix     chunk size read by its leading hex digits; the rest of the line ignored
    skip-2          after the last chunk, skip two octets instead of reading trailers
    trailer-lax     trailer lines without a colon are ignored
    merge-trailers  trailer fields join the header fields the app sees
    head-no-body    HEAD and OPTIONS have no body, whatever Content-Length says
    expect-417      an unknown Expect is answered 417 at once, the body left unread
    body-timeout    a body that does not arrive within 0.1 s is taken as empty
    h2c-101         Upgrade: h2c answered 101, then HTTP/1.1 goes on
    connect-200     CONNECT answered 200
    hang-version    a request line with an unknown version waits for more
    garbage-200     an unparseable request line is answered 200
    wait-line       a request line is read up to CRLF whatever its first octet
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TOKEN_START = set(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"[^\"]*\"))?)*)"
)


class Bad(Exception):
    """The request is invalid: answer 400 and close."""


class Closed(Exception):
    """The client went away."""


@dataclass
class Conn:
    sock: socket.socket
    flags: frozenset[str]
    buf: bytearray = field(default_factory=bytearray)

    def fill(self, timeout: float | None = 5.0) -> None:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise Closed
        self.buf += data

    def line(self, *, raw: bool = False) -> bytes:
        """The next line; `raw`: bare CR or LF inside it are this caller's business."""
        while True:
            ends = [self.buf.find(b"\r\n")]
            if "lf" in self.flags or "cr" in self.flags:
                ends.append(self.buf.find(b"\n"))
            if "cr" in self.flags:
                cr = self.buf.find(b"\r")
                if cr >= 0 and self.buf[cr + 1 : cr + 2] not in (b"\n", b""):
                    ends.append(cr)
            found = [e for e in ends if e >= 0]
            if found:
                end = min(found)
                size = 2 if self.buf[end : end + 2] == b"\r\n" else 1
                text = bytes(self.buf[:end])
                del self.buf[: end + size]
                lenient = raw or "lf" in self.flags or "cr" in self.flags
                if not lenient and (b"\r" in text or b"\n" in text):
                    raise Bad
                return text
            self.fill()

    def exact(self, n: int, timeout: float | None = 5.0) -> bytes:
        while len(self.buf) < n:
            self.fill(timeout)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _fields(conn: Conn, lines: list[bytes]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for raw in lines:
        line = raw
        if line[:1] in (b" ", b"\t"):
            if "fold-new" not in conn.flags:
                raise Bad
            line = line.lstrip(b" \t")
        name, colon, value = line.partition(b":")
        if not colon:
            raise Bad
        if "name-strip" in conn.flags:
            text_name = name.decode("latin-1").strip()
        elif TOKEN.fullmatch(name) is None:
            raise Bad
        else:
            text_name = name.decode("latin-1")
        text_value = (
            value.decode("latin-1").strip()
            if "strip" in conn.flags
            else value.strip(b" \t").decode("latin-1")
        )
        fields.append((text_name, text_value))
    return fields


def _named(conn: Conn, fields: list[tuple[str, str]], name: str) -> list[str]:
    if "exact-names" in conn.flags:
        return [v for n, v in fields if n == name]
    return [v for n, v in fields if n.lower() == name.lower()]


def _chunked(conn: Conn, fields: list[tuple[str, str]]) -> bool | None:
    """True: chunked; False: no Transfer-Encoding; None: a coding this server refuses (501)."""
    values = _named(conn, fields, "Transfer-Encoding")
    if not values:
        return False
    if "te-first" in conn.flags:
        values = values[:1]
    joined = ",".join(values)
    if "te-substring" in conn.flags:
        return "chunked" in joined.lower() or None
    if "te-exact" in conn.flags:
        return joined == "chunked"
    codings = [c.strip(" \t").lower() for c in joined.split(",") if c.strip(" \t")]
    if codings == ["chunked"]:
        return True
    if codings and codings[-1] != "chunked":
        raise Bad
    return None


def _length(conn: Conn, fields: list[tuple[str, str]]) -> int:
    values = _named(conn, fields, "Content-Length")
    if "cl-skip-empty" in conn.flags:
        values = [v for v in values if v]
    if not values:
        return 0
    if "cl-prefix" in conn.flags:
        match = re.match(r"[-+]?\d+", values[0])
        if match is None:
            raise Bad
        return max(0, int(match.group()))
    if len(set(values)) != 1 or not re.fullmatch(r"\d+", values[0]):
        raise Bad
    return int(values[0])


def _chunked_body(conn: Conn) -> tuple[bytes, list[tuple[str, str]]]:
    body = bytearray()
    while True:
        line = conn.line(raw="size-prefix" in conn.flags)
        if "size-prefix" in conn.flags:
            match = re.match(rb"\s*([0-9A-Fa-f]+)", line)
            if match is None:
                raise Bad
            size = int(match.group(1), 16)
        else:
            strict = CHUNK_LINE.fullmatch(line)
            if strict is None:
                raise Bad
            size = int(strict.group(1), 16)
        if size == 0:
            break
        body += conn.exact(size)
        end = conn.exact(1)
        if end == b"\r":
            end += conn.exact(1)
        if end != b"\r\n" and not (end == b"\n" and "lf" in conn.flags):
            raise Bad
    if "skip-2" in conn.flags:
        conn.exact(2)
        return bytes(body), []
    trailers: list[bytes] = []
    while True:
        line = conn.line()
        if not line:
            break
        if b":" not in line and "trailer-lax" in conn.flags:
            continue
        trailers.append(line)
    return bytes(body), _fields(conn, trailers)


def _answer(
    method: str, path: str, fields: list[tuple[str, str]], body: bytes, close: bool
) -> bytes:
    data = {
        "reflect": "treadle-conformance",
        "method": method,
        "path": path,
        "headers": sorted([n.lower(), v] for n, v in fields),
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(data).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(payload)
    return head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + payload


def status(code: int, *, close: bool = False) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n%s\r\n" % (
        code,
        b"Connection: close\r\n" if close else b"",
    )


def serve_one(conn: Conn) -> bool:
    """Read and answer one request; False when the connection must end."""
    while not conn.buf:
        conn.fill()
    anything = {"wait-line", "garbage-200", "rl-split"} & conn.flags
    if conn.buf[0] not in TOKEN_START and not anything:
        raise Bad
    request_line = conn.line(raw=bool(anything))
    parts = request_line.split() if "rl-split" in conn.flags else request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        if len(parts) == 3 and parts[2] == b"HTTP/2.0" and "hang-version" in conn.flags:
            while True:
                conn.fill()
        if "garbage-200" in conn.flags:
            conn.sock.sendall(status(200))
            return True
        raise Bad
    method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
    lines = []
    while True:
        line = conn.line()
        if not line:
            break
        lines.append(line)
    fields = _fields(conn, lines)
    close = any(v.lower() == "close" for v in _named(conn, fields, "Connection"))
    if method == "CONNECT":
        conn.sock.sendall(status(200) if "connect-200" in conn.flags else status(405))
        return "connect-200" in conn.flags
    expect = [v.lower() for v in _named(conn, fields, "Expect")]
    if expect and expect != ["100-continue"] and "expect-417" in conn.flags:
        conn.sock.sendall(status(417))
        return True
    chunked = _chunked(conn, fields)
    if chunked is None:
        conn.sock.sendall(status(501, close=True))
        return False
    length = 0 if chunked else _length(conn, fields)
    if chunked and _named(conn, fields, "Content-Length") and "te-over-cl" not in conn.flags:
        raise Bad
    if method in ("HEAD", "OPTIONS") and "head-no-body" in conn.flags:
        length = 0
    if chunked:
        body, trailers = _chunked_body(conn)
        if "merge-trailers" in conn.flags:
            fields = [
                (n, v) for n, v in fields if n.lower() not in {t.lower() for t, _ in trailers}
            ]
            fields += trailers
    else:
        timeout = 0.1 if "body-timeout" in conn.flags else 5.0
        try:
            body = conn.exact(length, timeout)
        except TimeoutError:
            body = b""
    if "h2c" in [v.lower() for v in _named(conn, fields, "Upgrade")] and "h2c-101" in conn.flags:
        conn.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
        return True
    answer = _answer(method, target.split("?")[0], fields, body, close)
    if method == "HEAD":
        answer = answer[: answer.index(b"\r\n\r\n") + 4]
    conn.sock.sendall(answer)
    return not close


def _handle(sock: socket.socket, flags: frozenset[str]) -> None:
    conn = Conn(sock, flags)
    with sock:
        try:
            while serve_one(conn):
                pass
        except Bad:
            with contextlib.suppress(OSError):
                sock.sendall(status(400, close=True))
        except (Closed, OSError):
            pass


@contextlib.contextmanager
def lax_server(*flags: str) -> Iterator[tuple[str, int]]:
    """A server on 127.0.0.1 with these leniencies; every connection in its own thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            worker = threading.Thread(target=_handle, args=(sock, frozenset(flags)), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        # Wakes the blocked accept() (Linux answers it with EINVAL).
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        acceptor.join(5)
        listener.close()
        for worker in workers:
            worker.join(6)


def main() -> None:
    """`python -m tests._lax [FLAG ...]`: serve until killed, after one readiness line."""
    with lax_server(*sys.argv[1:]) as (host, port):
        print(f"listening on http://{host}:{port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
