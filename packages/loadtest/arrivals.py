"""Locustfile: open and knee modes (`--mode open`, `--mode knee`), requests on a schedule.

In closed mode a slow server slows its own users down, so it is asked less and its latency looks
better than what a real crowd would see. Here each `ArrivalUser` starts one sleep request every
`--arrival-ms` whether or not earlier ones have been answered; every request's time includes any
wait for a free client connection. The schedule is kept against the clock, so a stall is
followed by catching up, never by asking less. The shape sets the number of arrival users per
step (see _plan).
"""

from __future__ import annotations

import random
import time

import gevent  # type: ignore[import-untyped]
from gevent.pool import Group  # type: ignore[import-untyped]
from locust import constant, task

from _plan import arrival_interval_ms
from _tally import SLEEP
from _users import SaturationUser


class ArrivalUser(SaturationUser):
    concurrency = 64  # client connections per user: enough that arrivals never wait for one
    wait_time = constant(0)

    def on_start(self) -> None:
        self.interval = arrival_interval_ms(self.settings) / 1000
        self.in_flight = Group()
        # a random phase, so that users spawned together do not arrive in bursts
        self.next_arrival = time.monotonic() + random.uniform(0, self.interval)

    def on_stop(self) -> None:
        self.in_flight.kill(block=False)
        super().on_stop()

    def arrive(self) -> None:
        self.client.get(self.settings.sleep_path, name=SLEEP)

    @task
    def tick(self) -> None:
        gevent.sleep(max(0.0, self.next_arrival - time.monotonic()))
        self.in_flight.spawn(self.arrive)
        self.next_arrival += self.interval
