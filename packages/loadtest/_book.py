"""The run's book: outcomes by phase and by plot point, folded in from the pending slots.

The shape writes each phase's start into the timeline as it begins it (a knee ramp may end
early, so starts are facts, not plan). A slot lands in the phase whose [start, start + seconds)
holds its middle, in one of four parts: the settling start (left out of every number) and the
three thirds of the window, which the knee compares to see a queue grow. Each slot also lands in
a plot point; points are a second wide, or wider for a plan long enough to need more than
MAX_POINTS of them, so the book's size is bounded by the plan alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from _plan import Phase
from _tally import SLOT, Cell, merged

SETTLING = -1
WINDOW = (0, 1, 2)  # thirds of a phase's window
MAX_POINTS = 400

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Started:
    phase: Phase
    start: float  # seconds since t0

    @property
    def end(self) -> float:
        return self.start + self.phase.seconds

    def part_at(self, t: float) -> int | None:
        if not self.start <= t < self.end:
            return None
        into = t - self.start - self.phase.settle
        if into < 0:
            return SETTLING
        third = (self.phase.seconds - self.phase.settle) / 3
        return min(2, int(into // third))


def add(table: dict[K, Cell], key: K, cell: Cell) -> None:
    mine = table.get(key)
    if mine is None:
        mine = table[key] = Cell()
    mine.merge(cell)


class Book:
    def __init__(self, t0: float, planned_seconds: float) -> None:
        self.t0 = t0  # wall clock
        self.point_seconds = max(1.0, planned_seconds / MAX_POINTS)
        self.timeline: list[Started] = []
        self.parts: dict[tuple[int, int, str], Cell] = {}
        self.points: dict[tuple[int, str], Cell] = {}
        self.recovered: dict[int, float] = {}  # attack phase -> seconds to the next answer
        self.pressure: dict[int, float] = {}  # phase -> share of its window the CPUs were short

    def begin(self, phase: Phase, at: float) -> None:
        self.timeline.append(Started(phase, at))

    def started(self, index: int) -> Started | None:
        """The phase's latest start (a knee step may run twice)."""
        return next((s for s in reversed(self.timeline) if s.phase.index == index), None)

    def forget(self, index: int) -> None:
        """Drop a phase's outcomes before it runs again (the plot's points keep them)."""
        for key in [key for key in self.parts if key[0] == index]:
            del self.parts[key]

    def locate(self, t: float) -> tuple[int, int] | None:
        for started in reversed(self.timeline):
            if started.start <= t:
                part = started.part_at(t)
                return None if part is None else (started.phase.index, part)
        return None

    def fold(self, cells: dict[tuple[int, str], Cell]) -> None:
        for (slot, name), cell in cells.items():
            t = (slot + 0.5) * SLOT - self.t0
            if t < 0:
                continue
            add(self.points, (int(t // self.point_seconds), name), cell)
            where = self.locate(t)
            if where is not None:
                add(self.parts, (*where, name), cell)

    def cell(self, index: int, name: str, parts: Iterable[int] = WINDOW) -> Cell:
        return merged([self.parts[key] for p in parts if (key := (index, p, name)) in self.parts])

    def names(self, index: int) -> set[str]:
        return {name for (i, _, name) in self.parts if i == index}

    def series(self, name: str) -> list[tuple[float, Cell]]:
        """(middle of the point in seconds since t0, its cell), in time order."""
        width = self.point_seconds
        points = [((p + 0.5) * width, c) for (p, n), c in self.points.items() if n == name]
        return sorted(points, key=lambda point: point[0])

    def point_names(self) -> set[str]:
        return {name for (_, name) in self.points}
