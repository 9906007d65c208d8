"""What the reflection app answers, in one place for its WSGI (`reflect`) and ASGI
(`reflect_asgi`) faces.

The catalogue reads one JSON shape and asks for one set of `/_/` behaviours whichever interface
the server speaks. This module is the pure half: `describe` builds the JSON from what the app
saw, and `plan` turns a `/_/` path into a `Plan`: the status, headers and body chunks to
produce, how much of the request body to read, and how to misbehave. Each face only carries a
plan out with its own interface's calls (`start_response` and an iterable; `send` messages), so
a route cannot drift between the two. A plan marked `wsgi_only` needs something ASGI cannot say
(a reason phrase): the ASGI face answers it with `UNSUPPORTED`, and the runner skips the
scenarios that ask for it on an ASGI target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

MARK = "treadle-conformance"
MAX_ECHO = 4096
ROUTES = "/_/"
UNSUPPORTED = 501

PLAIN = (("Content-Type", "text/plain"),)


def header_list(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Field names lower-cased, sorted by name then value, as the JSON carries them."""
    return sorted([name.lower(), value] for name, value in pairs)


def describe(
    method: str,
    path: str,
    query: str,
    protocol: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    interface: str,
) -> dict[str, Any]:
    """The JSON the app answers for any path outside `/_/`: the request as it arrived."""
    return {
        "reflect": MARK,
        "interface": interface,
        "method": method,
        "path": path,
        "query": query,
        "protocol": protocol,
        "headers": header_list(headers),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body": body.decode("latin-1") if len(body) <= MAX_ECHO else None,
    }


@dataclass(frozen=True, slots=True)
class Plan:
    """One `/_/` behaviour. `writes`: how many leading chunks go out through WSGI's `write()`
    (ASGI sends them as body messages like the rest); `read`: request body bytes to consume
    (0 none, -1 all); `starts`: how many times the app starts the response (0 and 2 are
    mistakes, on purpose); `fail`: raise "before" starting or "after" the first chunk."""

    status: int = 200
    reason: str = "OK"
    headers: tuple[tuple[str, str], ...] = PLAIN
    body: tuple[bytes, ...] = ()
    delay: float = 0.0
    read: int = 0
    writes: int = 0
    starts: int = 1
    fail: str = ""
    wsgi_only: bool = False


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [str(default)])[0])
    except ValueError:
        return default


def _sized(body: bytes) -> tuple[tuple[str, str], ...]:
    return (*PLAIN, ("Content-Length", str(len(body))))


def _stream(n: int, size: int) -> tuple[bytes, ...]:
    return tuple((b"%06d" % i + b"." * size)[:size] + b"\n" for i in range(n))


def _big(size: int) -> tuple[bytes, ...]:
    block = b"x" * 65536
    return tuple(block[: min(65536, size - i)] for i in range(0, size, 65536))


MISBEHAVIOURS: dict[str, Plan] = {
    "bad/header-crlf": Plan(headers=(*PLAIN, ("X-Bad", "a\r\nX-Injected: yes")), body=(b"ok",)),
    "bad/header-lf": Plan(headers=(*PLAIN, ("X-Bad", "a\nX-Injected: yes")), body=(b"ok",)),
    "bad/header-name": Plan(headers=(*PLAIN, ("X-Injected: yes\r\nX-Bad", "a")), body=(b"ok",)),
    "bad/status-crlf": Plan(reason="OK\r\nX-Injected: yes", body=(b"ok",), wsgi_only=True),
    "bad/raise-before": Plan(fail="before"),
    "bad/raise-after": Plan(body=(b"partial body",), fail="after"),
    "bad/cl-long": Plan(headers=(*PLAIN, ("Content-Length", "5")), body=(b"0123456789",)),
    "bad/cl-short": Plan(headers=(*PLAIN, ("Content-Length", "10")), body=(b"01234",)),
    "bad/no-start": Plan(body=(b"a body without starting the response",), starts=0),
    "bad/double-start": Plan(body=(b"twice",), starts=2),
}


def plan(path: str, raw_query: str) -> Plan | None:
    """The behaviour a path asks for, or None for the JSON description (paths outside `/_/`)."""
    if not path.startswith(ROUTES):
        return None
    query = parse_qs(raw_query)
    route = path[len(ROUTES) :]
    if route == "sleep":
        ms = _int(query, "ms", 100)
        body = b"slept %d ms" % ms
        return Plan(headers=_sized(body), body=(body,), delay=min(ms, 30_000) / 1000)
    if route == "stream":
        return Plan(body=_stream(_int(query, "n", 10), _int(query, "size", 32)))
    if route == "big":
        size = _int(query, "size", 1 << 20)
        return Plan(headers=(*PLAIN, ("Content-Length", str(size))), body=_big(size))
    if route == "status":
        code = _int(query, "code", 200)
        return Plan(
            status=code, reason="Chosen", body=(b"body the app wrote for status %d" % code,)
        )
    if route == "ignore-body":
        return Plan(headers=_sized(b"ignored"), body=(b"ignored",))
    if route == "read-some":
        return Plan(headers=_sized(b"read"), body=(b"read",), read=3)
    if route == "write":
        return Plan(
            headers=(*PLAIN, ("Content-Length", "11")), body=(b"hello ", b"world"), writes=1
        )
    if route in MISBEHAVIOURS:
        return MISBEHAVIOURS[route]
    body = b"no such route"
    return Plan(status=404, reason="Not Found", headers=_sized(body), body=(body,))


class AppFailure(RuntimeError):
    """Raised by a plan that fails on purpose."""


def failure(when: str) -> AppFailure:
    return AppFailure(f"the app failed {when} (on purpose)")
