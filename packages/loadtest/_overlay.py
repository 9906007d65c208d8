"""One figure overlaying several servers' runs of the same plan, from their summaries.

Three panels: the knee (sleep p95 against the offered rate, with the SLO and the capacity),
throughput (answered against offered, with the capacity), and starvation (each attack's p90
wait for a new connection, per server, against the bound; an unanswered p90 is drawn at the
client timeout and hatched).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def as_ms(value: Any, timeout: float) -> float:
    if value == "timeout":
        return timeout
    return float("nan") if value is None else float(value)


def draw(path: str, summaries: Sequence[dict[str, Any]]) -> None:
    fig, (knee_ax, rps_ax, starve_ax) = plt.subplots(
        1, 3, figsize=(16, 5.2), constrained_layout=True
    )
    first = summaries[0]
    for color, run in zip(COLORS, summaries, strict=False):
        steps = run["knee_steps"]
        offered = [s["offered_rps"] for s in steps]
        p95 = [as_ms(s["p95_ms"], run["timeout_ms"]) for s in steps]
        knee_ax.plot(offered, p95, "o-", color=color, label=run["server"])
        rps_ax.plot(offered, [s["rps"] for s in steps], "o-", color=color, label=run["server"])
        knee = run.get("knee") or {}
        if knee.get("sustained_offered_rps"):
            at = knee["sustained_offered_rps"]
            sustained = [s for s in steps if s["offered_rps"] == at]
            if sustained:
                rps_ax.plot([at], [sustained[0]["rps"]], "*", markersize=14, color=color)
    capacity = first["capacity_rps"]
    knee_ax.axhline(
        first["slo_ms"],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"SLO {first['slo_ms']:.0f} ms",
    )
    for ax in (knee_ax, rps_ax):
        ax.axvline(capacity, color="grey", linestyle=":", label=f"capacity {capacity:.0f} req/s")
        ax.set_xlabel("offered req/s (open loop)")
        ax.grid(alpha=0.3)
    top = max([capacity, *(s["offered_rps"] for r in summaries for s in r["knee_steps"])])
    rps_ax.plot([0, top], [0, top], color="lightgrey", linewidth=1, label="answered = offered")
    rps_ax.axhline(capacity, color="grey", linestyle=":")
    knee_ax.set_yscale("log")
    knee_ax.set_ylabel("sleep p95 (ms)")
    knee_ax.set_title("the knee")
    knee_ax.legend(fontsize=8)
    rps_ax.set_ylabel("answered req/s (star: highest sustained)")
    rps_ax.set_title("throughput")
    rps_ax.legend(fontsize=8)
    draw_starvation(starve_ax, summaries)
    fig.suptitle(
        f"{', '.join(r['server'] for r in summaries)}: {first['threads']} threads each, "
        f"sleep {first['sleep_ms']} ms"
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_starvation(ax: Any, summaries: Sequence[dict[str, Any]]) -> None:
    attacks = [a["attack"] for a in summaries[0]["attacks"]]
    width = 0.8 / max(1, len(summaries))
    for i, (color, run) in enumerate(zip(COLORS, summaries, strict=False)):
        by_name = {a["attack"]: a for a in run["attacks"]}
        for j, name in enumerate(attacks):
            result = by_name.get(name)
            if result is None:
                continue
            starved = result["p90_ms"] == "timeout"
            value = max(1.0, as_ms(result["p90_ms"], run["timeout_ms"]))
            ax.bar(
                j + (i - (len(summaries) - 1) / 2) * width,
                value,
                width,
                color=color,
                hatch="//" if starved else None,
                edgecolor="black" if starved else color,
                label=run["server"] if j == 0 else None,
            )
    ax.axhline(
        summaries[0]["attack_bound_ms"],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"bound {summaries[0]['attack_bound_ms']:.0f} ms",
    )
    ax.set_xticks(range(len(attacks)), attacks, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("new connection p90 wait (ms; hatched: no answer)")
    ax.set_title("starvation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
