"""Run one scenario against a target and give it its two verdicts.

An exchange opens a fresh connection, writes the scenario's bytes (whole, byte by byte, or in
random pieces) and reads as many responses as the scenario can expect. Then it settles what is
left on the connection, with no fixed window for stray bytes:

- if the scenario or the last response asks for a close, it waits (bounded) for the close, and
  any bytes before it are stray;
- if the connection is still open, it sends the sentinel request (see `verdict`), which asks
  the server to close, and reads every response up to the close. A server that closes after
  answering the sentinel on a fresh connection is read until it closes; one that does not gets
  `close_wait` for a second response.

A scenario whose permitted outcomes include "keep reading the body" (a huge Content-Length) and
that got no response is not sent a sentinel: the server is right to swallow it.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from treadle_conformance.backend import describe_all, judge_forwarded
from treadle_conformance.model import Level, Outcome, Scenario
from treadle_conformance.splicing import follow_up
from treadle_conformance.target import Target
from treadle_conformance.verdict import safety, strictness
from treadle_conformance.wire import Incomplete, Response, ResponseError, Wire, http2_settings

VARIANTS = ("whole", "bytes", "random")


@dataclass(frozen=True, slots=True)
class Result:
    """A scenario's verdicts: `safety` is safe, unsafe or n/a (a script; nothing to desync);
    `strict` is pass or miss; both are skip when the scenario could not run."""

    scenario: Scenario
    variant: str
    safety: str
    strict: str
    safety_reason: str
    strict_reason: str
    observed: str
    seconds: float
    sent: bytes = b""
    received: bytes = b""
    note: str = ""

    @property
    def case_id(self) -> str:
        return case_id(self.scenario, self.variant)

    @property
    def unsafe(self) -> bool:
        return self.safety == "unsafe"

    @property
    def status(self) -> str:
        """pass, fail (unsafe, or a MUST missed), miss (a SHOULD/MAY missed) or skip."""
        if self.strict == "skip":
            return "skip"
        if self.unsafe or (self.strict == "miss" and self.scenario.level is Level.MUST):
            return "fail"
        return "miss" if self.strict == "miss" else "pass"

    @property
    def reason(self) -> str:
        parts = []
        if self.unsafe:
            parts.append(f"UNSAFE: {self.safety_reason}")
        if self.strict in {"miss", "skip"}:
            parts.append(self.strict_reason)
        return " / ".join(parts)

    @property
    def gating_failure(self) -> bool:
        return self.status == "fail"


def case_id(scenario: Scenario, variant: str) -> str:
    return scenario.id if variant == "whole" else f"{scenario.id}@{variant}"


def variants(scenarios: Iterable[Scenario]) -> Iterator[tuple[Scenario, str]]:
    for scenario in scenarios:
        for variant in VARIANTS if scenario.fragment else VARIANTS[:1]:
            yield scenario, variant


def _awaits_close(scenario: Scenario, n: int) -> bool:
    """Every permitted outcome with n responses ends in a close: wait for it."""
    matching = [e for e in scenario.expect if len(e.statuses) == n]
    return bool(matching) and all(e.close is True for e in matching)


def _read_scenario(
    wire: Wire, scenario: Scenario, timeout: float
) -> tuple[list[Response], str | None, str]:
    """The scenario's responses, an error, and its kind: "", "incomplete" or "invalid".
    Each response is awaited `timeout` seconds (the run's), or the scenario's own `wait`."""
    wait = timeout if scenario.wait is None else scenario.wait
    responses: list[Response] = []
    for i in range(scenario.max_responses):
        try:
            response = wire.read_response(head=i in scenario.heads, timeout=wait)
        except Incomplete as exc:
            return responses, str(exc), "incomplete"
        except ResponseError as exc:
            return responses, str(exc), "invalid"
        except TimeoutError:
            if scenario.wants_close or scenario.may_wait:
                return responses, None, ""
            return responses, f"no response {i + 1} within {wait}s", ""
        if response is None:
            break
        responses.append(response)
    return responses, None, ""


def _late(wire: Wire, room: int) -> list[Response]:
    """Responses that came after the scenario's wait but before the close (a server that
    times out a request it was still reading): answers, not strays, while there is room."""
    late: list[Response] = []
    while wire.buf and len(late) < room:
        try:
            response = wire.read_response(timeout=0.0)
        except ResponseError:
            break
        if response is None:
            break
        late.append(response)
    return late


def _read_after(wire: Wire, target: Target) -> tuple[list[Response], str | None, bool]:
    """Every response after the sentinel request, an error, and whether silence ended it."""
    settings = target.settings
    closes = target.baseline.closes if target.baseline else True
    after: list[Response] = []
    while True:
        try:
            response = wire.read_response(timeout=settings.timeout)
        except ResponseError as exc:
            return after, str(exc), False
        except TimeoutError:
            return after, None, True
        if response is None:
            return after, None, False
        after.append(response)
        if not closes and not wire.wait_readable(settings.close_wait):
            return after, None, False


def exchange(scenario: Scenario, target: Target, variant: str = "whole") -> Outcome:
    with target.connect() as wire:
        outcome = _exchange(wire, scenario, target, variant)
        return replace(outcome, raw_sent=bytes(wire.sent), raw=bytes(wire.received))


def _exchange(wire: Wire, scenario: Scenario, target: Target, variant: str) -> Outcome:
    rng = random.Random(zlib.crc32(scenario.id.encode()))
    for i, data in enumerate(scenario.send):
        if i and scenario.pause:
            # Pacing the client, not waiting for the server: the scenario is a pause.
            time.sleep(scenario.pause)
        wire.send(target.host_for(data), variant, rng)
    if scenario.shutdown_write:
        wire.shutdown_write()
    responses, error, kind = _read_scenario(wire, scenario, target.settings.timeout)
    if scenario.http2_allowed and not responses and http2_settings(bytes(wire.received)):
        # HTTP/2 from here on: nothing on this connection is HTTP/1.1 any more.
        return Outcome(responses=(), closed=wire.eof, http2=True)
    if kind:
        wire.wait_closed(0 if kind == "invalid" else target.settings.close_wait)
        return Outcome(
            responses=tuple(responses),
            closed=wire.eof,
            error=error,
            reset=wire.reset,
            send_error=wire.send_error,
            incomplete=kind == "incomplete",
            invalid=kind == "invalid",
        )
    if not wire.eof and (
        _awaits_close(scenario, len(responses)) or (responses and responses[-1].signals_close())
    ):
        wire.wait_closed(target.settings.close_wait)
    if wire.eof:
        late = _late(wire, scenario.max_responses - len(responses))
        return Outcome(
            responses=tuple(responses),
            closed=True,
            error=error,
            extra=bytes(wire.buf),
            reset=wire.reset,
            send_error=wire.send_error,
            late=tuple(late),
        )
    # A proxy that has not answered an upstream scenario is still busy with the harness's own
    # backend (which answered at once): a sentinel would only wait behind it. Its follow-ups
    # on fresh connections judge the safety instead.
    waiting = not responses and (scenario.may_wait or scenario.follow > 0)
    if waiting or wire.send_error is not None:
        return Outcome(
            responses=tuple(responses), closed=False, error=error, send_error=wire.send_error
        )
    wire.send(target.sentinel())
    after, after_error, silent = _read_after(wire, target)
    return Outcome(
        responses=tuple(responses),
        closed=not after and not silent and after_error is None,
        error=error,
        reset=wire.reset,
        send_error=None,
        sentinel=True,
        after=tuple(after),
        after_error=after_error,
        after_timeout=silent,
        after_closed=wire.eof,
    )


def skip(scenario: Scenario, variant: str, why: str) -> Result:
    return Result(scenario, variant, "skip", "skip", why, why, "", 0.0)


def run(scenario: Scenario, target: Target, variant: str = "whole") -> Result:
    if scenario.needs_app and not target.reflect:
        return skip(scenario, variant, "need the reflection app's /_/ routes")
    if scenario.wsgi_only and target.interface == "asgi":
        return skip(scenario, variant, "needs a WSGI app: ASGI cannot express the behaviour")
    if scenario.shutdown_write and target.tls is not None:
        return skip(scenario, variant, "needs a TCP half-close, which TLS here cannot give")
    if scenario.needs_backend and target.backend is None:
        return skip(scenario, variant, "needs proxy mode: the harness's backend misbehaves")
    start = time.monotonic()
    if scenario.script is not None:
        try:
            reason = scenario.script(target, 1.0)
        except (OSError, ResponseError) as exc:
            reason = f"could not talk to the server: {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - start
        return Result(
            scenario,
            variant,
            "n/a",
            "miss" if reason else "pass",
            "",
            reason or "",
            reason or "as expected",
            seconds,
        )
    mark = target.backend.mark() if target.backend else 0
    try:
        outcome = exchange(scenario, target, variant)
    except OSError as exc:
        why = f"could not talk to the server: {type(exc).__name__}: {exc}"
        return Result(scenario, variant, "n/a", "miss", "", why, why, time.monotonic() - start)
    unsafe = safety(scenario, outcome, target.baseline, target.settings.timeout)
    observed = outcome.describe()
    if target.backend is not None:
        stray = follow_up(target, scenario.id, scenario.follow) if scenario.follow else None
        if stray:
            unsafe = f"a backend response was spliced: {stray}" + (f" / {unsafe}" if unsafe else "")
        elif scenario.follow:
            observed += f"; {scenario.follow} follow-ups each answered for itself"
        forwarded = target.backend.since(mark)
        observed += f"; backend: {describe_all(forwarded)}"
        behind = judge_forwarded(forwarded, scenario.max_responses, target.settings.path)
        if behind:
            unsafe = f"behind the proxy: {behind}" + (f" / {unsafe}" if unsafe else "")
    seconds = time.monotonic() - start
    strict = strictness(scenario, outcome, target.reflect)
    note = "" if target.reflect or not scenario.reflect else "the app's view was not checked"
    return Result(
        scenario,
        variant,
        "unsafe" if unsafe else "safe",
        "miss" if strict else "pass",
        unsafe or "",
        strict or "",
        observed,
        seconds,
        sent=outcome.raw_sent,
        received=outcome.raw,
        note=note,
    )
