"""The catalogue's records and how an outcome is judged against them.

A `Scenario` is one requirement: its RFC section, its level, the bytes a client writes, and one
or more `Expect`ations. Where the RFC lets a server choose (accept bare LF or reject it, fold or
reject obs-fold), each permitted choice is its own `Expect`, and the outcome passes when it
matches any of them. Scenarios that need a conversation rather than one write (100-continue,
timeouts, many connections) carry a `script` instead of bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from treadle_conformance.wire import Response

if TYPE_CHECKING:
    from treadle_conformance.target import Target


class Level(enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


# A check receives the final responses and returns why they are wrong, or None.
Check = Callable[[Sequence[Response]], "str | None"]


@dataclass(frozen=True, slots=True)
class Expect:
    """One permitted outcome: the statuses of each response, in order, and the connection state.

    `close` True: the server must close after the last response; False: it must keep the
    connection open; None: either. `incomplete` accepts a last response cut short by the server
    closing (what a server must do when an app fails half-way through a body).
    """

    statuses: tuple[frozenset[int], ...]
    close: bool | None = None
    check: Check | None = None
    incomplete: bool = False
    label: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    responses: tuple[Response, ...]
    closed: bool
    error: str | None = None
    extra: bytes = b""
    reset: bool = False
    send_error: str | None = None
    incomplete: bool = False

    def describe(self) -> str:
        parts = []
        for r in self.responses:
            interim = "".join(f"{s} + " for s in r.interim)
            parts.append(f"{interim}{r.status} ({r.framing}, {len(r.body)} body bytes)")
        text = "; ".join(parts) if parts else "no response"
        if self.error:
            text += f"; error: {self.error}"
        if self.extra:
            text += f"; then unexpected bytes {self.extra[:120]!r}"
        text += "; connection closed" if self.closed else "; connection open"
        if self.reset:
            text += " (reset)"
        if self.send_error:
            text += f"; write failed: {self.send_error}"
        return text


Script = Callable[["Target", float], "str | None"]


@dataclass(frozen=True, slots=True)
class Scenario:
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
    wait: float = 3.0
    tags: tuple[str, ...] = field(default=())

    @property
    def max_responses(self) -> int:
        return max((len(e.statuses) for e in self.expect), default=1)

    @property
    def may_wait(self) -> bool:
        """Some permitted outcome is no response at all, the connection left open."""
        return any(not e.statuses and e.close is not True for e in self.expect)

    @property
    def wants_close(self) -> bool:
        return any(e.close is True for e in self.expect)


def statuses(allowed: frozenset[int]) -> str:
    """200, 204 or a range such as 400-499, for messages."""
    values = sorted(allowed)
    if len(values) > 3 and values[-1] - values[0] + 1 == len(values):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def judge_one(expect: Expect, outcome: Outcome) -> str | None:
    """Why outcome does not match this one permitted outcome, or None when it does."""
    n = len(expect.statuses)
    got = outcome.responses
    if expect.incomplete:
        if not (outcome.incomplete and outcome.closed):
            return "an unfinished response must end with the connection closed mid-body"
    elif outcome.error:
        return outcome.error
    if outcome.extra:
        return f"bytes after the expected responses: {outcome.extra[:120]!r}"
    want = n - 1 if expect.incomplete else n
    if len(got) != want:
        return f"expected {n} response(s), got {len(got)}"
    for i, (allowed, r) in enumerate(zip(expect.statuses, got, strict=False)):
        if r.status not in allowed:
            return f"response {i + 1}: status {r.status}, allowed {statuses(allowed)}"
        if r.violations:
            return f"response {i + 1}: " + "; ".join(r.violations)
    if expect.close is True and not outcome.closed:
        return "the connection stayed open, it must be closed"
    if expect.close is False and outcome.closed:
        return "the connection was closed, it must stay open"
    if expect.check is not None:
        return expect.check(got)
    return None


def judge(scenario: Scenario, outcome: Outcome) -> str | None:
    """None when some permitted outcome matches; otherwise the closest reason it failed."""
    reasons = []
    for expect in scenario.expect:
        why = judge_one(expect, outcome)
        if why is None:
            return None
        label = f"[{expect.label}] " if expect.label and len(scenario.expect) > 1 else ""
        reasons.append(label + why)
    return " | ".join(reasons) if reasons else None
