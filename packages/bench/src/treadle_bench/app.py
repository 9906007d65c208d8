"""The one WSGI app every benchmarked server hosts.

Routes: ``/hello`` (13 bytes), ``/big`` (1 MiB), ``/sleep`` (50 ms, then 13 bytes). Every response
carries Content-Length, so no server has to chunk or close to frame it, and the bodies are built
once at import so the app itself costs next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]

HELLO = b"Hello, world!"
BIG = b"x" * (1024 * 1024)
SLEEP_SECONDS = 0.050

_TEXT = [("Content-Type", "text/plain")]
_NOT_FOUND = b"not found"


def _send(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [*_TEXT, ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/hello":
        return _send(start_response, "200 OK", HELLO)
    if path == "/big":
        return _send(start_response, "200 OK", BIG)
    if path == "/sleep":
        time.sleep(SLEEP_SECONDS)
        return _send(start_response, "200 OK", HELLO)
    return _send(start_response, "404 Not Found", _NOT_FOUND)
