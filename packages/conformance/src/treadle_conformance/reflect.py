"""The reflection WSGI app: any WSGI server can host it, and it tells the harness what it saw.

Every path answers JSON describing the request as the app received it (method, decoded path,
raw query, protocol, headers, body length and SHA-256), so a scenario can check that the server
delivered exactly what the client wrote, and that smuggled bytes never became a request. Paths
under `/_/` are behaviours instead: sleeping, streaming, big bodies, chosen statuses, and apps
that misbehave on purpose, to see what the server puts on the wire for them. The JSON and the
behaviours live in `reflection`, shared with the ASGI face (`reflect_asgi`); this module only
speaks WSGI. Standard library only, so it runs under any server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from treadle_conformance.reflection import MARK, Plan, describe, failure, plan

StartResponse = Callable[..., Callable[[bytes], object]]
Environ = dict[str, Any]

__all__ = ["MARK", "app"]


def _read_body(environ: Environ) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        # In pieces: a server that hands the app a huge declared length must not make it ask
        # for (and a buffered reader allocate) that much at once.
        remaining, pieces = int(length), []
        while remaining and (piece := stream.read(min(remaining, 65536))):
            pieces.append(piece)
            remaining -= len(piece)
        return b"".join(pieces)
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower().find("chunked") >= 0 or environ.get(
        "wsgi.input_terminated"
    ):
        chunks = []
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    return b""


def _headers(environ: Environ) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            yield key.replace("_", "-"), value


def _after_first(chunks: tuple[bytes, ...]) -> Iterator[bytes]:
    yield from chunks[:1]
    raise failure("half-way through its body")


def _carry_out(p: Plan, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if p.delay:
        time.sleep(p.delay)
    if p.read:
        environ["wsgi.input"].read(p.read)
    if p.fail == "before":
        raise failure("before start_response")
    write = None
    for _ in range(p.starts):
        write = start_response(f"{p.status} {p.reason}", list(p.headers))
    if write is not None:
        for chunk in p.body[: p.writes]:
            write(chunk)
    rest = p.body[p.writes :]
    if p.fail == "after":
        return _after_first(rest)
    return iter(rest)


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    behaviour = plan(path, environ.get("QUERY_STRING", ""))
    if behaviour is not None:
        return _carry_out(behaviour, environ, start_response)
    payload = describe(
        method=environ.get("REQUEST_METHOD", ""),
        path=environ.get("SCRIPT_NAME", "") + path,
        query=environ.get("QUERY_STRING", ""),
        protocol=environ.get("SERVER_PROTOCOL", ""),
        headers=_headers(environ),
        body=_read_body(environ),
        interface="wsgi",
    )
    data = json.dumps(payload).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
