"""The one WSGI app every server under attack hosts.

    /hello                 13 bytes
    /stream?bytes=N        N bytes of ``x``, yielded lazily in 64 KiB pieces with a
                           Content-Length, so a never-reading client costs the server only
                           what the server itself buffers
    /upload                reads all of ``wsgi.input`` and answers how many bytes it got
    /raise?exc=NAME        raises ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit`` or
                           ``AppAbort`` (a plain ``BaseException`` subclass) from the app
    /sleep?ms=N            sleeps N ms (at most 10 s), then 13 bytes

Malformed parameters get 400, unknown paths 404: garbage from the fuzzer must never make the
*app* answer 5xx, so any 5xx seen is the server's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

HELLO = b"Hello, world!"
CHUNK = 64 * 1024
MAX_STREAM = 1 << 30
MAX_SLEEP_MS = 10_000
_PIECE = b"x" * CHUNK
_TEXT = ("Content-Type", "text/plain")


class AppAbort(BaseException):
    """Neither an ``Exception`` nor an exit: what a server that catches only ``Exception``
    lets escape."""


RAISES: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "AppAbort": AppAbort,
}


def _send(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [_TEXT, ("Content-Length", str(len(body)))])
    return [body]


def _int_param(environ: Environ, name: str, upper: int) -> int | None:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    if not values or not values[0].isdigit() or len(values[0]) > 12:
        return None
    value = int(values[0])
    return value if value <= upper else None


def _stream(size: int) -> Iterator[bytes]:
    left = size
    while left >= CHUNK:
        yield _PIECE
        left -= CHUNK
    if left:
        yield _PIECE[:left]


def _upload(environ: Environ) -> int:
    stream = environ["wsgi.input"]
    total = 0
    while True:
        piece = stream.read(CHUNK)
        if not piece:
            return total
        total += len(piece)


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/hello":
        return _send(start_response, "200 OK", HELLO)
    if path == "/stream":
        size = _int_param(environ, "bytes", MAX_STREAM)
        if size is None:
            return _send(start_response, "400 Bad Request", b"bytes=N wanted\n")
        start_response("200 OK", [_TEXT, ("Content-Length", str(size))])
        return _stream(size)
    if path == "/upload":
        return _send(start_response, "200 OK", b"%d\n" % _upload(environ))
    if path == "/sleep":
        ms = _int_param(environ, "ms", MAX_SLEEP_MS)
        if ms is None:
            return _send(start_response, "400 Bad Request", b"ms=N wanted\n")
        time.sleep(ms / 1000)
        return _send(start_response, "200 OK", HELLO)
    if path == "/raise":
        name = parse_qs(environ.get("QUERY_STRING", "")).get("exc", [""])[0]
        exc = RAISES.get(name)
        if exc is None:
            return _send(start_response, "400 Bad Request", b"exc=NAME wanted\n")
        raise exc(f"raised on request by {path}")
    return _send(start_response, "404 Not Found", b"not found\n")
