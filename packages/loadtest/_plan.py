"""The step plan: how many users run when, and what each step should measure.

Pure arithmetic, shared by the load shape (which runs the plan), the verdict (which judges each
step) and the plot (which marks the steps).

A step's *offered concurrency* is how many sleep requests it keeps in the server at once if
nothing queues: the working users themselves in closed mode, and users x sleep / interval in open
mode. With T threads and a sleep of S, a step offering c expects its requests to take
S x max(1, c / T) (the queue adds a round of S for every T requests ahead) and the pool to finish
min(c, T) / S of them per second.
"""

from __future__ import annotations

from dataclasses import dataclass

from _settings import Settings


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    multiple: float
    users: int  # working users (sleep route); idle and probe users come on top
    start: float  # seconds since the test started
    end: float
    settle: float  # the first `settle` seconds are left out of the step's numbers
    offered: float  # offered concurrency, in requests in flight
    threads: int
    sleep_ms: int

    @property
    def label(self) -> str:
        return f"{self.multiple:g}x ({self.users} users)"

    @property
    def window(self) -> tuple[float, float]:
        return self.start + self.settle, self.end

    @property
    def expected_ms(self) -> float:
        return self.sleep_ms * max(1.0, self.offered / self.threads)

    @property
    def expected_rps(self) -> float:
        return min(self.offered, self.threads) * 1000.0 / self.sleep_ms

    @property
    def saturated(self) -> bool:
        return self.offered > self.threads


@dataclass(frozen=True, slots=True)
class Plan:
    threads: int
    idle_users: int
    probe_users: int
    steps: tuple[Step, ...]

    @property
    def duration(self) -> float:
        return self.steps[-1].end

    def step_at(self, elapsed: float) -> Step | None:
        for step in self.steps:
            if step.start <= elapsed < step.end:
                return step
        return None


PROBE_USERS = 1


def make_plan(settings: Settings, threads: int) -> Plan:
    steps = []
    start = 0.0
    for index, multiple in enumerate(settings.steps):
        users = max(1, round(multiple * threads))
        if settings.mode == "open":
            offered = users * settings.sleep_ms / settings.arrival_ms
        else:
            offered = float(users)
        end = start + settings.step_seconds
        steps.append(
            Step(
                index=index,
                multiple=multiple,
                users=users,
                start=start,
                end=end,
                settle=settings.settle_seconds,
                offered=offered,
                threads=threads,
                sleep_ms=settings.sleep_ms,
            )
        )
        start = end
    idle = settings.idle_users if settings.idle_users >= 0 else 2 * threads
    return Plan(threads=threads, idle_users=idle, probe_users=PROBE_USERS, steps=tuple(steps))
