"""Counts every request's outcome into _tally.PENDING, across processes.

A request is counted at the time it started (its finish time less its response time), so a
request that waits long belongs to the load that made it wait. In distributed mode each worker
ships its pending cells to the master with its regular report (every few seconds); the master
merges them into its own, and the session folds them into the run's book.
"""

from __future__ import annotations

import time
from typing import Any

from _events import listen
from _tally import PENDING

REPORT_KEY = "treadle_loadtest_slots"


def describe(exception: BaseException) -> str:
    text = f"{type(exception).__name__}: {exception}".strip()
    return text[:120]


def on_request(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    error = describe(exception) if exception is not None else ""
    ms = float(response_time)
    PENDING.add(time.time() - ms / 1000, name, ms, error)


def ship(client_id: str, data: dict[str, Any]) -> None:
    data[REPORT_KEY] = PENDING.take_wire()


def receive(client_id: str, data: dict[str, Any]) -> None:
    PENDING.merge_wire(data.get(REPORT_KEY, []))


def forget(**_: Any) -> None:
    PENDING.clear()


listen("request", on_request)
listen("report_to_master", ship)
listen("worker_report", receive)
listen("test_start", forget)
