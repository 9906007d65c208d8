"""Samples the server's stats endpoint (treadle's `--stats-path`) during the run.

treadle answers the stats path from its acceptor thread, so a sample arrives even when every
worker is busy. Any other server simply has no samples: the test still runs, the plot just
lacks the pool panel. Locust patches the standard library for gevent, so the blocking call in
`fetch` yields to the users while it waits.
"""

from __future__ import annotations

import csv
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import gevent  # type: ignore[import-untyped]

SAMPLE_EVERY = 0.5


def fetch(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The stats as a dict, or None when the URL answers anything but a JSON object."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(slots=True)
class Sampler:
    url: str
    user_count: Any  # a callable giving the runner's current user count
    rows: list[dict[str, Any]] = field(default_factory=list)
    _greenlet: Any = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        while True:
            started = time.time()
            stats = fetch(self.url)
            row: dict[str, Any] = {"t": started, "users": self.user_count()}
            if stats is not None:
                row.update(stats)
            self.rows.append(row)
            gevent.sleep(max(0.0, SAMPLE_EVERY - (time.time() - started)))

    def write_csv(self, path: str, t0: float) -> None:
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys and k != "t"]
        with open(path, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=["seconds", *keys])
            writer.writeheader()
            for row in self.rows:
                values = {k: v for k, v in row.items() if k != "t"}
                writer.writerow({"seconds": round(row["t"] - t0, 3), **values})
