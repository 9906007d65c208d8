"""Limits, timeouts, slow clients and concurrency.

The concurrency scenarios are the reason this harness exists: a server with 5 worker threads
must serve 6, 8 and 12 keep-alive connections at once, and a new connection promptly while others
sit idle. An RFC does not say "MUST" here (RFC 9112 9.3 only makes persistence the default);
the level is the project's, and the section names what is exercised. Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from treadle_conformance.model import Script
from treadle_conformance.scenarios._kit import (
    CLIENT_ERRORS,
    MUST,
    S9110,
    S9112,
    SHOULD,
    Maker,
    ok,
    reject,
    req,
    saw,
)
from treadle_conformance.target import Target
from treadle_conformance.wire import ResponseError, Wire

# A server configured with a 10 s timeout closes at 10 s and a little: the bound is the
# configured timeout plus this grace, not the timeout itself.
IDLE_GRACE = 2.0
limits = Maker("limits")
timeouts = Maker("timeouts")
conc = Maker("concurrency")
TOO_BIG = reject(*CLIENT_ERRORS, label="4xx")

limits(
    "LIMIT-TARGET-8000",
    S9112 + "3",
    SHOULD,
    "an 8000-octet request line is supported",
    req(target="/" + "a" * 7980),
    ok(check=saw(path="/" + "a" * 7980)),
    reflect=True,
)
limits(
    "LIMIT-TARGET-HUGE",
    S9112 + "3; " + S9110 + "15.5.15",
    MUST,
    "a 1 MiB request-target: a 4xx, or served",
    req(target="/" + "a" * (1 << 20)),
    TOO_BIG,
    ok(label="served"),
    reflect=True,
)
limits(
    "LIMIT-TARGET-HUGE-414",
    S9112 + "3 (MUST 414 for a target longer than it wishes to parse)",
    MUST,
    "a 1 MiB request-target is 414 (or served, for a server that parses it)",
    req(target="/" + "a" * (1 << 20)),
    reject(414),
    ok(label="served"),
    reflect=True,
)
limits(
    "LIMIT-FIELD-HUGE",
    S9110 + "5.4",
    MUST,
    "a 1 MiB field line: a 4xx, or served",
    req(headers=[("X-Big", "b" * (1 << 20))]),
    TOO_BIG,
    ok(label="served"),
    reflect=True,
)
limits(
    "LIMIT-FIELD-HUGE-431",
    "RFC 6585 §5; " + S9110 + "5.4",
    SHOULD,
    "a 1 MiB field line is 431",
    req(headers=[("X-Big", "b" * (1 << 20))]),
    reject(431),
)
limits(
    "LIMIT-FIELDS-MANY",
    S9110 + "5.4",
    MUST,
    "10,000 header fields: a 4xx, or served",
    req(headers=[(f"X-F{i}", "v") for i in range(10000)]),
    TOO_BIG,
    ok(label="served"),
    reflect=True,
)
limits(
    "LIMIT-FIELDS-MANY-431",
    "RFC 6585 §5; " + S9110 + "5.4",
    SHOULD,
    "10,000 header fields: 431",
    req(headers=[(f"X-F{i}", "v") for i in range(10000)]),
    reject(431),
)
limits(
    "LIMIT-HEAD-HUGE",
    S9110 + "5.4",
    MUST,
    "a 4 MiB head of 4 KiB fields: a 4xx, or served",
    req(headers=[(f"X-F{i}", "v" * 4096) for i in range(1024)]),
    TOO_BIG,
    ok(label="served"),
    reflect=True,
)
limits(
    "LIMIT-FIELD-4K",
    S9110 + "5.4",
    SHOULD,
    "a 4 KiB field value is served",
    req(headers=[("X-Big", "b" * 4096)]),
    ok(),
    reflect=True,
)


def _served(target: Target, path: str, timeout: float) -> str | None:
    with target.connect(timeout) as wire:
        wire.send(req(target=path))
        try:
            response = wire.read_response()
        except TimeoutError:
            return f"{path}: no response within {timeout}s"
    if not target.accepted(response):
        return f"{path}: {response.status if response else 'closed without a response'}"
    return None


def _idle_close(target: Target, _scale: float) -> str | None:
    with target.connect(3.0) as wire:
        wire.send(req(target="/idle"))
        if wire.read_response() is None:
            return "no response"
        if not wire.wait_closed(target.idle_bound + IDLE_GRACE):
            return f"an idle keep-alive connection still open after {target.idle_bound}s (+ grace)"
        if wire.buf:
            return f"bytes on an idle connection: {bytes(wire.buf[:100])!r}"
    return None


def _slow_head(target: Target, _scale: float) -> str | None:
    with target.connect(3.0) as wire:
        wire.send(b"GET /slow HTTP/1.1\r\nHost: example.test\r\n")
        if not wire.wait_closed(target.idle_bound + IDLE_GRACE):
            return f"an unfinished head still held open after {target.idle_bound}s (+ grace)"
        if (
            wire.buf
            and not wire.buf.startswith(b"HTTP/1.1 408")
            and not wire.buf.startswith(b"HTTP/1.1 400")
        ):
            return f"answered {bytes(wire.buf[:40])!r} to an unfinished head"
    return None


def _slow_client(target: Target, _scale: float) -> str | None:
    data = req("POST", "/slow", headers=[("Content-Length", "10")], body=b"0123456789")
    with target.connect(3.0) as wire:
        step = len(data) // 10 + 1
        for i in range(0, len(data), step):
            wire.send(data[i : i + step])
            # Pacing the client, not waiting for the server: the point is a slow sender.
            time.sleep(0.05)
        response = wire.read_response()
    if not target.accepted(response):
        return "a slowly sent request was not served"
    return None if target.saw_body(response, "0123456789") else "the app saw a different body"


def _pause_in_body(target: Target, _scale: float) -> str | None:
    with target.connect(3.0) as wire:
        wire.send(req("POST", "/pause", headers=[("Content-Length", "10")], body=b"01234"))
        time.sleep(0.3)  # a pause inside the body, shorter than any sane timeout
        wire.send(b"56789")
        response = wire.read_response()
    served = target.saw_body(response, "0123456789")
    return None if served else "a body sent in two parts was not served"


# RFC 9112 §9.5 expects servers to time out idle connections but sets no bound: these are this
# project's requirements, judged against --idle-bound (the server's timeout) plus a grace.
OWN = "project requirement (RFC 9112 §9.5 sets no timeout)"
timeouts.script(
    "TIME-IDLE-KEEPALIVE-CLOSED",
    OWN,
    SHOULD,
    "an idle keep-alive connection is closed by the server, bounded",
    _idle_close,
    "GET /idle, then send nothing and wait for the close",
)
timeouts.script(
    "TIME-SLOW-HEAD-CLOSED",
    OWN + "; " + S9110 + "15.5.9",
    SHOULD,
    "an unfinished head is timed out (408 or close)",
    _slow_head,
    "GET /slow HTTP/1.1 + Host line, never the empty line",
    reflect=False,
)
timeouts.script(
    "TIME-SLOW-CLIENT-SERVED",
    OWN,
    MUST,
    "a request sent in ten pieces over half a second is served",
    _slow_client,
    "POST /slow (10-byte body) in ten pieces, 50 ms apart",
)
timeouts.script(
    "TIME-PAUSE-IN-BODY",
    S9112 + "6.2",
    MUST,
    "a body that arrives in two parts 300 ms apart is served",
    _pause_in_body,
    "POST /pause: head + 5 bytes, 300 ms, 5 bytes",
)


def _open_keepalive(target: Target, n: int, timeout: float, wires: list[Wire]) -> str | None:
    """Open n connections one after another, one GET each; the caller closes `wires`."""
    for i in range(n):
        wire = target.connect(timeout)
        wires.append(wire)
        wire.send(req(target=f"/conn{i}"))
        try:
            response = wire.read_response()
        except TimeoutError:
            return f"connection {i + 1} of {n}: no response within {timeout}s (starved?)"
        if not target.accepted(response):
            return f"connection {i + 1} of {n}: not served"
    return None


def _keepalive(n: int) -> Script:
    def script(target: Target, _scale: float) -> str | None:
        wires: list[Wire] = []
        try:
            why = _open_keepalive(target, n, 1.5, wires)
            if why:
                return why
            for i, wire in reversed(list(enumerate(wires))):
                wire.send(req(target=f"/again{i}"))
            for i, wire in enumerate(wires):
                try:
                    response = wire.read_response(timeout=2.0)
                except TimeoutError:
                    return f"second request on connection {i + 1}: no response within 2s"
                if not target.accepted(response):
                    return f"second request on connection {i + 1}: connection closed or not served"
            return None
        finally:
            for wire in wires:
                wire.close()

    return script


Idler = Callable[[Target, list[Wire]], "str | None"]


def _new_while(idle: Idler, what: str) -> Script:
    def script(target: Target, _scale: float) -> str | None:
        held: list[Wire] = []
        try:
            why = idle(target, held)
            if why:
                return why
            start = time.monotonic()
            why = _served(target, "/new", 1.5)
            took = time.monotonic() - start
            return why or (None if took < 1.0 else f"a new connection waited {took:.2f}s {what}")
        finally:
            for wire in held:
                wire.close()

    return script


def _idle_keepalive_12(target: Target, held: list[Wire]) -> str | None:
    return _open_keepalive(target, 12, 1.5, held)


def _silent_12(target: Target, held: list[Wire]) -> str | None:
    for _ in range(12):
        held.append(target.connect())
    return None


def _parallel(target: Target, _scale: float) -> str | None:
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            why = _served(target, f"/_/sleep?ms=200&i={i}", 5.0)
        except (OSError, ResponseError) as exc:  # refused, reset, or garbage: not served
            why = f"request {i + 1}: {type(exc).__name__}: {exc}"
        if why:
            errors.append(why)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    took = time.monotonic() - start
    if errors:
        return errors[0]
    return None if took < 4.0 else f"12 requests of 200 ms took {took:.1f}s"


for n in (6, 8, 12):
    conc.script(
        f"CONC-KEEPALIVE-{n}",
        S9112 + "9.3 (project requirement: 5 threads)",
        MUST,
        f"{n} keep-alive connections against 5 threads are all served, twice",
        _keepalive(n),
        f"open {n} connections one after another, GET on each (<= 1.5 s), keep them open; "
        "then GET again on every one (<= 2 s)",
    )
conc.script(
    "CONC-NEW-WHILE-IDLE",
    S9112 + "9.3 (project requirement)",
    MUST,
    "a new connection is served promptly while 12 keep-alive connections idle",
    _new_while(_idle_keepalive_12, "behind idle keep-alive connections"),
    "12 keep-alive connections after one GET each; a 13th connection must be answered < 1 s",
)
conc.script(
    "CONC-NEW-WHILE-SILENT",
    S9112 + "9.3 (project requirement)",
    SHOULD,
    "a new connection is served promptly while 12 connections have sent nothing",
    _new_while(_silent_12, "behind connections that sent nothing"),
    "12 connections that send nothing; a 13th must be answered < 1 s",
    reflect=True,
)
conc.script(
    "CONC-PARALLEL-SLEEPS",
    S9112 + "9.3 (project requirement)",
    SHOULD,
    "12 concurrent 200 ms requests on 5 threads finish in under 4 s",
    _parallel,
    "12 connections at once, each GET /_/sleep?ms=200",
    routes=True,
)

SCENARIOS = limits.made + timeouts.made + conc.made
