"""Reports: a terminal table by category, JSON, JUnit properties, and Markdown or HTML.

Every case has two verdicts (see `verdict`): safety (safe, unsafe, or n/a for scripted
scenarios that cannot desync) and strictness (pass, or miss at the scenario's level). The
counts give, per category: pass (safe and strict), unsafe, strict misses of a MUST and of a
SHOULD/MAY (a case can be both unsafe and a miss), and skip. JSON carries the raw bytes written
and read, so a finding can be replayed; the HTML report puts failures first and folds each
category.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from treadle_conformance.model import Level, Scenario
from treadle_conformance.runner import Result

COLUMNS = ("pass", "unsafe", "MUST-miss", "miss", "skip")
LEGEND = (
    "unsafe = a desync observed or not ruled out (always a failure); MUST-miss = a MUST not "
    "met (a failure); miss = a SHOULD/MAY not met (a warning); a case can be unsafe and a miss"
)


def sent_text(scenario: Scenario, limit: int = 600) -> str:
    if scenario.script is not None:
        return scenario.script_text
    data = b"".join(scenario.send)
    text = repr(data[:limit])[2:-1]
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def verdict(result: Result) -> str:
    """One word for a case: skip, unsafe, fail (a MUST missed), miss (SHOULD/MAY), pass."""
    if result.strict == "skip":
        return "skip"
    if result.unsafe:
        return "unsafe"
    return result.status


def columns(result: Result) -> list[str]:
    """The count columns a case adds to."""
    if result.strict == "skip":
        return ["skip"]
    cols = []
    if result.unsafe:
        cols.append("unsafe")
    if result.strict == "miss":
        cols.append("MUST-miss" if result.scenario.level is Level.MUST else "miss")
    return cols or ["pass"]


def counts(results: Iterable[Result]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.scenario.category, dict.fromkeys(COLUMNS, 0))
        for c in columns(r):
            row[c] += 1
    return table


def totals(results: Iterable[Result]) -> dict[str, int]:
    total = dict.fromkeys(COLUMNS, 0)
    for row in counts(results).values():
        for c in COLUMNS:
            total[c] += row[c]
    return total


def skip_summary(results: Sequence[Result]) -> str:
    """One line: how many cases were skipped, and why."""
    reasons = Counter(r.strict_reason for r in results if r.strict == "skip")
    n = sum(reasons.values())
    blind = sum(1 for r in results if r.note)
    tail = f"; {blind} more ran without the app's view checked" if blind else ""
    if not n:
        return f"0 of {len(results)} cases skipped{tail}"
    why = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    return f"{n} of {len(results)} cases skipped ({100 * n / len(results):.0f}%): {why}{tail}"


def table(results: Sequence[Result]) -> list[str]:
    rows = counts(results)
    lines = [f"{'category':<14}" + "".join(f"{c:>10}" for c in COLUMNS)]
    for category, row in rows.items():
        lines.append(f"{category:<14}" + "".join(f"{row[c]:>10}" for c in COLUMNS))
    total = totals(results)
    lines.append(f"{'total':<14}" + "".join(f"{total[c]:>10}" for c in COLUMNS))
    lines.append(LEGEND)
    return lines


def _bytes(data: bytes) -> dict[str, object]:
    return {
        "length": len(data),
        "text": data[:65536].decode("latin-1"),
        "base64": base64.b64encode(data).decode("ascii"),
    }


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
        "safety": result.safety,
        "safety_reason": result.safety_reason,
        "strict": result.strict,
        "strict_reason": result.strict_reason,
        "note": result.note,
        "observed": result.observed,
        "sent": sent_text(s, 2000),
        "request_bytes": _bytes(result.sent),
        "response_bytes": _bytes(result.received),
        "seconds": round(result.seconds, 3),
    }


def write_json(path: Path, results: Sequence[Result], target: str) -> None:
    data = {
        "target": target,
        "totals": totals(results),
        "skipped": skip_summary(results),
        "summary": counts(results),
        "results": [as_dict(r) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def properties(result: Result) -> list[tuple[str, str]]:
    """What JUnit XML carries for a case."""
    s = result.scenario
    return [
        ("level", s.level.value),
        ("section", s.section),
        ("category", s.category),
        ("safety", result.safety),
        ("strict", result.strict),
        ("verdict", verdict(result)),
    ]


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _got(r: Result) -> str:
    reason = r.reason if r.status != "pass" else ""
    return r.observed + (f" — **{reason}**" if reason else "")


def markdown(results: Sequence[Result], target: str) -> str:
    out = [f"# Conformance report: {target}", "", "```", *table(results), "```", ""]
    out += [skip_summary(results), ""]
    category = ""
    for r in results:
        if r.scenario.category != category:
            category = r.scenario.category
            out += [
                "",
                f"## {category}",
                "",
                "| safety | strict | id | level | section | sent | came back |",
                "|---|---|---|---|---|---|---|",
            ]
        s = r.scenario
        out.append(
            f"| {r.safety} | {r.strict} | {r.case_id} | {s.level.value} | {md(s.section)} | "
            f"`{md(sent_text(s, 160))}` | {md(_got(r))} |"
        )
    return "\n".join(out) + "\n"


ORDER = {"unsafe": 0, "fail": 1, "miss": 2, "skip": 3, "pass": 4}
COLOUR = {
    "unsafe": "#f4b0b0",
    "fail": "#f9d0d0",
    "miss": "#fbeecb",
    "skip": "#e8e8e8",
    "pass": "#d7f5dd",
}


def _row(r: Result) -> str:
    s, v = r.scenario, verdict(r)
    reason = html.escape(r.reason) if r.status != "pass" else ""
    return (
        f"<tr style='background:{COLOUR[v]}'><td>{v}</td><td>{r.safety}</td><td>{r.strict}</td>"
        f"<td>{html.escape(r.case_id)}</td><td>{s.level.value}</td>"
        f"<td>{html.escape(s.section)}</td><td>{html.escape(s.title)}</td>"
        f"<td><code>{html.escape(sent_text(s, 300))}</code></td>"
        f"<td>{html.escape(r.observed)}<br><b>{reason}</b></td></tr>"
    )


def html_report(results: Sequence[Result], target: str) -> str:
    """Failures first; each category a <details> that opens only when it has failures."""
    by_category: dict[str, list[Result]] = {}
    for r in results:
        by_category.setdefault(r.scenario.category, []).append(r)
    rank = {c: min(ORDER[verdict(r)] for r in rs) for c, rs in by_category.items()}
    sections = []
    head = (
        "<tr><th>verdict</th><th>safety</th><th>strict</th><th>id</th><th>level</th>"
        "<th>section</th><th>requirement</th><th>sent</th><th>came back</th></tr>"
    )
    for category in sorted(by_category, key=lambda c: rank[c]):
        rs = sorted(by_category[category], key=lambda r: ORDER[verdict(r)])
        tally = Counter(verdict(r) for r in rs)
        summary = ", ".join(f"{n} {v}" for v, n in sorted(tally.items(), key=lambda x: ORDER[x[0]]))
        opened = " open" if rank[category] <= ORDER["fail"] else ""
        sections.append(
            f"<details{opened}><summary><b>{html.escape(category)}</b>: {summary}</summary>"
            f"<table>{head}{''.join(_row(r) for r in rs)}</table></details>"
        )
    summary = html.escape("\n".join([*table(results), skip_summary(results)]))
    return (
        "<!doctype html><meta charset='utf-8'><title>Conformance report</title>"
        "<style>body{font-family:sans-serif;margin:1em}td{vertical-align:top;padding:3px;"
        "font-size:13px}code{white-space:pre-wrap;word-break:break-all}"
        "summary{cursor:pointer;padding:4px 0}table{border-collapse:collapse}</style>"
        f"<h1>Conformance report: {html.escape(target)}</h1><pre>{summary}</pre>"
        + "".join(sections)
        + "\n"
    )


def write_report(path: Path, results: Sequence[Result], target: str) -> None:
    text = (
        html_report(results, target)
        if path.suffix in (".html", ".htm")
        else markdown(results, target)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
