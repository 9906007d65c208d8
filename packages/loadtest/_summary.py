"""The run's verdict as plain data (PREFIX_summary.json): what the peers table and overlay read.

Latencies are in ms; a percentile that fell among unanswered requests is the string "timeout",
and one with nothing to rank is null.
"""

from __future__ import annotations

import math
from typing import Any

from _book import Book
from _verdict import Verdict, describe_attacks


def json_ms(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "timeout"
    return round(value, 1)


def summarize(verdict: Verdict, server: str, book: Book) -> dict[str, Any]:
    plan, limits = verdict.plan, verdict.limits
    knee = verdict.knee
    return {
        "server": server,
        "mode": plan.mode,
        "threads": plan.threads,
        "sleep_ms": plan.sleep_ms,
        "capacity_rps": plan.capacity,
        "slo_ms": plan.slo_ms,
        "attack_bound_ms": limits.attack_bound_ms,
        "timeout_ms": limits.timeout_ms,
        "passed": verdict.passed,
        "problems": verdict.problems,
        "attacks": [
            {
                "attack": r.attack.attack,
                "what": what,
                "attackers": r.attack.attackers,
                "passed": not r.problems,
                "new_connections": r.newcomer.count,
                "over_bound": r.over,
                "unanswered": r.newcomer.failures,
                "p50_ms": json_ms(r.wait(0.5)),
                "p90_ms": json_ms(r.wait(0.9)),
                "max_ms": json_ms(r.wait(1.0)),
                "closed_after_ms": json_ms(r.closed_after_ms),
                "answers_again_after_s": json_ms(r.recovered_after),
            }
            for r, what in zip(verdict.attacks, describe_attacks(plan), strict=True)
        ],
        "steps": [
            {
                "label": r.step.label,
                "offered": r.step.offered,
                "rps": round(r.rps, 2),
                "p50_ms": json_ms(r.sleep.quantile(0.5)),
                "p95_ms": json_ms(r.sleep.quantile(0.95)),
                "failures": r.total.failures,
                "passed": not r.problems,
                "cpu_short": None if math.isnan(r.short) else round(r.short, 2),
            }
            for r in verdict.steps
        ],
        "knee_steps": [
            {
                "label": k.step.label,
                "multiple": k.step.multiple,
                "offered_rps": round(k.step.rate, 2),
                "rps": round(k.rps, 2),
                "p50_ms": json_ms(k.sleep.quantile(0.5)),
                "p95_ms": json_ms(k.sleep.wait_quantile(0.95)),
                "failures": k.total.failures,
                "queue_grows": k.queue_grows,
                "within_slo": not k.broken,
                "cpu_short": None if math.isnan(k.short) else round(k.short, 2),
            }
            for k in verdict.knee_steps
        ],
        "knee": None
        if knee is None
        else {
            "sustained_rps": round(knee.sustained_rps, 2),
            "sustained_offered_rps": round(knee.sustained.step.rate, 2) if knee.sustained else None,
            "queue_grows_from_rps": round(knee.queue_from.step.rate, 2)
            if knee.queue_from
            else None,
            "slo_broken_at_rps": round(knee.broke_at.step.rate, 2) if knee.broke_at else None,
            "text": knee.describe(plan),
        },
        "phases": [
            {"label": s.phase.label, "start": round(s.start, 2), "seconds": s.phase.seconds}
            for s in book.timeline
        ],
    }
