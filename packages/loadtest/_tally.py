"""Request outcomes, counted in bounded memory.

A `Cell` sums the requests of one name over some stretch of time: a latency histogram of the
answered ones, and the count and first reason of the failed ones. Every process counts its
requests into `PENDING`, a cell per (quarter-second slot of the request's start, name); the
master (or the only process) folds the pending cells into the run's book (see _book) every
second, and a worker ships its pending cells to the master with each report. So memory depends
on the plan's length, never on the request rate or the number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from _histogram import Histogram

SLEEP = "sleep"
NEWCOMER = "new connection"
IDLE = "idle keep-alive"
HELD = " held"  # suffix: an attacker's connection, from open until the server closed it

SLOT = 0.25  # seconds


def held(attack: str) -> str:
    return attack + HELD


@dataclass(slots=True)
class Cell:
    answered: Histogram = field(default_factory=Histogram)
    failures: int = 0
    first_error: str = ""

    @property
    def count(self) -> int:
        return self.answered.total + self.failures

    def add(self, ms: float, error: str) -> None:
        if error:
            self.failures += 1
            self.first_error = self.first_error or error
        else:
            self.answered.add(ms)

    def merge(self, other: Cell) -> None:
        self.answered.merge(other.answered)
        self.failures += other.failures
        self.first_error = self.first_error or other.first_error

    def quantile(self, fraction: float) -> float:
        """Of the answered requests; NaN when none was."""
        return self.answered.quantile(fraction)

    def wait_quantile(self, fraction: float) -> float:
        """Of every request, an unanswered one counting as longer than any answer (inf)."""
        return self.answered.quantile(fraction, extra_above=self.failures)

    def to_wire(self) -> list[Any]:
        return [self.answered.to_wire(), self.failures, self.first_error]

    @classmethod
    def from_wire(cls, row: list[Any]) -> Cell:
        counts, failures, first_error = row
        return cls(Histogram.from_wire(counts), int(failures), str(first_error))


def merged(cells: list[Cell]) -> Cell:
    total = Cell()
    for cell in cells:
        total.merge(cell)
    return total


class Slots:
    """Cells by (slot, name), slot = floor(start time / SLOT) on the wall clock."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[tuple[int, str], Cell] = {}

    def add(self, start: float, name: str, ms: float, error: str) -> None:
        key = (math.floor(start / SLOT), name)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        cell.add(ms, error)

    def merge_wire(self, rows: list[list[Any]]) -> None:
        for slot, name, cell in rows:
            key = (int(slot), str(name))
            incoming = Cell.from_wire(cell)
            if key in self.cells:
                self.cells[key].merge(incoming)
            else:
                self.cells[key] = incoming

    def take(self) -> dict[tuple[int, str], Cell]:
        cells, self.cells = self.cells, {}
        return cells

    def take_wire(self) -> list[list[Any]]:
        return [[slot, name, cell.to_wire()] for (slot, name), cell in self.take().items()]

    def clear(self) -> None:
        self.cells.clear()


PENDING = Slots()
