"""Streaming percentiles in bounded memory: a log-bucketed latency histogram.

A latency of x ms is counted in bucket ceil(log(x) / log(GROWTH)), so a bucket spans 2% and any
percentile read back is the upper edge of its bucket: never under the true value, at most 2%
over. Memory is one dict entry per bucket in use, whatever the request count: latencies from
0.01 ms to 10 minutes fit in about 900 buckets, and a step's latencies usually share a few dozen.
Histograms add up (`merge`), so workers can ship theirs to the master and steps can be cut from
pieces of the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GROWTH = 1.02
FLOOR_MS = 0.01  # anything faster is counted as this
_LOG = math.log(GROWTH)


def bucket_of(ms: float) -> int:
    return math.ceil(math.log(max(ms, FLOOR_MS)) / _LOG - 1e-9)


def upper_edge(bucket: int) -> float:
    return float(GROWTH**bucket)


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})
        self.total = sum(self.counts.values())

    @classmethod
    def of(cls, values: Iterable[float]) -> Histogram:
        hist = cls()
        for value in values:
            hist.add(value)
        return hist

    def add(self, ms: float) -> None:
        key = bucket_of(ms)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.total += other.total

    def quantile(self, fraction: float, extra_above: int = 0) -> float:
        """Nearest-rank percentile; `extra_above` values count as larger than any here.

        NaN when there is nothing to rank, inf when the rank falls among the extra values (for
        requests that never got an answer).
        """
        n = self.total + extra_above
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(n * fraction - 1e-9))
        if rank > self.total:
            return math.inf
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return upper_edge(key)
        raise AssertionError("unreachable: rank <= total")

    def count_above(self, ms: float) -> int:
        """How many values are certainly over `ms` (their whole bucket is above it)."""
        limit = bucket_of(ms)
        return sum(count for key, count in self.counts.items() if key > limit)

    def to_wire(self) -> list[list[int]]:
        """[[bucket, count], ...]: plain lists, as Locust's messages carry them."""
        return [[key, count] for key, count in self.counts.items()]

    @classmethod
    def from_wire(cls, pairs: list[list[int]]) -> Histogram:
        return cls({int(key): int(count) for key, count in pairs})
