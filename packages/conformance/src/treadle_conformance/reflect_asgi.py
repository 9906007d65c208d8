"""The reflection ASGI app: `reflect`'s twin for uvicorn, hypercorn, daphne, granian and kin.

It answers every request exactly as the WSGI app does, from the same pure functions
(`reflection.describe` for the JSON, `reflection.plan` for the `/_/` behaviours), so one
catalogue judges WSGI and ASGI servers alike. What differs is only what each interface hands
the app:

- the path is `raw_path` percent-decoded to bytes and read as Latin-1, as PEP 3333 has a WSGI
  server do (ASGI's `path` is already UTF-8-decoded); `path` is the fallback;
- a field repeated on the wire arrives as separate entries; they are joined with ", " as a WSGI
  server joins them into one environ key, so the JSON has one entry per name;
- `/_/bad/status-crlf` needs a reason phrase, which ASGI has no way to say: it answers 501.

A lifespan scope is acknowledged, so servers that insist on one start. Standard library only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from treadle_conformance.reflection import UNSUPPORTED, Plan, describe, failure, plan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        # Some servers leave the query on raw_path; ASGI says it excludes it.
        decoded = unquote_to_bytes(raw.split(b"?", 1)[0])
        root = str(scope.get("root_path", ""))
        return root + decoded.decode("latin-1")
    return str(scope.get("root_path", "")) + str(scope.get("path", ""))


def _headers(scope: Scope) -> list[tuple[str, str]]:
    joined: dict[str, list[str]] = {}
    for name, value in scope.get("headers", []):
        key = bytes(name).decode("latin-1").lower()
        text = bytes(value).decode("latin-1")
        if key in ("content-type", "content-length") and text == "":
            continue
        joined.setdefault(key, []).append(text)
    return [(name, ", ".join(values)) for name, values in joined.items()]


async def _read(receive: Receive, limit: int = -1) -> bytes:
    """The request body, or its first `limit` bytes' worth of messages."""
    chunks: list[bytes] = []
    size = 0
    while limit < 0 or size < limit:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _start(status: int, headers: tuple[tuple[str, str], ...]) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers],
    }


def _body(chunk: bytes, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def _carry_out(p: Plan, receive: Receive, send: Send) -> None:
    if p.wsgi_only:
        text = b"a WSGI-only behaviour: ASGI cannot express it"
        await send(_start(UNSUPPORTED, (("Content-Length", str(len(text))),)))
        await send(_body(text, False))
        return
    if p.delay:
        await asyncio.sleep(p.delay)
    if p.read:
        await _read(receive, p.read)
    if p.fail == "before":
        raise failure("before starting the response")
    for _ in range(p.starts):
        await send(_start(p.status, p.headers))
    for i, chunk in enumerate(p.body):
        await send(_body(chunk, True))
        if p.fail == "after" and i == 0:
            raise failure("half-way through its body")
    await send(_body(b"", False))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        raise ValueError(f"the reflection app speaks HTTP only, not {scope['type']!r}")
    path = _path(scope)
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    behaviour = plan(path, query)
    if behaviour is not None:
        await _carry_out(behaviour, receive, send)
        return
    payload = describe(
        method=str(scope["method"]),
        path=path,
        query=query,
        protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        headers=_headers(scope),
        body=await _read(receive),
        interface="asgi",
    )
    data = json.dumps(payload).encode()
    await send(
        _start(200, (("Content-Type", "application/json"), ("Content-Length", str(len(data)))))
    )
    await send(_body(data, False))
