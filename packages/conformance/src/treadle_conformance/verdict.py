"""Two verdicts per scenario: is the server safe, and does it answer as the RFC prefers.

**Safety** asks one question: could the server's reading of the bytes differ from the
catalogue's, so that a client or a proxy in front of it is desynchronised? Its evidence is
generic, the same for every scenario: a response stream that cannot be framed, a response left
unfinished on an open connection, bytes after the last response, the reflection app answering
the smuggled request, and above all the sentinel. After the scenario's own responses, if the
connection is still open, the runner sends one more request on it (asking for a close) and
reads everything that comes back. A server that framed the scenario as the catalogue does
answers it exactly as it answers the sentinel on a fresh connection; a second response, a
different answer, or silence means leftover bytes were read as (part of) a request, or may be.
There is no timing window: a stray response that comes late still comes before the sentinel's.

**Strictness** matches the outcome against the scenario's permitted outcomes (statuses, close,
checks) and is graded at the level of the clause the scenario cites. Against a target without
the reflection app, a status the catalogue expects from the app (200) stands for "accepted":
any status but a refusal; the checks that read the app's view are not judged.
"""

from __future__ import annotations

from collections.abc import Sequence

from treadle_conformance.model import AppCheck, Expect, Outcome, Scenario, statuses
from treadle_conformance.target import REFUSALS, Baseline
from treadle_conformance.wire import Response

ACCEPTED = frozenset(range(100, 600)) - REFUSALS
SUCCESS = frozenset(range(200, 300))
SMUGGLED_PATH = "/smuggled"


def _allowed(allowed: frozenset[int], app: bool) -> frozenset[int]:
    if not app and allowed <= SUCCESS:
        return ACCEPTED
    return allowed


def _label(allowed: frozenset[int]) -> str:
    return "any status but a refusal" if allowed == ACCEPTED else statuses(allowed)


def judge_one(expect: Expect, outcome: Outcome, app: bool = True) -> str | None:
    """Why outcome does not match this one permitted outcome, or None when it does."""
    if expect.http2 != outcome.http2:
        return outcome.describe() if outcome.http2 else "no HTTP/2 SETTINGS frame"
    if expect.http2:
        return None
    n = len(expect.statuses)
    got = outcome.responses
    if expect.incomplete:
        if not (outcome.incomplete and outcome.closed):
            return "an unfinished response must end with the connection closed mid-body"
    elif outcome.error:
        return outcome.error
    want = n - 1 if expect.incomplete else n
    if len(got) != want:
        return f"expected {n} response(s), got {len(got)}"
    for i, (listed, r) in enumerate(zip(expect.statuses, got, strict=False)):
        allowed = _allowed(listed, app)
        if r.status not in allowed:
            return f"response {i + 1}: status {r.status}, allowed {_label(allowed)}"
        if r.violations:
            return f"response {i + 1}: " + "; ".join(r.violations)
    if expect.close is True and not outcome.closed:
        return "the connection stayed open, it must be closed"
    if expect.close is False and outcome.closed:
        return "the connection was closed, it must stay open"
    if expect.check is not None and (app or not isinstance(expect.check, AppCheck)):
        return expect.check(got)
    return None


def strictness(scenario: Scenario, outcome: Outcome, app: bool = True) -> str | None:
    """None when some permitted outcome matches; otherwise the closest reason it failed."""
    reasons = []
    for expect in scenario.expect:
        why = judge_one(expect, outcome, app)
        if why is None:
            return None
        label = f"[{expect.label}] " if expect.label and len(scenario.expect) > 1 else ""
        reasons.append(label + why)
    return " | ".join(reasons) if reasons else None


def _smuggled(responses: Sequence[Response]) -> bool:
    for r in responses:
        data = r.json()
        if data is not None and str(data.get("path", "")).startswith(SMUGGLED_PATH):
            return True
    return False


def safety(
    scenario: Scenario, outcome: Outcome, baseline: Baseline | None, wait: float = 3.0
) -> str | None:
    """Why a desync was observed or cannot be ruled out; None when the exchange was safe."""
    if outcome.http2:
        return None
    if outcome.invalid:
        return f"the response stream cannot be framed: {outcome.error}"
    if outcome.incomplete and not outcome.closed:
        return (
            "a response was left unfinished on an open connection: a client reads the next "
            f"response as its rest ({outcome.error})"
        )
    everything = (*outcome.responses, *outcome.late, *outcome.after)
    if _smuggled(everything):
        return "the smuggled request was answered"
    if scenario.hazard is not None:
        why = scenario.hazard(everything)
        if why:
            return why
    if outcome.extra:
        return f"bytes after the expected responses, before the close: {outcome.extra[:120]!r}"
    if not outcome.sentinel:
        return None
    if outcome.after_error:
        return f"after the sentinel request: {outcome.after_error}"
    after = outcome.after
    answered = len(outcome.responses) + len(outcome.late) + len(after)
    if answered > scenario.max_responses + 1:
        codes = ", ".join(str(r.status) for r in after)
        return (
            f"{answered} responses to {scenario.max_responses} request(s) and the sentinel "
            f"(after the scenario's: {codes}): the server answered bytes the scenario left on "
            "the connection"
        )
    if after and baseline is not None:
        why = baseline.differs(after[-1])
        if why:
            return f"the sentinel request got {why}: bytes the scenario left were read with it"
    if not after and outcome.after_timeout:
        return (
            f"no answer to the sentinel request within {wait}s: the server may be reading it as "
            "part of the scenario's bytes"
        )
    return None
