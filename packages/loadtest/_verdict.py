"""The check CI gates on: does each step's latency, throughput and failure count look right?

For each step, over its window (the step without its settling start):

- the sleep route's p95 stays under latency_factor x expected + slack, where expected is the
  sleep time while the pool is not saturated and grows with the queue once it is (see _plan);
- the sleep route reaches at least min_throughput of the expected requests per second;
- at most max_fail_ratio of all requests fail;
- new connections are answered, within the same latency bound, while the idle keep-alive
  users hold their connections open: a pool that pins a thread per connection fails here;
- the idle keep-alive users' own requests are answered.

Pure functions over records, so the rules are unit-tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from _plan import Plan, Step
from _records import IDLE, PROBE, SLEEP, Record

STOP_TOLERANCE = 1.0  # seconds: the shape ends a step on a tick, not to the millisecond


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_fail_ratio: float = 0.01
    latency_factor: float = 1.5
    latency_slack_ms: float = 50.0
    min_throughput: float = 0.5

    def latency_bound(self, step: Step) -> float:
        return step.expected_ms * self.latency_factor + self.latency_slack_ms


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Measure:
    """The requests of one name that finished inside a window."""

    count: int
    failures: int
    p50: float
    p95: float
    first_error: str

    @classmethod
    def of(cls, records: Iterable[Record]) -> Measure:
        ok: list[float] = []
        errors: list[str] = []
        for record in records:
            if record.error:
                errors.append(record.error)
            else:
                ok.append(record.ms)
        return cls(
            count=len(ok) + len(errors),
            failures=len(errors),
            p50=percentile(ok, 0.5),
            p95=percentile(ok, 0.95),
            first_error=errors[0] if errors else "",
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    seconds: float
    sleep: Measure
    probe: Measure
    idle: Measure
    total: Measure
    bound: float  # the p95 allowed, ms
    problems: tuple[str, ...]

    @property
    def rps(self) -> float:
        """Successful sleep requests per second."""
        return (self.sleep.count - self.sleep.failures) / self.seconds


def judge_step(
    step: Step, records: Sequence[Record], t0: float, limits: Thresholds, ended: float = math.inf
) -> StepResult:
    """Judge one step; `ended` is when the run stopped, in seconds since t0."""
    lo, hi = step.window
    inside = [r for r in records if lo <= r.t - t0 < hi]
    by_name = {
        name: Measure.of(r for r in inside if r.name == name) for name in (SLEEP, PROBE, IDLE)
    }
    sleep, probe, idle = by_name[SLEEP], by_name[PROBE], by_name[IDLE]
    total = Measure.of(inside)
    seconds = hi - lo
    bound = limits.latency_bound(step)
    result_rps = (sleep.count - sleep.failures) / seconds
    problems: list[str] = []
    if ended < step.end - STOP_TOLERANCE:
        problems.append(f"the run stopped {step.end - ended:.1f} s before this step's end")
        return StepResult(step, seconds, sleep, probe, idle, total, bound, tuple(problems))
    state = "queue grows" if step.saturated else "below the thread count"
    if sleep.count == sleep.failures:
        problems.append(
            f"no sleep request succeeded in {seconds:.1f} s"
            + (f" ({sleep.failures} failed: {sleep.first_error})" if sleep.failures else "")
        )
    elif sleep.p95 > bound:
        problems.append(
            f"sleep p95 {sleep.p95:.0f} ms > {bound:.0f} ms allowed ({state}: expected "
            f"~{step.expected_ms:.0f} ms)"
        )
    needed = step.expected_rps * limits.min_throughput
    if result_rps < needed:
        problems.append(
            f"throughput {result_rps:.1f} req/s < {needed:.1f} "
            f"({limits.min_throughput:g} of the {step.expected_rps:.0f} the pool can do)"
        )
    if total.count and total.failures > limits.max_fail_ratio * total.count:
        problems.append(
            f"{total.failures} of {total.count} requests failed "
            f"(> {limits.max_fail_ratio:.1%}); first: {total.first_error}"
        )
    if probe.count == probe.failures:
        problems.append(
            "no new connection was answered while idle keep-alive users held theirs"
            + (f" ({probe.failures} failed: {probe.first_error})" if probe.failures else "")
        )
    elif probe.p95 > bound:
        problems.append(f"new connections waited: p95 {probe.p95:.0f} ms > {bound:.0f} ms")
    if idle.failures:
        problems.append(f"{idle.failures} idle keep-alive requests failed: {idle.first_error}")
    return StepResult(step, seconds, sleep, probe, idle, total, bound, tuple(problems))


def judge(
    plan: Plan, records: Sequence[Record], t0: float, limits: Thresholds, ended: float = math.inf
) -> list[StepResult]:
    return [judge_step(step, records, t0, limits, ended) for step in plan.steps]


def report(plan: Plan, results: Sequence[StepResult], mode: str) -> str:
    """A table of the steps, then PASS or FAIL with every reason."""
    lines = [
        f"treadle saturation check ({mode} mode, {plan.threads} threads, "
        f"{plan.idle_users} idle keep-alive users)",
        f"{'step':<18}{'offered':>8}{'req/s':>8}{'of':>6}{'p50 ms':>8}{'p95 ms':>8}{'allowed':>8}"
        f"{'fails':>6}{'new-conn p95':>13}",
    ]
    for res in results:
        lines.append(
            f"{res.step.label:<18}{res.step.offered:>8.1f}{res.rps:>8.1f}"
            f"{res.step.expected_rps:>6.0f}{ms(res.sleep.p50):>8}{ms(res.sleep.p95):>8}"
            f"{res.bound:>8.0f}{res.total.failures:>6}{ms(res.probe.p95):>13}"
        )
    problems = [f"  step {r.step.label}: {p}" for r in results for p in r.problems]
    if not problems:
        lines.append("PASS")
    else:
        lines.append(f"FAIL: {diagnose(plan, results)}")
        lines.extend(problems)
    return "\n".join(lines)


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def diagnose(plan: Plan, results: Sequence[StepResult]) -> str:
    """One line saying what most likely went wrong."""
    starved = [r for r in results if r.probe.count == r.probe.failures]
    if starved:
        return (
            f"new connections got no answer while {plan.idle_users} idle keep-alive connections "
            f"were open ({len(starved)} of {len(results)} steps): the pool pins a thread per "
            "connection (keep-alive starvation)"
        )
    failing = [r for r in results if r.problems]
    return f"{len(failing)} of {len(results)} steps out of bounds"
