"""Samples the run every half second: users by class, and the server, as far as it can be seen.

Users come from the runner. The server is read from its stats endpoint when it has one
(treadle's `--stats-path`, answered from the acceptor thread even when every worker is busy) and
from /proc when its PID is known (see _procstat); without either the samples hold the users
alone and the plot draws what the client saw. Locust patches the standard library for gevent,
so the blocking calls here yield to the users while they wait. Each sample also notes how long
runnable tasks on the machine have waited for a CPU (PSI), so that a step measured on a machine
too busy to time it is said to be so (see _verdict).
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


def cpu_pressure_us() -> int | None:
    """Microseconds, since boot, in which some runnable task on this machine waited for a CPU
    (Linux PSI, /proc/pressure/cpu); None where the kernel does not say."""
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()
    except OSError:
        return None
    fields = dict(part.split("=", 1) for part in some[1:] if "=" in part)
    return int(fields["total"]) if "total" in fields else None


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
        if (pressure := cpu_pressure_us()) is not None:
            row["cpu_pressure_us"] = pressure
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


def pressure_between(rows: list[dict[str, Any]], lo: float, hi: float) -> float | None:
    """The share of [lo, hi] (wall clock) in which some task waited for a CPU, from the samples
    nearest inside it; None without two such samples."""
    inside = [r for r in rows if lo <= r["t"] <= hi and "cpu_pressure_us" in r]
    if len(inside) < 2 or inside[-1]["t"] <= inside[0]["t"]:
        return None
    waited = (int(inside[-1]["cpu_pressure_us"]) - int(inside[0]["cpu_pressure_us"])) / 1e6
    return max(0.0, min(1.0, waited / (float(inside[-1]["t"]) - float(inside[0]["t"]))))
