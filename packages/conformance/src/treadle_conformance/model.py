"""The catalogue's records and how an outcome is judged against them.

A `Scenario` is one requirement: its RFC section, its level, the bytes a client writes, and one
or more `Expect`ations. Where the RFC lets a server choose (accept bare LF or reject it, fold or
reject obs-fold), each permitted choice is its own `Expect`, and the outcome passes when it
matches any of them. Scenarios that need a conversation rather than one write (100-continue,
timeouts, many connections) carry a `script` instead of bytes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from treadle_conformance.reflection import plan
from treadle_conformance.wire import Response

if TYPE_CHECKING:
    from treadle_conformance.target import Target


_ROUTE = re.compile(rb"^[A-Z]+ (/_/[^ ?\r\n]*)", re.MULTILINE)


class Level(enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


# A check receives the final responses and returns why they are wrong, or None.
Check = Callable[[Sequence[Response]], "str | None"]


@dataclass(frozen=True, slots=True)
class AppCheck:
    """A check of what the reflection app saw: not judged when the target does not host it."""

    fn: Check

    def __call__(self, responses: Sequence[Response]) -> str | None:
        return self.fn(responses)


@dataclass(frozen=True, slots=True)
class Expect:
    """One permitted outcome: the statuses of each response, in order, and the connection state.

    `close` True: the server must close after the last response; False: it must keep the
    connection open; None: either. `incomplete` accepts a last response cut short by the server
    closing (what a server must do when an app fails half-way through a body). `http2`: the
    outcome is an HTTP/2 SETTINGS frame, not HTTP/1.1 responses.
    """

    statuses: tuple[frozenset[int], ...]
    close: bool | None = None
    check: Check | None = None
    incomplete: bool = False
    label: str = ""
    http2: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back: the scenario's responses, then what the sentinel request showed.

    `responses` answer the scenario's own bytes. If the connection was still open afterwards,
    the runner sent the sentinel request (which asks for a close) and `after` holds every
    response read after that: exactly one, equal to the sentinel's baseline, means the server
    framed the scenario's bytes as the catalogue does. `extra` holds bytes that came before a
    close and were no response the scenario expects.
    """

    responses: tuple[Response, ...]
    closed: bool
    error: str | None = None
    extra: bytes = b""
    reset: bool = False
    send_error: str | None = None
    incomplete: bool = False
    invalid: bool = False
    sentinel: bool = False
    after: tuple[Response, ...] = ()
    after_error: str | None = None
    after_timeout: bool = False
    after_closed: bool = False
    raw_sent: bytes = b""
    raw: bytes = b""
    late: tuple[Response, ...] = ()
    http2: bool = False

    def describe(self) -> str:
        if self.http2:
            return "an HTTP/2 SETTINGS frame: the server speaks HTTP/2 with prior knowledge"
        text = _responses(self.responses)
        if self.error:
            text += f"; error: {self.error}"
        if self.late:
            text += f"; late, before the close: {_responses(self.late)}"
        if self.extra:
            text += f"; then unexpected bytes {self.extra[:120]!r}"
        text += "; connection closed" if self.closed else "; connection open"
        if self.reset:
            text += " (reset)"
        if self.send_error:
            text += f"; write failed: {self.send_error}"
        if self.sentinel:
            text += f"; sentinel: {_responses(self.after)}"
            if self.after_error:
                text += f", error: {self.after_error}"
            elif self.after_timeout:
                text += ", then silence"
        return text


def _responses(responses: Sequence[Response]) -> str:
    parts = []
    for r in responses:
        interim = "".join(f"{s} + " for s in r.interim)
        parts.append(f"{interim}{r.status} ({r.framing}, {len(r.body)} body bytes)")
    return "; ".join(parts) if parts else "no response"


Script = Callable[["Target", float], "str | None"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One requirement. `reflect`: its checks read the reflection app's view; `routes`: it
    needs the app's `/_/` behaviours and cannot run without the app; `hazard`: a scenario's own
    sign of a desync (an injected header, say), beside the runner's generic ones; `requests`:
    how many requests a correct reading answers, when permitted outcomes answer fewer; `pause`:
    seconds the client waits between the parts of `send` (a slow client, on purpose); `wait`:
    seconds to wait for each response, when shorter than the run's `--timeout`; `follow`: how
    many requests the runner sends afterwards, each on a fresh connection, to see that each gets
    its own answer (proxy mode: see `splicing`)."""

    id: str
    category: str
    section: str
    level: Level
    title: str
    send: tuple[bytes, ...] = ()
    expect: tuple[Expect, ...] = ()
    reflect: bool = False
    heads: frozenset[int] = frozenset()
    fragment: bool = False
    script: Script | None = None
    script_text: str = ""
    shutdown_write: bool = False
    wait: float | None = None
    hazard: Check | None = None
    routes: bool = False
    requests: int = 0
    pause: float = 0.0
    follow: int = 0
    tags: tuple[str, ...] = field(default=())

    @property
    def citations(self) -> tuple[tuple[str, str], ...]:
        """(RFC, section) pairs cited, e.g. ("9112", "7.1"); parentheses are comments."""
        return tuple(cited(self.section))

    @property
    def groups(self) -> frozenset[str]:
        """Names --category selects by: the category, its tags, and "smuggling" for every
        scenario that hides a request behind a framing error."""
        names = {self.category, *self.tags}
        if self.id.startswith("SMUG-") or any(b"/smuggled" in d for d in self.send):
            names.add("smuggling")
        return frozenset(names)

    @property
    def needs_app(self) -> bool:
        """It cannot run at all against a server without the reflection app."""
        if self.routes:
            return True
        if self.script is not None:
            return False
        return any(b" /_/" in data for data in self.send)

    @property
    def http2_allowed(self) -> bool:
        """An HTTP/2 SETTINGS frame is a permitted answer (the bytes are the HTTP/2 preface)."""
        return any(e.http2 for e in self.expect)

    @property
    def needs_backend(self) -> bool:
        """It asks the harness's recording backend to misbehave: proxy mode only."""
        return any(b" /__backend/" in data for data in self.send)

    @property
    def wsgi_only(self) -> bool:
        """It asks for a `/_/` behaviour only a WSGI app can produce (see `reflection`)."""
        for data in self.send:
            for match in _ROUTE.finditer(data):
                behaviour = plan(match.group(1).decode("latin-1"), "")
                if behaviour is not None and behaviour.wsgi_only:
                    return True
        return False

    @property
    def max_responses(self) -> int:
        """How many responses to read: the most any permitted outcome has, or `requests`, the
        number of requests a correct reading finds in the bytes, when that is more."""
        return max(self.requests, *(len(e.statuses) for e in self.expect), 1)

    @property
    def may_wait(self) -> bool:
        """Some permitted outcome is no response at all, the connection left open."""
        return any(not e.statuses and e.close is not True and not e.http2 for e in self.expect)

    @property
    def wants_close(self) -> bool:
        return any(e.close is True for e in self.expect)


def cited(section: str) -> Iterator[tuple[str, str]]:
    """(RFC, section) pairs in a citation such as 'RFC 9112 §7.1; 2.2 (...); RFC 9110 §6.5'.

    A part without "RFC N §" continues the RFC before it; "PEP" and "project" parts cite none.
    """
    rfc = ""
    for part in re.sub(r"\([^)]*\)", "", section).split(";"):
        match = re.match(r"\s*RFC (\d+) §(.*)", part)
        numbers = part
        if match:
            rfc, numbers = match.group(1), match.group(2)
        elif re.match(r"\s*(PEP|project)", part):
            rfc = ""
            continue
        if rfc:
            for number in re.findall(r"[A-C]?\d+(?:\.\d+)*", numbers):
                yield rfc, number


def statuses(allowed: frozenset[int]) -> str:
    """200, 204 or a range such as 400-499, for messages."""
    values = sorted(allowed)
    if len(values) > 3 and values[-1] - values[0] + 1 == len(values):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))
