"""Locustfile: how a thread-pool server behaves as its pool saturates (closed mode).

Three kinds of FastHttpUser run at once:

- `SleepUser`s ask for the slow route (`/sleep?ms=N`) back to back. `StepShape` runs 1x, 2x and
  4x the pool's thread count of them, each step held long enough to measure.
- `IdleKeepAliveUser`s (twice the thread count by default) open a keep-alive connection and
  then mostly idle, asking the cheap route every couple of seconds on the same connection. A
  seed-style pool, where a connection holds its thread until it closes, starves on them.
- One `NewConnectionUser` opens a fresh connection twice a second for the cheap route: proof
  that idle connections never keep new ones out.

`--mode open` swaps the sleep users for the arrival-rate users of `arrivals.py`. The numbers are
judged per step when Locust quits (see `_verdict.py`); the exit code says whether they passed.
Options: see `_options.py` (or the README); each also reads a `LOCUST_...` variable.
"""

from __future__ import annotations

import time
from typing import Any

from locust import LoadTestShape, User, constant, task

import _session
from _records import IDLE, PROBE, SLEEP
from _users import SaturationUser

SPAWN_RATE = 100.0  # users per second: steps change in well under a second
PROBE_EVERY = 0.5


class SleepUser(SaturationUser):
    wait_time = constant(0)

    @task
    def sleep(self) -> None:
        self.client.get(self.settings.sleep_path, name=SLEEP)


class IdleKeepAliveUser(SaturationUser):
    fixed_count = 0  # set by StepShape from the plan

    def wait_time(self) -> float:
        return self.settings.idle_seconds

    @task
    def ping(self) -> None:
        self.client.get(self.settings.cheap_path, name=IDLE)


class NewConnectionUser(SaturationUser):
    fixed_count = 0  # set by StepShape from the plan
    wait_time = constant(PROBE_EVERY)

    @task
    def probe(self) -> None:
        self.client.get(self.settings.cheap_path, name=PROBE, headers={"Connection": "close"})


WORKING_USER = {"closed": "SleepUser", "open": "ArrivalUser"}


class StepShape(LoadTestShape):
    """1x, 2x, 4x the thread count of working users, plus the idle and probe users throughout."""

    session: _session.Session | None = None
    elapsed = 0.0
    classes: list[type[User]] = []  # replaced at the first tick, never mutated

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        assert self.runner is not None
        elapsed = time.perf_counter() - float(self.start_time)
        if self.session is None or elapsed < self.elapsed:  # a new run (web UI: start again)
            self.session = _session.begin(self.runner.environment, elapsed)
            self.classes = self.pick_classes(self.session)
        self.elapsed = elapsed
        plan = self.session.plan
        step = plan.step_at(elapsed)
        if step is None:
            return None
        return step.users + plan.idle_users + plan.probe_users, SPAWN_RATE, self.classes

    def pick_classes(self, session: _session.Session) -> list[type[User]]:
        assert self.runner is not None
        by_name: dict[str, Any] = self.runner.user_classes_by_name
        working = WORKING_USER[session.settings.mode]
        if working not in by_name:
            raise SystemExit(f"{working} is not loaded: run `locust -f packages/loadtest`")
        by_name["IdleKeepAliveUser"].fixed_count = session.plan.idle_users
        by_name["NewConnectionUser"].fixed_count = session.plan.probe_users
        return [by_name[working], by_name["IdleKeepAliveUser"], by_name["NewConnectionUser"]]
