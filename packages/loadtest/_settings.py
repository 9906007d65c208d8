"""The run's settings, read from the parsed command line (see _options for the options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str
    pool_threads: int
    steps: tuple[float, ...]
    step_seconds: float
    settle_seconds: float
    sleep_ms: int
    sleep_path: str
    cheap_path: str
    stats_path: str
    idle_users: int
    idle_seconds: float
    arrival_ms: int
    request_timeout: float
    max_fail_ratio: float
    latency_factor: float
    latency_slack_ms: float
    min_throughput: float
    report_prefix: str

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        steps = tuple(float(part) for part in str(options.steps).split(",") if part.strip())
        if not steps or min(steps) <= 0:
            raise ValueError(f"--steps wants positive multiples, got {options.steps!r}")
        step = float(options.step_seconds)
        return cls(
            mode=options.mode,
            pool_threads=int(options.pool_threads),
            steps=steps,
            step_seconds=step,
            settle_seconds=float(options.settle_seconds) or step / 5,
            sleep_ms=int(options.sleep_ms),
            sleep_path=options.sleep_path.format(ms=int(options.sleep_ms)),
            cheap_path=options.cheap_path,
            stats_path=options.stats_path,
            idle_users=int(options.idle_users),
            idle_seconds=float(options.idle_seconds),
            arrival_ms=int(options.arrival_ms) or 5 * int(options.sleep_ms),
            request_timeout=float(options.request_timeout),
            max_fail_ratio=float(options.max_fail_ratio),
            latency_factor=float(options.latency_factor),
            latency_slack_ms=float(options.latency_slack_ms),
            min_throughput=float(options.min_throughput),
            report_prefix=report_prefix(options),
        )


def report_prefix(options: Any) -> str:
    if options.report_prefix:
        return str(options.report_prefix)
    html = getattr(options, "html_file", None)
    if html:
        return str(html).removesuffix(".html")
    csv = getattr(options, "csv_prefix", None)
    return str(csv) if csv else ""
