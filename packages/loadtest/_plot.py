"""The picture of one run, titled with the server it measured.

Five panels over time: users by kind; answers a second against the pool's capacity line
(threads / service time) and, in open and knee modes, the offered rate; sleep p50/p95 against
the expected latency or the SLO, with the knee marked; new connections' waits against their
bound; and the server as far as it can be seen (its stats endpoint, else /proc via
--server-pid, else a note saying so), with how short of CPU the whole machine was. Attack
phases are shaded and named; everything on the client side is drawn for any server.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _book import Book
from _plan import Attack, Step
from _tally import HELD, NEWCOMER, SLEEP
from _verdict import Verdict

USER_KINDS = (  # (label, class names) for the users panel
    ("working", ("SleepUser", "ArrivalUser")),
    ("idle keep-alive", ("IdleKeepAliveUser",)),
    ("attackers", ("SilentUser", "HalfHeadUser", "SlowBodyUser", "NoReadUser", "IdleAttackUser")),
    ("newcomer", ("NewcomerUser",)),
)
SERVER_LINES = (  # (sample key, label, style) for the server panel, stats first
    ("busy_threads", "busy threads (stats)", "-"),
    ("queue_depth", "queue depth (stats)", "-"),
    ("parked_connections", "parked connections (stats)", ":"),
    ("proc_busy_threads", "busy threads (/proc)", "--"),
    ("proc_threads", "threads (/proc)", "-."),
    ("proc_connections", "open connections (/proc)", ":"),
)


def rate_series(book: Book, names: Sequence[str]) -> tuple[list[float], list[float]]:
    """Answered requests a second, by start time, summed over `names`."""
    totals: dict[float, int] = {}
    for name in names:
        for t, cell in book.series(name):
            totals[t] = totals.get(t, 0) + cell.answered.total
    times = sorted(totals)
    return times, [totals[t] / book.point_seconds for t in times]


def quantile_series(
    book: Book, name: str, fraction: float, waits: bool = False
) -> tuple[list[float], list[float]]:
    points = book.series(name)
    values = [c.wait_quantile(fraction) if waits else c.quantile(fraction) for _, c in points]
    return [t for t, _ in points], values


def clip(values: list[float], ceiling: float) -> list[float]:
    """Unanswered (inf) drawn at the ceiling, so a starved stretch shows as a plateau."""
    return [ceiling if math.isinf(v) else v for v in values]


def phase_spans(book: Book) -> list[tuple[float, float, Any]]:
    return [(s.start, s.end, s.phase) for s in book.timeline]


def draw(
    path: str, verdict: Verdict, book: Book, samples: Sequence[dict[str, Any]], server: str
) -> None:
    plan = verdict.plan
    fig, axes = plt.subplots(5, 1, figsize=(10, 12), sharex=True, constrained_layout=True)
    users_ax, rps_ax, lat_ax, new_ax, server_ax = axes
    t0 = book.t0
    sample_t = [row["t"] - t0 for row in samples]
    for label, classes in USER_KINDS:
        counts = [sum(int(row.get(f"users_{c}", 0)) for c in classes) for row in samples]
        if any(counts):
            users_ax.step(sample_t, counts, where="post", label=label)
    users_ax.set_ylabel("users")
    users_ax.set_ylim(bottom=0)
    users_ax.legend(loc="upper left", fontsize=8)

    names = [n for n in book.point_names() if HELD not in n]
    rps_ax.plot(*rate_series(book, names), color="tab:green", label="all routes")
    rps_ax.plot(*rate_series(book, [SLEEP]), color="tab:olive", label="sleep route")
    rps_ax.axhline(
        plan.capacity,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"capacity {plan.threads} threads / {plan.sleep_ms} ms",
    )
    offered = [
        (s.start, s.end, s.phase.rate)
        for s in book.timeline
        if isinstance(s.phase, Step) and s.phase.rate
    ]
    for i, (lo, hi, rate) in enumerate(offered):
        rps_ax.hlines(
            rate, lo, hi, color="tab:purple", linestyle=":", label="offered" if i == 0 else None
        )
    rps_ax.set_ylabel("answers/s")
    rps_ax.set_ylim(bottom=0)
    rps_ax.legend(loc="upper left", fontsize=8)

    lat_ax.plot(*quantile_series(book, SLEEP, 0.5), label="sleep p50", color="tab:blue")
    lat_ax.plot(*quantile_series(book, SLEEP, 0.95), label="sleep p95", color="tab:red")
    for s in book.timeline:
        if not isinstance(s.phase, Step):
            continue
        if plan.mode == "knee":
            lat_ax.hlines(plan.slo_ms, s.start, s.end, color="black", linestyle="--", linewidth=1)
        else:
            lat_ax.hlines(s.phase.expected_ms, s.start, s.end, color="grey", linestyle=":")
    lat_ax.set_ylabel("sleep latency (ms)")
    lat_ax.set_yscale("log")
    lat_ax.legend(loc="upper left", fontsize=8)

    ceiling = max(verdict.limits.timeout_ms, longest_answer(book))
    times, waits = quantile_series(book, NEWCOMER, 1.0, waits=True)
    new_ax.plot(times, clip(waits, ceiling), color="tab:orange", label="new connection, max wait")
    times, medians = quantile_series(book, NEWCOMER, 0.5, waits=True)
    new_ax.plot(times, clip(medians, ceiling), color="tab:brown", label="median")
    for lo, hi, phase in phase_spans(book):
        if isinstance(phase, Attack):
            new_ax.hlines(
                verdict.limits.attack_bound_ms, lo, hi, color="black", linestyle="--", linewidth=1
            )
    new_ax.set_ylabel("new connection\nwait (ms)")
    new_ax.set_yscale("log")
    new_ax.legend(loc="upper right", fontsize=8)

    draw_server(server_ax, samples, t0)
    server_ax.set_xlabel("seconds")

    for ax in axes:
        ax.grid(alpha=0.3)
        for lo, hi, phase in phase_spans(book):
            if isinstance(phase, Attack):
                ax.axvspan(lo, hi, color="tab:red", alpha=0.07)
            else:
                ax.axvline(lo, color="grey", linewidth=0.8, linestyle="--")
    for lo, _, phase in phase_spans(book):
        users_ax.annotate(
            f" {phase.label}",
            (lo, 0.9),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
        )
    mark_knee(rps_ax, lat_ax, verdict, book)
    fig.suptitle(f"{server}: {plan.mode} mode, {plan.threads} threads, sleep {plan.sleep_ms} ms")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def longest_answer(book: Book) -> float:
    longest = [c.quantile(1.0) for _, c in book.series(NEWCOMER)]
    return max([v for v in longest if not math.isnan(v)], default=0.0)


def mark_knee(rps_ax: Any, lat_ax: Any, verdict: Verdict, book: Book) -> None:
    if verdict.knee is None or verdict.knee.sustained is None:
        return
    sustained = verdict.knee.sustained
    started = book.started(sustained.step.index)
    if started is None:
        return
    for ax in (rps_ax, lat_ax):
        ax.axvspan(started.start, started.end, color="tab:green", alpha=0.15)
    rps_ax.annotate(
        f"knee: {sustained.rps:.0f} req/s sustained",
        ((started.start + started.end) / 2, sustained.rps),
        xytext=(0, 8),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )


def draw_server(ax: Any, samples: Sequence[dict[str, Any]], t0: float) -> None:
    drawn = False
    for key, label, style in SERVER_LINES:
        rows = [row for row in samples if key in row]
        if rows:
            ax.plot([r["t"] - t0 for r in rows], [r[key] for r in rows], style, label=label)
            drawn = True
    draw_cpu(ax.twinx(), samples, t0)
    if drawn:
        ax.legend(loc="upper left", fontsize=8)
        ax.set_ylim(bottom=0)
    else:
        ax.text(
            0.5,
            0.5,
            "no server stats endpoint and no --server-pid: the server side is not sampled",
            ha="center",
            transform=ax.transAxes,
        )
    ax.set_ylabel("server")


def draw_cpu(ax: Any, samples: Sequence[dict[str, Any]], t0: float) -> None:
    """The server's CPU (/proc) and the share of time the machine's CPUs were short (PSI)."""
    cpu = [row for row in samples if "proc_cpu_percent" in row]
    if cpu:
        times = [r["t"] - t0 for r in cpu]
        values = [r["proc_cpu_percent"] for r in cpu]
        ax.plot(times, values, color="grey", alpha=0.6, linewidth=0.8, label="server CPU %")
    pairs = list(itertools.pairwise(row for row in samples if "cpu_pressure_us" in row))
    if pairs:
        times = [b["t"] - t0 for _, b in pairs]
        short = [
            (b["cpu_pressure_us"] - a["cpu_pressure_us"]) / 1e4 / max(1e-3, b["t"] - a["t"])
            for a, b in pairs
        ]
        ax.plot(times, short, "k--", alpha=0.5, linewidth=0.8, label="machine CPUs short %")
    if cpu or pairs:
        ax.set_ylabel("%")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.set_axis_off()
