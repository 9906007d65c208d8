"""The knee on made-up ramps: the highest sustained rate, where the queue grew, the SLO break."""

from __future__ import annotations

from _fakes import begun, fill, settings, start_of

from _book import Book
from _knee import find_knee, judge_knee_step
from _plan import Plan, Step, make_plan
from _tally import SLEEP
from _verdict import Thresholds, judge, report


def arrivals(
    book: Book, step: Step, first_ms: float, last_ms: float
) -> list[tuple[float, str, float, str]]:
    """Open-loop arrivals at the step's rate, latency moving from first_ms to last_ms."""
    start = start_of(book, step)
    n = int(step.seconds * step.rate)
    return [
        (start + i / step.rate, SLEEP, first_ms + (last_ms - first_ms) * i / n, "")
        for i in range(n)
    ]


def ramp() -> tuple[Plan, Book]:
    plan = make_plan(settings(mode="knee", attacks="", steps="0.5,1,1.5"), threads=5)
    book = begun(plan)
    low, full, over = plan.steps
    fill(book, arrivals(book, low, 102, 104))
    fill(book, arrivals(book, full, 110, 180))  # waits a little, not a service time
    fill(book, arrivals(book, over, 200, 3000))  # the backlog builds
    return plan, book


def test_the_knee_is_the_highest_rate_within_the_slo() -> None:
    plan, book = ramp()
    steps = [judge_knee_step(s, book, 500.0, 0.01) for s in plan.steps]
    assert [bool(k.broken) for k in steps] == [False, False, True]
    assert [k.queue_grows for k in steps] == [False, False, True]
    knee = find_knee(plan, steps)
    assert knee.sustained is steps[1]
    assert 49 <= knee.sustained_rps <= 51
    assert knee.queue_from is steps[2]
    assert knee.broke_at is steps[2]
    assert knee.describe(plan).startswith("highest sustained rate 5")


def test_knee_mode_passes_a_pool_that_sustains_its_capacity() -> None:
    plan, book = ramp()
    verdict = judge(plan, book, Thresholds(slo_ms=500.0))
    assert verdict.passed
    text = report(verdict, "treadle")
    assert "queue grows from 75 req/s offered (1.5x); SLO broken at 75 req/s" in text


def test_knee_mode_fails_when_even_half_the_capacity_breaks_the_slo() -> None:
    plan = make_plan(settings(mode="knee", attacks="", steps="0.5"), threads=5)
    book = begun(plan)
    fill(book, arrivals(book, plan.steps[0], 900, 1200))
    verdict = judge(plan, book, Thresholds(slo_ms=500.0))
    assert verdict.problems[0].startswith("knee: even 25 req/s (0.5x the capacity) broke the SLO")


def test_a_step_on_a_busy_machine_does_not_say_where_the_queue_began() -> None:
    plan, book = ramp()
    full = plan.steps[1]
    for _ in range(2):  # two thirds of the 1x step's requests take 400 ms: it looks queued
        fill(book, arrivals(book, full, 400, 400))
    book.pressure[full.index] = 0.7
    steps = [judge_knee_step(s, book, 5000.0, 0.01) for s in plan.steps]
    assert steps[1].queue_grows
    assert find_knee(plan, steps, busy=0.5).queue_from is steps[2]
    assert find_knee(plan, steps).queue_from is steps[1]
    book.pressure[plan.steps[2].index] = 0.9  # above the capacity: busy or not, it queues
    steps = [judge_knee_step(s, book, 5000.0, 0.01) for s in plan.steps]
    assert find_knee(plan, steps, busy=0.5).queue_from is steps[2]
    text = report(judge(plan, book, Thresholds(slo_ms=5000.0)), "x")
    assert "70%  queue grows (busy machine)" in text
