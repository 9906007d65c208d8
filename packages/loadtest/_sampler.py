"""Samples the run every half second: users by class, and the server, as far as it can be seen.

Users come from the runner. The server is read from its stats endpoint when it has one
(treadle's `--stats-path`, answered from the acceptor thread even when every worker is busy) and
from /proc when its PID is known (see _procstat); without either the samples hold the users
alone and the plot draws what the client saw. Locust patches the standard library for gevent,
so the blocking calls here yield to the users while they wait.
"""

from __future__ import annotations

import csv
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import gevent  # type: ignore[import-untyped]

from _procstat import ProcSampler

SAMPLE_EVERY = 0.5


def fetch(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The stats as a dict, or None when the URL answers anything but a JSON object."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def users_by_class(runner: Any) -> dict[str, int]:
    counts = getattr(runner, "reported_user_classes_count", None)
    if counts is None:
        counts = runner.user_classes_count
    return {f"users_{name}": int(n) for name, n in dict(counts).items()}


@dataclass(slots=True)
class Sampler:
    runner: Any
    stats_url: str | None
    proc: ProcSampler | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    _greenlet: Any = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"t": time.time(), **users_by_class(self.runner)}
        if self.stats_url and (stats := fetch(self.stats_url)) is not None:
            row.update(stats)
        if self.proc is not None:
            row.update(self.proc.sample())
        return row

    def _run(self) -> None:
        while True:
            started = time.time()
            self.rows.append(self.sample())
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
