"""Reports: a terminal table by category, JSON, and Markdown or HTML a person can read.

Per scenario the reports give the RFC section and level, what was sent (escaped bytes, cut
short when long), what came back, and the verdict: pass, fail (a MUST), miss (a SHOULD or MAY,
reported but not failing the run), or skip.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from treadle_conformance.model import Level, Scenario
from treadle_conformance.runner import Result

COLUMNS = ("pass", "fail", "miss", "skip")


def sent_text(scenario: Scenario, limit: int = 600) -> str:
    if scenario.script is not None:
        return scenario.script_text
    data = b"".join(scenario.send)
    text = repr(data[:limit])[2:-1]
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def verdict(result: Result) -> str:
    if result.status == "fail" and result.scenario.level is not Level.MUST:
        return "miss"
    return result.status


def counts(results: Iterable[Result]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.scenario.category, dict.fromkeys(COLUMNS, 0))
        row[verdict(r)] += 1
    return table


def table(results: Sequence[Result]) -> list[str]:
    rows = counts(results)
    total = dict.fromkeys(COLUMNS, 0)
    lines = [f"{'category':<14}" + "".join(f"{c:>7}" for c in COLUMNS)]
    for category, row in rows.items():
        lines.append(f"{category:<14}" + "".join(f"{row[c]:>7}" for c in COLUMNS))
        for c in COLUMNS:
            total[c] += row[c]
    lines.append(f"{'total':<14}" + "".join(f"{total[c]:>7}" for c in COLUMNS))
    lines.append("fail = a MUST scenario failed; miss = a SHOULD/MAY scenario not met (a warning)")
    return lines


def as_dict(result: Result) -> dict[str, object]:
    s = result.scenario
    return {
        "id": result.case_id,
        "scenario": s.id,
        "variant": result.variant,
        "category": s.category,
        "section": s.section,
        "level": s.level.value,
        "title": s.title,
        "verdict": verdict(result),
        "reason": result.reason,
        "observed": result.observed,
        "sent": sent_text(s, 2000),
        "seconds": round(result.seconds, 3),
    }


def write_json(path: Path, results: Sequence[Result], target: str) -> None:
    data = {"target": target, "summary": counts(results), "results": [as_dict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: Sequence[Result], target: str) -> str:
    out = [f"# Conformance report: {target}", "", "```", *table(results), "```", ""]
    category = ""
    for r in results:
        if r.scenario.category != category:
            category = r.scenario.category
            out += [
                "",
                f"## {category}",
                "",
                "| verdict | id | level | section | sent | came back |",
                "|---|---|---|---|---|---|",
            ]
        s = r.scenario
        got = r.observed + (f" — **{r.reason}**" if r.reason and r.status == "fail" else "")
        out.append(
            f"| {verdict(r)} | {r.case_id} | {s.level.value} | {md(s.section)} | "
            f"`{md(sent_text(s, 160))}` | {md(got)} |"
        )
    return "\n".join(out) + "\n"


def html_report(results: Sequence[Result], target: str) -> str:
    colour = {"pass": "#d7f5dd", "fail": "#f9d0d0", "miss": "#fbeecb", "skip": "#e8e8e8"}
    rows = []
    for r in results:
        s, v = r.scenario, verdict(r)
        rows.append(
            f"<tr style='background:{colour[v]}'><td>{v}</td><td>{html.escape(r.case_id)}</td>"
            f"<td>{s.category}</td><td>{s.level.value}</td><td>{html.escape(s.section)}</td>"
            f"<td>{html.escape(s.title)}</td><td><code>{html.escape(sent_text(s, 400))}</code></td>"
            f"<td>{html.escape(r.observed)}<br><b>{html.escape(r.reason)}</b></td></tr>"
        )
    summary = html.escape("\n".join(table(results)))
    return (
        "<!doctype html><meta charset='utf-8'><title>Conformance report</title>"
        "<style>body{font-family:sans-serif}td{vertical-align:top;padding:3px;font-size:13px}"
        "code{white-space:pre-wrap;word-break:break-all}</style>"
        f"<h1>Conformance report: {html.escape(target)}</h1><pre>{summary}</pre>"
        "<table><tr><th>verdict</th><th>id</th><th>category</th><th>level</th><th>section</th>"
        "<th>requirement</th><th>sent</th><th>came back</th></tr>" + "".join(rows) + "</table>\n"
    )


def write_report(path: Path, results: Sequence[Result], target: str) -> None:
    text = (
        html_report(results, target)
        if path.suffix in (".html", ".htm")
        else markdown(results, target)
    )
    path.write_text(text, encoding="utf-8")
