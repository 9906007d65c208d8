"""The picture: users, throughput, p50/p95 latency, busy threads and queue depth over time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from _plan import Plan
from _records import SLEEP, Record
from _verdict import percentile

BUCKET = 1.0  # seconds per point


def latency_series(
    records: Sequence[Record], t0: float, end: float
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """Per bucket: time, answers per second (all, sleep route), sleep p50 and p95 (ms)."""
    done: dict[int, int] = defaultdict(int)
    sleeps: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r.error or not 0 <= r.t - t0 < end:
            continue
        key = int((r.t - t0) // BUCKET)
        done[key] += 1
        if r.name == SLEEP:
            sleeps[key].append(r.ms)
    keys = sorted(done)
    times = [(k + 0.5) * BUCKET for k in keys]
    rps = [done[k] / BUCKET for k in keys]
    sleep_rps = [len(sleeps[k]) / BUCKET for k in keys]
    p50 = [percentile(sleeps[k], 0.5) for k in keys]
    p95 = [percentile(sleeps[k], 0.95) for k in keys]
    return times, rps, sleep_rps, p50, p95


def draw(
    path: str,
    plan: Plan,
    records: Sequence[Record],
    samples: Sequence[dict[str, Any]],
    t0: float,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True, constrained_layout=True)
    users_ax, rps_ax, lat_ax, pool_ax = axes
    sample_t = [row["t"] - t0 for row in samples]
    users_ax.step(sample_t, [row["users"] for row in samples], where="post", color="black")
    users_ax.set_ylabel(f"users\n(incl. {plan.idle_users + plan.probe_users} idle/probe)")
    times, rps, sleep_rps, p50, p95 = latency_series(records, t0, plan.duration)
    rps_ax.plot(times, rps, color="tab:green", label="all routes")
    rps_ax.plot(times, sleep_rps, color="tab:olive", label="sleep route")
    rps_ax.set_ylabel("answers/s")
    rps_ax.set_ylim(bottom=0)
    rps_ax.legend(loc="lower left")
    lat_ax.plot(times, p50, label="sleep p50", color="tab:blue")
    lat_ax.plot(times, p95, label="sleep p95", color="tab:red")
    lat_ax.set_ylabel("latency (ms)")
    lat_ax.legend(loc="upper left")
    pooled = [row for row in samples if "busy_threads" in row]
    if pooled:
        pool_t = [row["t"] - t0 for row in pooled]
        pool_ax.plot(pool_t, [row["busy_threads"] for row in pooled], label="busy threads")
        pool_ax.plot(pool_t, [row["queue_depth"] for row in pooled], label="queue depth")
        if "parked_connections" in pooled[0]:
            pool_ax.plot(
                pool_t,
                [row["parked_connections"] for row in pooled],
                label="parked connections",
                linestyle=":",
            )
        pool_ax.legend(loc="upper left")
    else:
        pool_ax.text(0.5, 0.5, "no server stats", ha="center", transform=pool_ax.transAxes)
    pool_ax.set_ylabel("server")
    pool_ax.set_xlabel("seconds")
    for ax in axes:
        ax.grid(alpha=0.3)
        for step in plan.steps:
            ax.axvline(step.start, color="grey", linewidth=0.8, linestyle="--")
    for step in plan.steps:
        users_ax.annotate(
            f" {step.label}",
            (step.start, 0.88),
            xycoords=("data", "axes fraction"),
            fontsize=8,
        )
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
