"""Collects every request's outcome into _records.RECORDS, across processes.

In distributed mode the workers ship their records to the master with their regular reports,
so the master judges the whole run.
"""

from __future__ import annotations

import time
from typing import Any

from _events import listen
from _records import RECORDS, REPORT_KEY, Record


def describe(exception: BaseException) -> str:
    text = f"{type(exception).__name__}: {exception}".strip()
    return text[:120]


def on_request(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    error = describe(exception) if exception is not None else ""
    RECORDS.append(Record(time.time(), name, float(response_time), error))


def ship(client_id: str, data: dict[str, Any]) -> None:
    batch = [(r.t, r.name, r.ms, r.error) for r in RECORDS]
    RECORDS.clear()
    data[REPORT_KEY] = batch


def receive(client_id: str, data: dict[str, Any]) -> None:
    RECORDS.extend(Record(*row) for row in data.get(REPORT_KEY, ()))


def forget(**_: Any) -> None:
    RECORDS.clear()


listen("request", on_request)
listen("report_to_master", ship)
listen("worker_report", receive)
listen("test_start", forget)
