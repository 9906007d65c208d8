"""``docs/reliability.md`` and a JSON dump: the figures of every attack, side by side.

Each attack gets one table with a column per server and a row per figure (probe success and
latency, RSS, CPU, lost requests, survival, verdict), then each server's notes and failed
checks. A summary table comes first.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .harness import Attack, Result, fmt_seconds
from .servers import SERVERS, Launch

MIB = 1024 * 1024
# A note may quote a server's log (a traceback names files): keep file names, not this
# machine's directories.
_PATH = re.compile(r"(?:/[\w.+-]+)+/([\w.+-]+)")


def scrub(text: str) -> str:
    """``/some/dir/server.py`` -> ``server.py``."""
    return _PATH.sub(r"\1", text)


@dataclass(frozen=True, slots=True)
class RunInfo:
    command: str
    date: str
    minutes: float
    cpus: int


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _probe(result: Result) -> tuple[str, str]:
    probe = result.outcome.probe
    if probe is None or probe.total == 0:
        return "—", "—"
    return f"{probe.ok}/{probe.total}", f"{fmt_seconds(probe.p50)} / {fmt_seconds(probe.p99)}"


def _lost(result: Result) -> str:
    outcome = result.outcome
    if outcome.lost is None:
        return "—"
    return f"{outcome.lost} of {outcome.sent}" if outcome.sent is not None else str(outcome.lost)


def _survived(result: Result) -> str:
    if result.survived is None:
        return "(stopped on purpose)"
    if result.survived:
        return "yes"
    if result.exit_status is not None:
        return f"**no**: exited ({result.exit_status})"
    return "**no**: alive, answers nothing"


def _verdict(result: Result) -> str:
    if result.passed:
        return "pass"
    return f"**FAIL** ({len(result.failures())})"


ROWS = (
    ("probe answered", lambda r: _probe(r)[0]),
    ("probe p50 / p99", lambda r: _probe(r)[1]),
    (
        "RSS peak (growth)",
        lambda r: f"{r.usage.rss_peak / MIB:.0f} MiB (+{r.usage.rss_growth_mib:.0f})",
    ),
    ("CPU", lambda r: f"{r.usage.cpu_percent:.0f} %"),
    ("threads / fds (max)", lambda r: f"{r.usage.threads_max} / {r.usage.fds_max}"),
    ("lost requests", _lost),
    ("survived", _survived),
    ("verdict", _verdict),
)


def _attack_section(
    attack: Attack, results: dict[str, Result], servers: Sequence[str]
) -> list[str]:
    lines = [f"## {attack.title}", "", attack.summary]
    launch: Launch = attack.launch
    if launch.rlimits or launch.env:
        lines.append(f"Servers start under `{launch.shown()}`.")
    first = next((results[s] for s in servers if s in results), None)
    if first is not None:
        lines += ["", "Checks: " + "; ".join(c.name for c in first.checks) + "."]
    lines += ["", "| | " + " | ".join(servers) + " |", "|---|" + "---|" * len(servers)]
    for label, cell in ROWS:
        row = [cell(results[s]) if s in results else "not run" for s in servers]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("")
    for server in servers:
        result = results.get(server)
        if result is None:
            continue
        said = [*result.outcome.notes]
        said += [
            f"failed: {c.name}" + (f" ({c.detail})" if c.detail else "") for c in result.failures()
        ]
        if said:
            lines.append(f"- **{server}**: " + scrub("; ".join(said)))
    lines.append("")
    return lines


def markdown(
    attacks: Sequence[Attack],
    results: dict[str, dict[str, Result]],
    servers: Sequence[str],
    info: RunInfo,
) -> str:
    lines = [
        "# Reliability: treadle, waitress and gunicorn under attack",
        "",
        f"Written by `{info.command}` on {info.date} ({info.minutes:.1f} minutes on "
        f"{info.cpus} cores, Python {platform.python_version()}, {platform.system()}); "
        "do not edit by hand, run it again.",
        "",
        "Each server is started fresh for each attack on a free loopback port, hosting "
        "`treadle_reliability.app:app` with 5 threads and its own defaults otherwise. During "
        "each attack a **probe client** asks for `/hello` on a new connection every 100-250 ms "
        "and waits up to 5 s; an unanswered probe counts as an infinite latency, so a p99 of "
        "`timeout` means some probe got nothing. RSS, CPU (percent of one core), threads and "
        "fds are the server's whole process tree (gunicorn: master and worker), sampled from "
        "/proc every 200 ms. *Lost* counts an attack's own legitimate requests that got no "
        "complete answer. *Survived*: the process is still there afterwards and answers "
        "`/hello` within 5 s. Each verdict applies the same checks to every server; a failed "
        "check is listed under the table. Loopback only; every attack is bounded in count and "
        "time.",
        "",
        "| server | version | command |",
        "|---|---|---|",
    ]
    dists = {"treadle": "treadle", "waitress": "waitress", "gunicorn": "gunicorn"}
    for name in servers:
        spec = SERVERS[name]
        lines.append(f"| {name} | {version(dists.get(name, name))} | `{spec.shown()}` |")
    lines += ["", "## Summary", "", "| attack | " + " | ".join(servers) + " |"]
    lines.append("|---|" + "---|" * len(servers))
    for attack in attacks:
        row = []
        for server in servers:
            result = results.get(attack.name, {}).get(server)
            row.append("not run" if result is None else _verdict(result))
        lines.append(f"| [{attack.title}](#{_anchor(attack.title)}) | " + " | ".join(row) + " |")
    lines.append("")
    for attack in attacks:
        lines += _attack_section(attack, results.get(attack.name, {}), servers)
    return "\n".join(lines).rstrip() + "\n"


def _anchor(title: str) -> str:
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return kept.replace(" ", "-")


def as_json(results: dict[str, dict[str, Result]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attack, by_server in results.items():
        for server, r in by_server.items():
            probe = r.outcome.probe
            out.setdefault(attack, {})[server] = {
                "passed": r.passed,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in r.checks],
                "notes": r.outcome.notes,
                "probe": None
                if probe is None
                else {
                    "ok": probe.ok,
                    "total": probe.total,
                    "p50": _finite(probe.p50),
                    "p99": _finite(probe.p99),
                    "failures": probe.failures,
                },
                "lost": r.outcome.lost,
                "sent": r.outcome.sent,
                "survived": r.survived,
                "rss_peak_mib": round(r.usage.rss_peak / MIB, 1),
                "rss_growth_mib": round(r.usage.rss_growth_mib, 1),
                "cpu_percent": round(r.usage.cpu_percent, 1),
                "threads_max": r.usage.threads_max,
                "fds_max": r.usage.fds_max,
                "seconds": round(r.seconds, 1),
            }
    return out


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 4)


def write_json(path: Path, results: dict[str, dict[str, Result]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(results), indent=1) + "\n")
