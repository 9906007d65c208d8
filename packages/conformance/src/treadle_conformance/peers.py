"""Differential run: the whole catalogue against treadle and its peers, into docs/conformance.md.

Each server hosts the reflection app with 5 threads on a free port and short timeouts; the same
scenarios (with their fragmentation variants) run against each in turn, and the comparison table
is written as Markdown. A row where treadle fails and a peer passes is a treadle bug; a row every
server fails is an expectation to re-read against the RFC.

    python -m treadle_conformance.peers [--out docs/conformance.md] [--servers treadle,waitress]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from treadle_conformance import report
from treadle_conformance.model import Level
from treadle_conformance.runner import Result, case_id, run, variants
from treadle_conformance.scenarios import CATALOGUE
from treadle_conformance.target import Settings, TargetError, started, treadle_command

APP = "treadle_conformance.reflect:app"
PY = shlex.quote(sys.executable)
SERVERS: dict[str, tuple[str, str]] = {
    "treadle": ("treadle", treadle_command()),
    "waitress": (
        "waitress",
        f"{PY} -m waitress --listen=127.0.0.1:{{port}} --threads=5 "
        f"--channel-timeout=3 --cleanup-interval=1 {APP}",
    ),
    "gunicorn": (
        "gunicorn",
        f"{PY} -m gunicorn --worker-class gthread --workers 1 --threads 5 "
        f"--bind 127.0.0.1:{{port}} --keep-alive 3 --timeout 30 {APP}",
    ),
    "cheroot": (
        "cheroot",
        f"{PY} -m cheroot --bind 127.0.0.1:{{port}} --threads 5 --timeout 3 {APP}",
    ),
}


def mark(result: Result) -> str:
    """A table cell with both verdicts: pass, skip, **UNSAFE**, **MUST-miss**, miss, or both."""
    cols = report.columns(result)
    return "+".join(f"**{c.upper()}**" if c in ("unsafe", "MUST-miss") else c for c in cols)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_server(name: str, command: str, idle_bound: float) -> list[Result]:
    results: list[Result] = []
    with started(command, name=name, settings=Settings(idle_bound=idle_bound)) as target:
        target.preflight()
        if not target.reflect:
            raise TargetError(f"{name} does not answer with the reflection app")
        for scenario, variant in variants(CATALOGUE):
            results.append(run(scenario, target, variant))
    return results


def summary_rows(all_results: dict[str, list[Result]]) -> list[str]:
    lines = [
        "| server | version | command | pass | unsafe | MUST miss | SHOULD/MAY miss | skip |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, results in all_results.items():
        t = report.totals(results)
        command = SERVERS[name][1].replace(PY, "python")
        lines.append(
            f"| {name} | {version(SERVERS[name][0])} | `{command}` | {t['pass']} | "
            f"{t['unsafe']} | {t['MUST-miss']} | {t['miss']} | {t['skip']} |"
        )
    return lines


def category_rows(all_results: dict[str, list[Result]]) -> list[str]:
    names = list(all_results)
    header = (
        "| category | cases | "
        + " | ".join(f"{n} pass/unsafe/MUST-miss/miss" for n in names)
        + " |"
    )
    lines = [header, "|---|---|" + "---|" * len(names)]
    tables = {n: report.counts(rs) for n, rs in all_results.items()}
    first = tables[names[0]]
    for category in first:
        cells = []
        for n in names:
            row = tables[n].get(category, dict.fromkeys(report.COLUMNS, 0))
            cells.append(f"{row['pass']}/{row['unsafe']}/{row['MUST-miss']}/{row['miss']}")
        lines.append(
            f"| {category} | {sum(first[category].values())} | " + " | ".join(cells) + " |"
        )
    return lines


def scenario_rows(all_results: dict[str, list[Result]]) -> list[str]:
    names = list(all_results)
    lines = [
        "| id | level | section | requirement | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    by_id = {n: {r.case_id: r for r in rs} for n, rs in all_results.items()}
    for scenario, variant in variants(CATALOGUE):
        first = by_id[names[0]].get(case_id(scenario, variant))
        if first is None:
            continue
        cells = []
        for n in names:
            r = by_id[n].get(first.case_id)
            cells.append(mark(r) if r else "n/a")
        lines.append(
            f"| {first.case_id} | {scenario.level.value} | {report.md(scenario.section)} | "
            f"{report.md(scenario.title)} | " + " | ".join(cells) + " |"
        )
    return lines


def findings(all_results: dict[str, list[Result]]) -> list[str]:
    """Where treadle falls short of a peer, and where every server disagrees with an expectation."""
    names = list(all_results)
    by_id = {n: {r.case_id: r for r in rs} for n, rs in all_results.items()}
    lines: list[str] = []
    if "treadle" in by_id:
        worse = [
            r
            for r in all_results["treadle"]
            if r.status == "fail"
            and any(
                by_id[n].get(r.case_id) and by_id[n][r.case_id].status in ("pass", "miss")
                for n in names
                if n != "treadle"
            )
        ]
        lines += ["### treadle fails, a peer passes", ""]
        lines += [
            f"- `{r.case_id}` ({r.scenario.level.value}): {report.md(r.reason)}" for r in worse
        ] or ["- none"]
        lines.append("")
    every = [
        r
        for r in all_results[names[0]]
        if all(
            by_id[n].get(r.case_id) and by_id[n][r.case_id].status in ("fail", "miss")
            for n in names
        )
    ]
    for name in names:
        failed = [
            r for r in all_results[name] if r.status in ("fail", "miss") and r.variant == "whole"
        ]
        if not failed:
            continue
        lines += [f"### {name}: scenarios not met (fragmentation variants omitted)", ""]
        lines += [
            f"- `{r.case_id}` ({r.scenario.level.value}, {mark(r)}): {report.md(r.reason)[:220]}"
            for r in failed
        ]
        lines.append("")
    lines += ["### every server misses the expectation", ""]
    lines += [
        f"- `{r.case_id}` ({r.scenario.level.value}, {report.md(r.scenario.section)}): "
        f"{report.md(r.scenario.title)}"
        for r in every
    ] or ["- none"]
    return lines


def markdown(all_results: dict[str, list[Result]], seconds: dict[str, float]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    timing = ", ".join(f"{n} {s:.0f}s" for n, s in seconds.items())
    must = sum(1 for s in CATALOGUE if s.level is Level.MUST)
    out = [
        "# Conformance: treadle and its peers",
        "",
        f"Measured {when} with `tox -e conformance-peers` (`python -m treadle_conformance.peers`):",
        f"{len(CATALOGUE)} scenarios ({must} MUST), {sum(1 for _ in variants(CATALOGUE))} cases "
        "with the fragmentation variants (`@bytes`: written byte by byte, `@random`: random "
        "pieces).",
        "Every server hosts the reflection app (`treadle_conformance.reflect:app`) with 5 threads "
        f"on 127.0.0.1. Run time: {timing}.",
        "",
        "Verdicts: **FAIL** is a MUST scenario not met; miss is a SHOULD or MAY scenario not met "
        "(a warning in `tox -e conformance`); skip needs something the target lacks. Where the RFC "
        "allows alternatives (bare LF, obs-fold, duplicate equal Content-Length, ...), every "
        "permitted outcome passes. The concurrency scenarios are the project's requirement, not an "
        "RFC MUST; see the catalogue (`packages/conformance/src/treadle_conformance/scenarios/`).",
        "",
        "Reproduce: `tox -e conformance-peers` (all four), or one server with "
        '`tox -e conformance -- --server-cmd "<command above>" --report report.md`.',
        "",
        "## Summary",
        "",
        *summary_rows(all_results),
        "",
        "## By category",
        "",
        *category_rows(all_results),
        "",
        "## Findings",
        "",
        *findings(all_results),
        "",
        "## Every scenario",
        "",
        *scenario_rows(all_results),
    ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="docs/conformance.md")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--idle-bound", type=float, default=8.0)
    args = parser.parse_args(argv)
    all_results: dict[str, list[Result]] = {}
    seconds: dict[str, float] = {}
    for name in args.servers.split(","):
        start = time.monotonic()
        print(f"{name}: running {len(CATALOGUE)} scenarios ...", flush=True)
        all_results[name] = run_server(name, SERVERS[name][1], args.idle_bound)
        seconds[name] = time.monotonic() - start
        print(f"{name}: " + "; ".join(report.table(all_results[name])[-2:-1]), flush=True)
    Path(args.out).write_text(markdown(all_results, seconds), encoding="utf-8")
    print(f"wrote {args.out}")
    treadle = all_results.get("treadle", [])
    return 1 if any(r.gating_failure for r in treadle) else 0


if __name__ == "__main__":
    sys.exit(main())
