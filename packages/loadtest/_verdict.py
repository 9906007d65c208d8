"""The check CI gates on: each phase of the run against its rules.

Starvation attacks (one phase each): while the attackers hold their connections, new
connections must be answered within attack_bound_ms, judged on the 90th percentile of their
waits with every unanswered one counted as longer than any answer. That separates "answered in
milliseconds" from "waits seconds, or until the client gives up", which is what pools that give
a thread to a connection do; the idle keep-alive attackers' own requests must succeed too.

Closed and open steps, over each step's window (the step without its settling start):

- the sleep route's p95 stays under latency_factor x expected + slack, where expected is the
  sleep time while the pool is not saturated and grows with the queue once it is (see _plan);
- the sleep route reaches at least min_throughput of the expected requests per second;
- at most max_fail_ratio of all requests fail;
- new connections are answered within the same latency bound.

Knee steps are judged as a ramp (see _knee). Pure functions over the book, so the rules are
unit-tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from _book import SETTLING, WINDOW, Book
from _knee import Knee, KneeStep, find_knee, judge_knee_step
from _plan import WHAT, Attack, Plan, Step
from _settings import Settings
from _tally import HELD, IDLE, NEWCOMER, SLEEP, Cell, held, merged

STOP_TOLERANCE = 1.0  # seconds: the shape ends a phase on a tick, not to the millisecond
ATTACK_QUANTILE = 0.9

REASON = {
    "silent": "a thread waits on each new connection for its request",
    "half-head": "a thread waits on each request head until it is complete",
    "slow-body": "a thread reads each request body at the client's pace",
    "no-read": "a thread waits on each client until it reads its response",
    "idle-keep-alive": "the pool pins a thread per connection (keep-alive starvation)",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_fail_ratio: float = 0.01
    latency_factor: float = 2.0
    latency_slack_ms: float = 100.0
    min_throughput: float = 0.5
    attack_bound_ms: float = 1000.0
    slo_ms: float = 500.0
    timeout_ms: float = 5000.0
    busy_pressure: float = 0.5

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(
            max_fail_ratio=settings.max_fail_ratio,
            latency_factor=settings.latency_factor,
            latency_slack_ms=settings.latency_slack_ms,
            min_throughput=settings.min_throughput,
            attack_bound_ms=settings.attack_bound_ms,
            slo_ms=settings.slo_ms,
            timeout_ms=settings.request_timeout * 1000,
            busy_pressure=settings.busy_pressure,
        )

    def latency_bound(self, step: Step) -> float:
        return step.expected_ms * self.latency_factor + self.latency_slack_ms


@dataclass(frozen=True, slots=True)
class AttackResult:
    attack: Attack
    newcomer: Cell
    idle: Cell
    closed_after_ms: float  # median time the server kept an attacker's connection; NaN: never
    recovered_after: float  # seconds from the attack's end to an answer; inf: none came
    bound: float  # ms a new connection may wait
    problems: tuple[str, ...] = ()

    def wait(self, fraction: float) -> float:
        return self.newcomer.wait_quantile(fraction)

    @property
    def over(self) -> int:
        """New connections not answered within the bound (unanswered ones included)."""
        return self.newcomer.failures + self.newcomer.answered.count_above(self.bound)


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    seconds: float
    sleep: Cell
    newcomer: Cell
    idle: Cell
    total: Cell
    bound: float  # the p95 allowed, ms
    problems: tuple[str, ...]
    short: float = math.nan  # share of the window in which the machine's CPUs were short
    notes: tuple[str, ...] = ()  # timing rules left unjudged on a machine too busy to time

    @property
    def rps(self) -> float:
        """Answered sleep requests per second."""
        return self.sleep.answered.total / self.seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    plan: Plan
    limits: Thresholds
    attacks: tuple[AttackResult, ...]
    steps: tuple[StepResult, ...]
    knee_steps: tuple[KneeStep, ...]
    knee: Knee | None
    knee_problems: tuple[str, ...]
    knee_notes: tuple[str, ...] = ()

    @property
    def problems(self) -> list[str]:
        found = [f"{r.attack.attack}: {p}" for r in self.attacks for p in r.problems]
        found += [f"step {r.step.label}: {p}" for r in self.steps for p in r.problems]
        return found + [f"knee: {p}" for p in self.knee_problems]

    @property
    def notes(self) -> list[str]:
        found = [f"step {r.step.label}: {n}" for r in self.steps for n in r.notes]
        return found + [f"knee: {n}" for n in self.knee_notes]

    @property
    def passed(self) -> bool:
        return not self.problems


def stopped_early(book: Book, index: int, ended: float) -> str | None:
    started = book.started(index)
    if started is None:
        return "the run stopped before this phase began"
    if ended < started.end - STOP_TOLERANCE:
        return f"the run stopped {started.end - ended:.1f} s before this phase's end"
    return None


def judge_attack(attack: Attack, book: Book, limits: Thresholds, ended: float) -> AttackResult:
    newcomer = book.cell(attack.index, NEWCOMER)
    idle = book.cell(attack.index, IDLE)
    holds = book.cell(attack.index, held(attack.attack), parts=(SETTLING, *WINDOW))
    bound = limits.attack_bound_ms
    recovered = book.recovered.get(attack.index, math.nan)
    result = AttackResult(attack, newcomer, idle, holds.quantile(0.5), recovered, bound)
    if early := stopped_early(book, attack.index, ended):
        return replace(result, problems=(early,))
    problems: list[str] = []
    if newcomer.count == 0:
        problems.append("no new connection was tried")
    elif (wait := result.wait(ATTACK_QUANTILE)) > bound:
        unanswered = f"{newcomer.failures} unanswered" + (
            f": {newcomer.first_error}" if newcomer.failures else ""
        )
        problems.append(
            f"new connections waited: p90 {waited(wait)} > {bound:.0f} ms "
            f"({result.over} of {newcomer.count} over, {unanswered}): {REASON[attack.attack]}"
        )
    if idle.failures:
        problems.append(f"{idle.failures} idle keep-alive requests failed: {idle.first_error}")
    return replace(result, problems=tuple(problems))


def judge_step(step: Step, book: Book, limits: Thresholds, ended: float) -> StepResult:
    """The rules of a closed or open step. Latency and throughput are timing: on a machine whose
    CPUs were short for --busy-pressure of the window they become notes, and what no busy
    machine excuses (nothing answered, failures, idle users failing) is still judged."""
    sleep, newcomer, idle = (book.cell(step.index, name) for name in (SLEEP, NEWCOMER, IDLE))
    total = merged([book.cell(step.index, n) for n in book.names(step.index) if HELD not in n])
    seconds = step.seconds - step.settle
    bound = limits.latency_bound(step)
    short = book.pressure.get(step.index, math.nan)
    result = StepResult(step, seconds, sleep, newcomer, idle, total, bound, (), short)
    if early := stopped_early(book, step.index, ended):
        return replace(result, problems=(early,))
    problems: list[str] = []
    timing: list[str] = []
    state = "queue grows" if step.saturated else "below the thread count"
    if sleep.answered.total == 0:
        problems.append(
            f"no sleep request succeeded in {seconds:.1f} s"
            + (f" ({sleep.failures} failed: {sleep.first_error})" if sleep.failures else "")
        )
    elif (p95 := sleep.quantile(0.95)) > bound:
        timing.append(
            f"sleep p95 {p95:.0f} ms > {bound:.0f} ms allowed ({state}: expected "
            f"~{step.expected_ms:.0f} ms)"
        )
    needed = step.expected_rps * limits.min_throughput
    if sleep.answered.total and result.rps < needed:
        timing.append(
            f"throughput {result.rps:.1f} req/s < {needed:.1f} "
            f"({limits.min_throughput:g} of the {step.expected_rps:.0f} the pool can do)"
        )
    if total.count and total.failures > limits.max_fail_ratio * total.count:
        problems.append(
            f"{total.failures} of {total.count} requests failed "
            f"(> {limits.max_fail_ratio:.1%}); first: {total.first_error}"
        )
    if newcomer.answered.total == 0:
        problems.append(
            "no new connection was answered"
            + (f" ({newcomer.failures} failed: {newcomer.first_error})" if newcomer.count else "")
        )
    elif math.isinf(p95 := newcomer.wait_quantile(0.95)):  # unanswered: no busy machine excuses
        problems.append(
            f"new connections got no answer: {newcomer.failures} of {newcomer.count} "
            f"({newcomer.first_error})"
        )
    elif p95 > bound:
        timing.append(f"new connections waited: p95 {waited(p95)} > {bound:.0f} ms")
    if idle.failures:
        problems.append(f"{idle.failures} idle keep-alive requests failed: {idle.first_error}")
    if short >= limits.busy_pressure:
        why = f"not judged, the machine's CPUs were short {short:.0%} of the window"
        return replace(result, problems=tuple(problems), notes=tuple(f"{why}: {t}" for t in timing))
    return replace(result, problems=tuple(problems + timing))


def judge(plan: Plan, book: Book, limits: Thresholds, ended: float = math.inf) -> Verdict:
    """Judge every phase; `ended` is when the run stopped, in seconds since t0."""
    attacks = tuple(judge_attack(a, book, limits, ended) for a in plan.attacks)
    if plan.mode != "knee":
        steps = tuple(judge_step(s, book, limits, ended) for s in plan.steps)
        return Verdict(plan, limits, attacks, steps, (), None, ())
    knee_steps = tuple(
        judge_knee_step(s, book, limits.slo_ms, limits.max_fail_ratio)
        for s in plan.steps
        if book.started(s.index) is not None
    )
    knee = find_knee(plan, knee_steps, limits.busy_pressure)
    problems: list[str] = []
    if not knee_steps:
        problems.append("no step ran")
    elif knee.sustained is None:
        problems.append(
            f"even {knee_steps[0].step.rate:.0f} req/s ({knee_steps[0].step.multiple:g}x the "
            f"capacity) broke the SLO: {'; '.join(knee_steps[0].broken)}"
        )
    elif knee.sustained_rps < limits.min_throughput * plan.capacity:
        problems.append(
            f"highest sustained rate {knee.sustained_rps:.1f} req/s < {limits.min_throughput:g} "
            f"of the capacity ({plan.capacity:.0f} req/s)"
        )
    shortest = max((book.pressure.get(k.step.index, 0.0) for k in knee_steps), default=0.0)
    if problems and knee_steps and shortest >= limits.busy_pressure:
        why = f"not judged, the machine's CPUs were short {shortest:.0%} of a step"
        notes = tuple(f"{why}: {p}" for p in problems)
        return Verdict(plan, limits, attacks, (), knee_steps, knee, (), notes)
    return Verdict(plan, limits, attacks, (), knee_steps, knee, tuple(problems))


def ms(value: float) -> str:
    """A latency for the tables: "-" when nothing was measured, "no ans" when unanswered."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "no ans"
    return f"{value:.0f}"


def recovery(seconds: float) -> str:
    """When the server answered again after the attackers left."""
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "gave up"
    return f"after {seconds:.0f} s" if seconds >= 1.5 else "at once"


def percent(share: float) -> str:
    return "-" if math.isnan(share) else f"{share:.0%}"


def waited(value: float) -> str:
    return "no answer" if math.isinf(value) else f"{value:.0f} ms"


def attack_table(verdict: Verdict) -> list[str]:
    plan, limits = verdict.plan, verdict.limits
    attackers = plan.attacks[0].attackers if plan.attacks else 0
    lines = [
        f"starvation: {attackers} connections per attack; new connections must be answered "
        f"within {limits.attack_bound_ms:.0f} ms (p90, unanswered counted as slow)",
        f"{'attack':<16}{'closed by server':>17}{'new':>5}{'over':>5}{'p50 ms':>8}{'p90 ms':>8}"
        f"{'max ms':>8}{'answers again':>15}  verdict",
    ]
    for r in verdict.attacks:
        closed = "-" if math.isnan(r.closed_after_ms) else f"after {r.closed_after_ms / 1000:.1f} s"
        lines.append(
            f"{r.attack.attack:<16}{closed:>17}{r.newcomer.count:>5}{r.over:>5}"
            f"{ms(r.wait(0.5)):>8}{ms(r.wait(0.9)):>8}{ms(r.wait(1.0)):>8}"
            f"{recovery(r.recovered_after):>15}  {'FAIL' if r.problems else 'pass'}"
        )
    return lines


def step_table(verdict: Verdict) -> list[str]:
    lines = [
        f"{'step':<18}{'offered':>8}{'req/s':>8}{'of':>6}{'p50 ms':>8}{'p95 ms':>8}{'allowed':>8}"
        f"{'fails':>6}{'new-conn p95':>13}{'cpu short':>10}"
    ]
    for r in verdict.steps:
        lines.append(
            f"{r.step.label:<18}{r.step.offered:>8.1f}{r.rps:>8.1f}"
            f"{r.step.expected_rps:>6.0f}{ms(r.sleep.quantile(0.5)):>8}"
            f"{ms(r.sleep.quantile(0.95)):>8}{r.bound:>8.0f}{r.total.failures:>6}"
            f"{ms(r.newcomer.wait_quantile(0.95)):>13}{percent(r.short):>10}"
        )
    return lines


def knee_table(verdict: Verdict) -> list[str]:
    plan, knee = verdict.plan, verdict.knee
    lines = [
        f"knee: arrivals ramp until sleep p95 > {plan.slo_ms:.0f} ms or failures > "
        f"{verdict.limits.max_fail_ratio:.1%}; capacity {plan.capacity:.0f} req/s "
        f"({plan.threads} threads / {plan.sleep_ms} ms)",
        f"{'step':<18}{'offered':>8}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'fails':>6}"
        f"{'cpu short':>10}  state",
    ]
    for k in verdict.knee_steps:
        state = "beyond SLO" if k.broken else ("queue grows" if k.queue_grows else "steady")
        if k.short >= verdict.limits.busy_pressure:
            state += " (busy machine)"
        lines.append(
            f"{k.step.label:<18}{k.step.rate:>8.1f}{k.rps:>8.1f}{ms(k.sleep.quantile(0.5)):>8}"
            f"{ms(k.sleep.quantile(0.95)):>8}{k.total.failures:>6}{percent(k.short):>10}  {state}"
        )
    if knee is not None:
        lines.append(knee.describe(plan))
    return lines


def report(verdict: Verdict, server: str) -> str:
    """The tables, then PASS or FAIL with every reason."""
    plan = verdict.plan
    lines = [
        f"{server}: {plan.mode} mode, {plan.threads} threads, sleep {plan.sleep_ms} ms, "
        f"{plan.idle_users} idle keep-alive users during the steps"
    ]
    if verdict.attacks:
        lines += attack_table(verdict)
    if verdict.steps:
        lines += step_table(verdict)
    if verdict.knee_steps or plan.mode == "knee":
        lines += knee_table(verdict)
    notes = verdict.notes
    if verdict.passed:
        lines.append(
            "PASS" + (f" ({len(notes)} timing rules not judged: busy machine)" if notes else "")
        )
    else:
        lines.append(f"FAIL: {diagnose(verdict)}")
        lines.extend(f"  {p}" for p in verdict.problems)
    lines.extend(f"  note: {n}" for n in notes)
    return "\n".join(lines)


def diagnose(verdict: Verdict) -> str:
    """One line saying what most likely went wrong."""
    starved = [r.attack.attack for r in verdict.attacks if r.problems]
    steps: Sequence[StepResult] = verdict.steps
    unanswered = [r for r in steps if math.isinf(r.newcomer.wait_quantile(0.95))]
    parts = []
    if starved:
        parts.append(f"new connections starved by {', '.join(starved)} connections")
    if unanswered:
        parts.append(
            f"new connections got no answer while {verdict.plan.idle_users} idle keep-alive "
            f"connections were open ({len(unanswered)} of {len(steps)} steps)"
        )
    failing = [r for r in steps if r.problems and r not in unanswered]
    if failing:
        parts.append(f"{len(failing)} of {len(steps)} steps out of bounds")
    if verdict.knee_problems:
        parts.append("the knee is below the bar")
    return "; ".join(parts) or "out of bounds"


def describe_attacks(plan: Plan) -> list[str]:
    return [f"{a.attack}: {WHAT[a.attack]}" for a in plan.attacks]
