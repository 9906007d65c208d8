"""Streaming percentiles: within 2% of the exact ones, mergeable, bounded in memory."""

from __future__ import annotations

import math
import random

from _histogram import GROWTH, Histogram
from _tally import Cell, Slots


def exact(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def test_percentiles_are_never_under_and_at_most_two_percent_over() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(4, 1.2) for _ in range(20_000)]
    hist = Histogram.of(values)
    for fraction in (0.5, 0.9, 0.95, 0.99, 1.0):
        truth = exact(values, fraction)
        assert truth <= hist.quantile(fraction) <= truth * GROWTH * 1.000001


def test_merged_histograms_equal_one_over_all_values() -> None:
    values = [float(v) for v in range(1, 1001)]
    left, right = Histogram.of(values[:300]), Histogram.of(values[300:])
    left.merge(right)
    assert left.counts == Histogram.of(values).counts
    assert left.quantile(0.95) == Histogram.of(values).quantile(0.95)


def test_unanswered_requests_rank_above_every_answer() -> None:
    hist = Histogram.of([10.0] * 8)
    assert hist.quantile(0.8, extra_above=2) <= 10.0 * GROWTH
    assert math.isinf(hist.quantile(0.9, extra_above=2))
    assert math.isnan(Histogram().quantile(0.5))
    assert math.isinf(Histogram().quantile(0.5, extra_above=1))


def test_count_above_counts_only_whole_buckets_over_the_bound() -> None:
    hist = Histogram.of([5.0, 900.0, 1100.0, 5000.0])
    assert hist.count_above(1000.0) == 2


def test_cells_survive_the_wire() -> None:
    cell = Cell()
    for ms in (1.0, 2.0, 300.0):
        cell.add(ms, "")
    cell.add(5000.0, "timed out")
    back = Cell.from_wire(cell.to_wire())
    assert back.answered.counts == cell.answered.counts
    assert (back.failures, back.first_error, back.count) == (1, "timed out", 4)


def test_memory_does_not_grow_with_the_request_count() -> None:
    """200,000 requests in a quarter second are one cell, with a bounded number of buckets."""
    rng = random.Random(1)
    slots = Slots()
    for _ in range(200_000):
        slots.add(1_000_000.1, "sleep", rng.uniform(90, 5000), "")
    cells = slots.take()
    assert len(cells) == 1
    (cell,) = cells.values()
    assert cell.count == 200_000
    assert len(cell.answered.counts) <= math.log(5000 / 90) / math.log(GROWTH) + 2
