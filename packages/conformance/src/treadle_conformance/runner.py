"""Run one scenario against a target and judge it.

An exchange opens a fresh connection, writes the scenario's bytes (whole, byte by byte, or in
random pieces), reads as many responses as the scenario can expect, then looks at what follows:
for a scenario that requires a close it waits (bounded) for the end of the stream, otherwise it
listens briefly for stray bytes, which is how a second response or a body on HEAD shows up.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from treadle_conformance.model import Level, Outcome, Scenario, judge
from treadle_conformance.target import Target
from treadle_conformance.wire import Incomplete, ResponseError

VARIANTS = ("whole", "bytes", "random")
RESPONSE_TIMEOUT = 3.0
CLOSE_WAIT = 2.0
LINGER = 0.05


@dataclass(frozen=True, slots=True)
class Result:
    scenario: Scenario
    variant: str
    status: str  # "pass", "fail", "skip"
    reason: str
    observed: str
    seconds: float

    @property
    def case_id(self) -> str:
        return case_id(self.scenario, self.variant)

    @property
    def gating_failure(self) -> bool:
        return self.status == "fail" and self.scenario.level is Level.MUST


def case_id(scenario: Scenario, variant: str) -> str:
    return scenario.id if variant == "whole" else f"{scenario.id}@{variant}"


def variants(scenarios: Iterable[Scenario]) -> Iterator[tuple[Scenario, str]]:
    for scenario in scenarios:
        for variant in VARIANTS if scenario.fragment else VARIANTS[:1]:
            yield scenario, variant


def exchange(scenario: Scenario, target: Target, variant: str = "whole") -> Outcome:
    rng = random.Random(zlib.crc32(scenario.id.encode()))
    responses = []
    error = None
    incomplete = False
    with target.connect() as wire:
        for data in scenario.send:
            wire.send(data, variant, rng)
        if scenario.shutdown_write:
            wire.shutdown_write()
        for i in range(scenario.max_responses):
            try:
                response = wire.read_response(head=i in scenario.heads, timeout=scenario.wait)
            except Incomplete as exc:
                error, incomplete = str(exc), True
                break
            except ResponseError as exc:
                error = str(exc)
                break
            except TimeoutError:
                if not (scenario.wants_close or scenario.may_wait):
                    error = f"no response {i + 1} within {scenario.wait}s"
                break
            if response is None:
                break
            responses.append(response)
        extra = b""
        if error is None and not wire.eof:
            if scenario.wants_close:
                wire.wait_closed(CLOSE_WAIT)
            elif wire.wait_readable(LINGER):
                wire.wait_closed(LINGER)
            extra = bytes(wire.buf)
        return Outcome(
            responses=tuple(responses),
            closed=wire.eof,
            error=error,
            extra=extra,
            reset=wire.reset,
            send_error=wire.send_error,
            incomplete=incomplete,
        )


def run(scenario: Scenario, target: Target, variant: str = "whole") -> Result:
    start = time.monotonic()
    if scenario.reflect and not target.reflect:
        return Result(scenario, variant, "skip", "needs the reflection app", "", 0.0)
    if scenario.script is not None:
        try:
            reason = scenario.script(target, 1.0)
        except (OSError, ResponseError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        observed = reason or "as expected"
    else:
        try:
            outcome = exchange(scenario, target, variant)
        except OSError as exc:
            reason = observed = f"could not talk to the server: {type(exc).__name__}: {exc}"
        else:
            reason = judge(scenario, outcome)
            observed = outcome.describe()
    seconds = time.monotonic() - start
    return Result(scenario, variant, "fail" if reason else "pass", reason or "", observed, seconds)
