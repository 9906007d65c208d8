"""The run's settings, read from the parsed command line (see _options for the options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from _plan import ATTACKS

MIN_BIG_BYTES = 6_000_000
DEFAULT_STEPS = {"closed": "0.5,1,2,4", "open": "0.5,1,2,4", "knee": "0.5,0.75,1,1.25,1.5,2"}


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str
    server_name: str
    server_pid: int
    pool_threads: int
    steps: tuple[float, ...]
    step_seconds: float
    settle_seconds: float  # 0: a fifth of each phase
    sleep_ms: int
    sleep_path: str
    cheap_path: str
    stats_path: str
    idle_users: int
    idle_seconds: float
    arrival_ms: int  # 0: the mode's default (see _plan)
    slo_ms: float
    attacks: tuple[str, ...]
    attackers: int
    attack_seconds: float
    attack_bound_ms: float
    recovery_seconds: float
    probe_ms: int
    trickle_seconds: float
    body_path: str
    big_bytes: int
    request_timeout: float
    max_fail_ratio: float
    latency_factor: float
    latency_slack_ms: float
    min_throughput: float
    busy_pressure: float
    report_prefix: str  # "": reports/loadtest/SERVER-MODE

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        mode = str(options.mode)
        text = str(options.steps) or DEFAULT_STEPS[mode]
        steps = tuple(float(part) for part in text.split(",") if part.strip())
        if not steps or min(steps) <= 0:
            raise ValueError(f"--steps wants positive multiples, got {options.steps!r}")
        attacks = tuple(a.strip() for a in str(options.attacks).split(",") if a.strip())
        unknown = [a for a in attacks if a not in ATTACKS]
        if unknown:
            raise ValueError(f"unknown --attacks {unknown}: choose from {', '.join(ATTACKS)}")
        return cls(
            mode=mode,
            server_name=str(options.server_name),
            server_pid=int(options.server_pid),
            pool_threads=int(options.pool_threads),
            steps=steps,
            step_seconds=float(options.step_seconds),
            settle_seconds=float(options.settle_seconds),
            sleep_ms=int(options.sleep_ms),
            sleep_path=options.sleep_path.format(ms=int(options.sleep_ms)),
            cheap_path=str(options.cheap_path),
            stats_path=str(options.stats_path),
            idle_users=int(options.idle_users),
            idle_seconds=float(options.idle_seconds),
            arrival_ms=int(options.arrival_ms),
            slo_ms=float(options.slo_ms) or 5.0 * int(options.sleep_ms),
            attacks=attacks,
            attackers=int(options.attackers),
            attack_seconds=float(options.attack_seconds),
            attack_bound_ms=float(options.attack_bound_ms),
            recovery_seconds=float(options.recovery_seconds),
            probe_ms=int(options.probe_ms),
            trickle_seconds=float(options.trickle_seconds),
            body_path=str(options.body_path),
            big_bytes=int(options.big_bytes) or big_enough(),
            request_timeout=float(options.request_timeout),
            max_fail_ratio=float(options.max_fail_ratio),
            latency_factor=float(options.latency_factor),
            latency_slack_ms=float(options.latency_slack_ms),
            min_throughput=float(options.min_throughput),
            busy_pressure=float(options.busy_pressure),
            report_prefix=report_prefix(options),
        )


def big_enough() -> int:
    """Bytes that cannot all sit in a loopback connection's buffers: 1.5x the largest TCP send
    buffer the kernel grows to (Linux), at least 6 MB."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            largest = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        largest = 0
    return max(MIN_BIG_BYTES, largest * 3 // 2)


def report_prefix(options: Any) -> str:
    if options.report_prefix:
        return str(options.report_prefix)
    html = getattr(options, "html_file", None)
    if html:
        return str(html).removesuffix(".html")
    csv = getattr(options, "csv_prefix", None)
    return str(csv) if csv else ""
