"""Locustfile: how a thread-pool server behaves as its pool saturates, and the run's shape.

The run is the starvation attacks (starvation.py), one phase each, then the load steps:

- `SleepUser`s ask for the slow route (`/sleep?ms=N`) back to back (closed mode). `StepShape`
  runs 0.5x, 1x, 2x and 4x the pool's thread count of them, each step held long enough to
  measure. `--mode open` and `--mode knee` swap them for the arrival-rate users of arrivals.py.
- `IdleKeepAliveUser`s (twice the thread count by default) open a keep-alive connection and
  then mostly idle, asking the cheap route every couple of seconds on the same connection.
- One `NewcomerUser` opens a fresh connection for the cheap route every `--probe-ms` throughout,
  whether or not the earlier ones were answered: proof that whatever the others hold, a new
  client gets in.

Each phase is judged when Locust quits (see _verdict.py); the exit code says whether all passed.
Options: see _options.py (or the README); each also reads a `LOCUST_...` variable.
"""

from __future__ import annotations

import time
from typing import Any

import gevent  # type: ignore[import-untyped]
from gevent.pool import Group  # type: ignore[import-untyped]
from locust import LoadTestShape, User, constant, task
from locust.env import Environment

import _session
from _tally import IDLE, NEWCOMER, SLEEP
from _users import SaturationUser
from _wire import Target, ask

SPAWN_RATE = 100.0  # users per second: phases change in well under a second


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


class StillWaiting(Exception):
    """A new connection had no answer yet when its phase ended."""


class NewcomerUser(User):
    fixed_count = 1
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = _session.settings_of(environment)
        self.target = Target.of(environment.host or "")
        self.waiting: dict[object, float] = {}  # probe -> when it started (perf_counter)
        self.probes = Group()
        self.next_probe = time.perf_counter()

    @task
    def arrive(self) -> None:
        gevent.sleep(max(0.0, self.next_probe - time.perf_counter()))
        self.next_probe += self.settings.probe_ms / 1000
        self.probes.spawn(self.probe)

    def probe(self) -> None:
        token = object()
        started = self.waiting[token] = time.perf_counter()
        error: BaseException | None = None
        length = 0
        try:
            length = ask(self.target, self.settings.cheap_path, self.settings.request_timeout)
        except Exception as exc:  # any failure is this probe's outcome, not the user's
            error = exc
        del self.waiting[token]
        self.report((time.perf_counter() - started) * 1000, length, error)

    def report(self, ms: float, length: int, error: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="GET",
            name=NEWCOMER,
            response_time=ms,
            response_length=length,
            exception=error,
            context={},
        )

    def on_stop(self) -> None:
        # Probes cut by the end of the phase: one that already waited past the bound was
        # starved, whatever came next; a younger one tells nothing and is dropped.
        now = time.perf_counter()
        for started in list(self.waiting.values()):
            waited = (now - started) * 1000
            if waited > self.settings.attack_bound_ms:
                self.report(waited, 0, StillWaiting(f"no answer after {waited:.0f} ms"))
        self.waiting.clear()
        self.probes.kill(block=False)


WORKING_USER = {"closed": "SleepUser", "open": "ArrivalUser", "knee": "ArrivalUser"}


class StepShape(LoadTestShape):
    """The attacks, then the steps; a tick with no users between phases of different users."""

    session: _session.Session | None = None
    elapsed = 0.0

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        assert self.runner is not None
        elapsed = time.perf_counter() - float(self.start_time)
        if self.session is None or elapsed < self.elapsed:  # a new run (web UI: start again)
            self.session = _session.begin(self.runner.environment, elapsed)
        self.elapsed = elapsed
        session = self.session
        session.fold()
        move = session.advance(elapsed)
        if move is None:
            return None
        names, fixed = self.population(session, move.phase)
        classes = self.classes(names)
        for name, count in fixed.items():
            classes[names.index(name)].fixed_count = count
        if move.gap:
            return 0, SPAWN_RATE, classes
        return move.users, SPAWN_RATE, classes

    @staticmethod
    def population(
        session: _session.Session, phase: _session.Phase
    ) -> tuple[list[str], dict[str, int]]:
        """The user classes of a phase, working class first, and the fixed counts of the rest."""
        plan = session.plan
        if isinstance(phase, _session.Attack):
            return [ATTACK_CLASS[phase.attack], "NewcomerUser"], {"NewcomerUser": plan.probe_users}
        names = [WORKING_USER[plan.mode], "IdleKeepAliveUser", "NewcomerUser"]
        return names, {"IdleKeepAliveUser": plan.idle_users, "NewcomerUser": plan.probe_users}

    def classes(self, names: list[str]) -> list[type[User]]:
        assert self.runner is not None
        by_name: dict[str, Any] = self.runner.user_classes_by_name
        missing = [name for name in names if name not in by_name]
        if missing:
            raise SystemExit(f"{', '.join(missing)} not loaded: run `locust -f packages/loadtest`")
        return [by_name[name] for name in names]


ATTACK_CLASS = {
    "silent": "SilentUser",
    "half-head": "HalfHeadUser",
    "slow-body": "SlowBodyUser",
    "no-read": "NoReadUser",
    "idle-keep-alive": "IdleAttackUser",
}
