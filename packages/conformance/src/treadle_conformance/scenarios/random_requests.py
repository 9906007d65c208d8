"""Property-based requests: random valid requests, and the app must see exactly what was sent.

Hypothesis draws a method, a path, a raw query, extra header fields and a body (framed by
Content-Length or by random chunks), sends it whole, byte by byte or in random pieces, and
compares the reflection app's view with what went on the wire. A falsifying example is shrunk
to the smallest request that shows the difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle_conformance.scenarios._kit import MUST, S9112, Maker
from treadle_conformance.target import Target

m = Maker("property")

SEGMENT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-~"
QUERY_PIECES = [*SEGMENT, "=", "&", "+", ".", "/", "?", "%2F", "%20", "%e9"]
VALUE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class Drawn:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    chunks: tuple[int, ...] | None
    mode: str

    def wire_bytes(self) -> bytes:
        target = self.path + (f"?{self.query}" if self.query else "")
        lines = [f"{self.method} {target} HTTP/1.1", "Host: example.test"]
        lines += [f"{n}: {v}" for n, v in self.headers]
        if self.chunks is None:
            lines.append(f"Content-Length: {len(self.body)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body
        lines.append("Transfer-Encoding: chunked")
        out = bytearray(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        i = 0
        for size in (*self.chunks, len(self.body)):
            piece = self.body[i : i + size] if size else b""
            if piece:
                out += b"%x\r\n" % len(piece) + piece + b"\r\n"
            i += len(piece)
        out += b"0\r\n\r\n"
        return bytes(out)


def _header_value() -> st.SearchStrategy[str]:
    return st.text(VALUE + " \t", max_size=40).map(lambda v: v.strip(" \t"))


@st.composite
def drawn(draw: st.DrawFn) -> Drawn:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "REPORT"]))
    segments = draw(st.lists(st.text(SEGMENT, min_size=1, max_size=12), max_size=4))
    query = "".join(draw(st.lists(st.sampled_from(QUERY_PIECES), max_size=20)))
    names = draw(
        st.lists(
            st.from_regex(r"X-[A-Za-z0-9][A-Za-z0-9-]{0,15}", fullmatch=True),
            max_size=8,
            unique_by=str.lower,
        )
    )
    headers = tuple((n, draw(_header_value())) for n in names)
    body = draw(st.binary(max_size=3000))
    chunks = draw(st.none() | st.lists(st.integers(1, 700), max_size=6).map(tuple))
    mode = draw(st.sampled_from(["whole", "bytes", "random"]))
    return Drawn(method, "/" + "/".join(segments), query, headers, body, chunks, mode)


def _compare(sent: Drawn, seen: dict[str, Any]) -> str | None:
    want = {
        "method": sent.method,
        "path": sent.path,
        "query": sent.query,
        "body_length": len(sent.body),
        "body_sha256": hashlib.sha256(sent.body).hexdigest(),
    }
    for key, value in want.items():
        if seen.get(key) != value:
            return f"{key}: the app saw {seen.get(key)!r}, sent {value!r}"
    got = {n: v for n, v in seen["headers"]}
    for name, value in sent.headers:
        if got.get(name.lower()) != value:
            return f"header {name}: the app saw {got.get(name.lower())!r}, sent {value!r}"
    return None


def _property(target: Target, _scale: float) -> str | None:
    @settings(
        max_examples=target.examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(drawn())
    def check(sent: Drawn) -> None:
        # A socket error propagates as itself (the runner says "could not talk to the
        # server"); turned into an assertion it would be shrunk as a bug of its own, at a
        # timeout per try.
        with target.connect(3.0) as wire:
            wire.send(sent.wire_bytes(), sent.mode)
            response = wire.read_response()
        assert response is not None, "closed without a response"
        assert response.status == 200, f"status {response.status} for {sent.wire_bytes()[:300]!r}"
        seen = response.json()
        assert seen is not None, "not the reflection app's JSON"
        why = _compare(sent, seen)
        assert why is None, f"{why} (request {sent.wire_bytes()[:300]!r})"

    try:
        check()
    except AssertionError as exc:
        return str(exc).splitlines()[0]
    except ExceptionGroup as group:  # hypothesis: a failure that replayed differently
        inner = "; ".join(str(e).splitlines()[0] for e in group.exceptions[:2])
        return f"{str(group).splitlines()[0]}: {inner}"
    return None


m.script(
    "PROP-RANDOM-REQUESTS",
    S9112 + "3, 5, 6, 7",
    MUST,
    "random valid requests (60 by default, --examples) reach the app exactly as sent",
    _property,
    "hypothesis: random method, path, query, X- fields, body (length or chunked), "
    "sent whole, byte by byte or in random pieces",
    routes=True,
)

SCENARIOS = m.made
