"""The plan: which phases run, with how many users, and what each should measure.

Pure arithmetic, shared by the load shape (which runs the plan), the verdict (which judges each
phase) and the plot (which marks them). A run is the load steps, then the starvation attacks,
one phase each; every phase keeps one newcomer user opening fresh connections.

A step's *offered concurrency* is how many sleep requests it keeps in the server at once if
nothing queues: the working users themselves in closed mode, and arrivals/s x sleep in open and
knee modes. With T threads and a sleep of S, the pool's capacity is T / S requests a second; a
step offering c expects its requests to take S x max(1, c / T) (the queue adds a round of S for
every T requests ahead) and the pool to finish min(c, T) / S of them per second.

Closed and open steps are multiples of the thread count; knee steps are multiples of the
capacity, made of arrival users that each start a request every 2 x S by default (a tenth of a
5-thread pool's capacity), so a step's rate is within a user of its multiple. The interval
depends on the settings alone: workers in distributed mode compute it without the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _settings import Settings

# no-read last: the large answers it asks for can keep a server busy after the attackers leave
ATTACKS = ("silent", "half-head", "slow-body", "idle-keep-alive", "no-read")

WHAT = {
    "silent": "connect, send nothing",
    "half-head": "send half a request head, then a byte a second",
    "slow-body": "send a head and Content-Length, then the body a byte a second",
    "no-read": "send a large body to the echo route, never read the answer",
    "idle-keep-alive": "one request, then idle on the keep-alive connection",
}

PROBE_USERS = 1


@dataclass(frozen=True, slots=True)
class Attack:
    index: int
    attack: str
    attackers: int
    seconds: float
    settle: float

    @property
    def label(self) -> str:
        return f"{self.attack} ({self.attackers})"


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    multiple: float
    users: int  # working users; idle and newcomer users come on top
    seconds: float
    settle: float
    offered: float  # offered concurrency, in requests in flight
    rate: float  # offered arrivals per second (open and knee); 0 in closed mode
    threads: int
    sleep_ms: int

    @property
    def label(self) -> str:
        return f"{self.multiple:g}x ({self.users} users)"

    @property
    def expected_ms(self) -> float:
        return self.sleep_ms * max(1.0, self.offered / self.threads)

    @property
    def expected_rps(self) -> float:
        return min(self.offered, self.threads) * 1000.0 / self.sleep_ms

    @property
    def saturated(self) -> bool:
        return self.offered > self.threads


Phase = Attack | Step


@dataclass(frozen=True, slots=True)
class Plan:
    mode: str
    threads: int
    sleep_ms: int
    idle_users: int
    probe_users: int
    arrival_ms: float  # open and knee: one arrival user's interval
    slo_ms: float
    attacks: tuple[Attack, ...]
    steps: tuple[Step, ...]

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (*self.steps, *self.attacks)

    @property
    def capacity(self) -> float:
        """Requests a second the pool can finish: threads / service time."""
        return self.threads * 1000.0 / self.sleep_ms

    @property
    def duration(self) -> float:
        """The longest the phases take, without the gaps between them."""
        return sum(phase.seconds for phase in self.phases)


def arrival_interval_ms(settings: Settings) -> float:
    """One arrival user's interval between requests."""
    if settings.arrival_ms:
        return float(settings.arrival_ms)
    return (2.0 if settings.mode == "knee" else 5.0) * settings.sleep_ms


def settle_of(settings: Settings, seconds: float) -> float:
    return min(settings.settle_seconds, seconds / 2) if settings.settle_seconds else seconds / 5


def make_step(settings: Settings, threads: int, index: int, multiple: float) -> Step:
    interval_ms = arrival_interval_ms(settings)
    if settings.mode == "knee":
        capacity = threads * 1000.0 / settings.sleep_ms
        per_user = 1000.0 / interval_ms
        users = max(1, round(multiple * capacity / per_user))
        multiple = round(users * per_user / capacity, 2)  # what the whole users offer
    else:
        users = max(1, round(multiple * threads))
    rate = 0.0 if settings.mode == "closed" else users * 1000.0 / interval_ms
    offered = float(users) if settings.mode == "closed" else rate * settings.sleep_ms / 1000
    return Step(
        index=index,
        multiple=multiple,
        users=users,
        seconds=settings.step_seconds,
        settle=settle_of(settings, settings.step_seconds),
        offered=offered,
        rate=rate,
        threads=threads,
        sleep_ms=settings.sleep_ms,
    )


def make_plan(settings: Settings, threads: int) -> Plan:
    steps = tuple(
        make_step(settings, threads, index, multiple)
        for index, multiple in enumerate(settings.steps)
    )
    attackers = settings.attackers if settings.attackers >= 0 else math.ceil(1.5 * threads)
    attacks = tuple(
        Attack(
            index=len(steps) + i,
            attack=name,
            attackers=attackers,
            seconds=settings.attack_seconds,
            settle=settle_of(settings, settings.attack_seconds),
        )
        for i, name in enumerate(settings.attacks)
    )
    return Plan(
        mode=settings.mode,
        threads=threads,
        sleep_ms=settings.sleep_ms,
        idle_users=settings.idle_users if settings.idle_users >= 0 else 2 * threads,
        probe_users=PROBE_USERS,
        arrival_ms=arrival_interval_ms(settings),
        slo_ms=settings.slo_ms,
        attacks=attacks,
        steps=steps,
    )
