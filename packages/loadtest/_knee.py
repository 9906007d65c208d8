"""The knee: the highest arrival rate the server sustains, and where its queue began to grow.

In knee mode the arrivals ramp in steps from half the pool's capacity (threads / service time).
A step *sustains* its rate when the sleep route's p95 stays within the SLO and at most
max_fail_ratio of its requests fail; the ramp stops after the first step that does not. The
*queue grows* in a step when its requests wait a service time or more: the median of the
window's last third is half a service time over its first third's (the backlog builds while
we watch), or the window's median is twice the service time (it was built before). The plot
marks the highest sustained rate against the capacity line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from _book import Book
from _plan import Plan, Step
from _tally import HELD, SLEEP, Cell, merged


@dataclass(frozen=True, slots=True)
class KneeStep:
    step: Step
    seconds: float
    sleep: Cell
    total: Cell
    early_p50: float  # sleep p50 in the window's first third, ms
    late_p50: float  # and in its last third
    broken: tuple[str, ...]  # why the step is beyond the SLO; () when it sustained its rate
    short: float = math.nan  # share of the window in which the machine's CPUs were short

    @property
    def rps(self) -> float:
        return self.sleep.answered.total / self.seconds

    @property
    def queue_grows(self) -> bool:
        service = self.step.sleep_ms
        growing = self.late_p50 - self.early_p50 > service / 2
        return growing or self.sleep.quantile(0.5) > 2 * service


def judge_knee_step(step: Step, book: Book, slo_ms: float, max_fail_ratio: float) -> KneeStep:
    sleep = book.cell(step.index, SLEEP)
    total = merged([book.cell(step.index, n) for n in book.names(step.index) if HELD not in n])
    early = book.cell(step.index, SLEEP, parts=(0,)).quantile(0.5)
    late = book.cell(step.index, SLEEP, parts=(2,)).quantile(0.5)
    broken = []
    p95 = sleep.wait_quantile(0.95)
    if p95 > slo_ms:
        broken.append(f"sleep p95 {p95:.0f} ms > {slo_ms:.0f} ms")
    if total.count and total.failures > max_fail_ratio * total.count:
        broken.append(
            f"{total.failures} of {total.count} failed (> {max_fail_ratio:.1%}): "
            f"{total.first_error}"
        )
    if sleep.count == 0:
        broken.append("no sleep request finished")
    seconds = step.seconds - step.settle
    short = book.pressure.get(step.index, math.nan)
    return KneeStep(step, seconds, sleep, total, early, late, tuple(broken), short)


@dataclass(frozen=True, slots=True)
class Knee:
    sustained: KneeStep | None  # the step with the highest answered rate within the SLO
    queue_from: KneeStep | None  # the first step whose queue grows
    broke_at: KneeStep | None  # the first step beyond the SLO

    @property
    def sustained_rps(self) -> float:
        return self.sustained.rps if self.sustained else 0.0

    def describe(self, plan: Plan) -> str:
        if self.sustained is None:
            sustained = "no step sustained its rate"
        else:
            sustained = (
                f"highest sustained rate {self.sustained.rps:.1f} req/s at "
                f"{self.sustained.step.multiple:g}x ({self.sustained.rps / plan.capacity:.0%} of "
                f"the capacity {plan.capacity:.0f} req/s)"
            )
        queue = (
            f"queue grows from {self.queue_from.step.rate:.0f} req/s offered "
            f"({self.queue_from.step.multiple:g}x)"
            if self.queue_from
            else "the queue never grew"
        )
        broke = (
            f"SLO broken at {self.broke_at.step.rate:.0f} req/s ({self.broke_at.step.multiple:g}x)"
            if self.broke_at
            else "SLO never broken"
        )
        return f"{sustained}; {queue}; {broke}"


def find_knee(plan: Plan, steps: Sequence[KneeStep], busy: float = math.inf) -> Knee:
    """The knee of a ramp. Below the capacity, a step whose machine was short of CPU for `busy`
    of its window does not say where the queue began to grow: the machine, not the pool, may
    have made its requests wait. Above the capacity the queue grows by arithmetic."""

    def grows(k: KneeStep) -> bool:
        return k.queue_grows and (k.short < busy or k.step.rate > plan.capacity)

    within = [k for k in steps if not k.broken]
    sustained = max(within, key=lambda k: k.rps, default=None)
    queue_from = next((k for k in steps if grows(k)), None)
    broke_at = next((k for k in steps if k.broken), None)
    return Knee(sustained, queue_from, broke_at)
