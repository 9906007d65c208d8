"""Every request's outcome, kept raw so the verdict can cut the run into steps afterwards.

Locust's own statistics are cumulative; the verdict needs per-step percentiles. Each process
keeps (finish time, name, response time, error) for its requests (see _collect).
"""

from __future__ import annotations

from dataclasses import dataclass

SLEEP = "sleep"
IDLE = "idle keep-alive"
PROBE = "new connection"

REPORT_KEY = "treadle_records"


@dataclass(frozen=True, slots=True)
class Record:
    t: float  # wall-clock time the request finished (comparable across processes)
    name: str
    ms: float
    error: str  # "" when the request succeeded


RECORDS: list[Record] = []
