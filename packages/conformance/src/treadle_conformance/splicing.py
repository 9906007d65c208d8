"""Proxy mode's misbehaving backend: responses a proxy must not let splice into the next one.

A request for `/__backend/KIND` makes the recording backend answer in one of the shapes that
response splitting and response-queue poisoning use (`answers`): a second, unsolicited response
after the first; a body after a HEAD, 204 or 304 head; Transfer-Encoding beside a
Content-Length that frames less; two different Content-Lengths; an interim 100 before the final
response. Each hides a complete extra response, `SPLICED` (marked `X-Spliced: 1`), exactly where
a proxy that frames the backend's response wrongly, or keeps its extra bytes, would hand it to
the next request on that upstream connection. RFC 9112 §6.3: a client "MUST NOT process,
cache, or forward such extra data as a separate response".

Every other answer of the backend names the path it answers in `X-Backend-Path`. After such a
scenario the runner asks again (`follow_up`): the sentinel on the same client connection, then
`FOLLOW_UPS` requests each on a fresh client connection; each must get the backend's answer to
that very request. A spliced response, another request's answer, or none is unsafe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from treadle_conformance.wire import Response, ResponseError

if TYPE_CHECKING:
    from treadle_conformance.target import Target

PREFIX = "/__backend/"
PATH_HEADER = "X-Backend-Path"
SPLICED_HEADER = "X-Spliced"
SPLICED_BODY = b"spliced response\n"
SPLICED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(SPLICED_BODY)).encode()
    + b"\r\nX-Spliced: 1\r\n\r\n"
    + SPLICED_BODY
)
# The chunked body of the `cl-te` answer: SPLICED as one chunk's data. Its Content-Length covers
# only the chunk-size line, so a proxy that frames by Content-Length leaves SPLICED behind.
_SIZE_LINE = f"{len(SPLICED):x}\r\n".encode()
CL_TE_BODY = _SIZE_LINE + SPLICED + b"\r\n0\r\n\r\n"
FOLLOW_UPS = 2


def _head(status: str, fields: Sequence[str]) -> bytes:
    return f"HTTP/1.1 {status}\r\n".encode() + b"".join(f"{f}\r\n".encode() for f in fields)


def answers(kind: str, ordinary: bytes, path: str) -> bytes | None:
    """The bytes the backend writes, in one write, for `/__backend/KIND`; None: not a kind.
    `ordinary` is the backend's usual answer to this request."""
    named = f"{PATH_HEADER}: {path}"
    spliced_length = f"Content-Length: {len(SPLICED)}"
    if kind == "extra":
        return ordinary + SPLICED
    if kind == "head-body":
        return _head("200 OK", [named, spliced_length]) + b"\r\n" + SPLICED
    if kind == "204-body":
        return _head("204 No Content", [named, spliced_length]) + b"\r\n" + SPLICED
    if kind == "304-body":
        return _head("304 Not Modified", [named, 'ETag: "x"', spliced_length]) + b"\r\n" + SPLICED
    if kind == "cl-te":
        fields = [named, "Transfer-Encoding: chunked", f"Content-Length: {len(_SIZE_LINE)}"]
        return _head("200 OK", fields) + b"\r\n" + CL_TE_BODY
    if kind == "cl-different":
        end = ordinary.index(b"\r\n\r\n")
        second = f"\r\nContent-Length: {len(ordinary) - end - 4 + len(SPLICED)}".encode()
        return ordinary[:end] + second + ordinary[end:] + SPLICED
    if kind == "interim":
        return b"HTTP/1.1 100 Continue\r\n\r\n" + ordinary
    return None


def answered_for(path: str, response: Response) -> str | None:
    """Why response is not the backend's own answer to a request for path; None when it is."""
    if response.header(SPLICED_HEADER) is not None:
        return "got the backend's extra response (X-Spliced): it was spliced into this one"
    got = response.header(PATH_HEADER)
    if got != path:
        whose = f"the answer to {got}" if got else f"status {response.status}, no answer of its own"
        return f"asked for {path}, got {whose}"
    return None


def spliced(responses: Sequence[Response]) -> str | None:
    """A hazard check: the backend's extra response reached the client."""
    for r in responses:
        if r.header(SPLICED_HEADER) is not None:
            return "the backend's extra response reached the client as a response of its own"
    return None


def follow_up(target: Target, name: str, count: int = FOLLOW_UPS) -> str | None:
    """Ask `count` times, each on a fresh connection; why an answer was not the request's own."""
    # Under the sentinel's path, which the backend's judge counts as the runner's own.
    host, sentinel = target.settings.host_header, target.settings.path.rstrip("/")
    for i in range(count):
        path = f"{sentinel}/follow/{name}/{i}"
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        try:
            with target.connect() as wire:
                wire.send(request.encode("latin-1"))
                response = wire.read_response()
        except (OSError, ResponseError) as exc:
            return f"follow-up {i + 1}, on a fresh connection: {type(exc).__name__}: {exc}"
        if response is None:
            return f"follow-up {i + 1}, on a fresh connection: closed without an answer"
        why = answered_for(path, response)
        if why:
            return f"follow-up {i + 1}, on a fresh connection, {why}"
    return None
