"""Run the load test's plan against treadle and its peers; write the table and the overlay.

    python packages/loadtest/_peers.py [--servers treadle,waitress,gunicorn,cheroot]
                                       [--out docs/loadtest.md]

`scripts/loadtest-peers` runs this in the `loadtest-peers` tox env, which has the peers. Each
server hosts treadle.demo:app with 5 threads (see _host), started on a free port by
scripts/_with_server.py, and gets the same Locust run: `--mode knee` (the ramp from half the
capacity until p95 breaks the SLO), then the five starvation attacks; a LOCUST_... variable
overrides one of the plan's options, as it does for Locust. Every run is bounded by its plan and
by RUN_TIMEOUT; its reports land in reports/loadtest/peers/. Then `--out` gets the
table of verdicts and knees, the starvation tables as the check printed them, the commands and
the date; beside it go the overlay (loadtest-peers.png) and treadle's own plot (loadtest.png).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from _host import SERVERS
from _overlay import draw

ROOT = Path(__file__).resolve().parents[2]
REPORTS = Path("reports") / "loadtest" / "peers"
THREADS = 5
PLAN = {"mode": "knee", "step-seconds": "8", "attack-seconds": "6"}  # LOCUST_... overrides
RUN_TIMEOUT = 300  # seconds: the plan takes about 100 s per server
DISTRIBUTIONS = ("locust", "waitress", "gunicorn", "cheroot")


def plan() -> dict[str, str]:
    """The plan's options; a LOCUST_STEP_SECONDS (etc.) in the environment overrides one."""
    return {
        name: os.environ.get("LOCUST_" + name.upper().replace("-", "_"), value)
        for name, value in PLAN.items()
    }


def run_command(server: str, python: str = "python") -> list[str]:
    prefix = REPORTS / server
    options = [part for name, value in plan().items() for part in (f"--{name}", value)]
    host = f"{shlex.quote(python)} packages/loadtest/_host.py {server} --threads {THREADS}"
    return [
        python, "scripts/_with_server.py", "--server", host,
        "--server-log", f"{prefix}_server.log", "--",
        python, "-m", "locust", "-f", "packages/loadtest", "--headless", "--only-summary",
        *options, "--pool-threads", str(THREADS), "--server-name", server,
        "--report-prefix", str(prefix),
    ]  # fmt: skip


def run(server: str) -> dict[str, Any]:
    print(f"peers: {server}: {shlex.join(run_command(server))}", file=sys.stderr, flush=True)
    # A session of its own: past RUN_TIMEOUT the run, its server and its workers all end.
    proc = subprocess.Popen(run_command(server, sys.executable), cwd=ROOT, start_new_session=True)
    try:
        proc.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise SystemExit(f"peers: {server} ran past {RUN_TIMEOUT} s") from None
    summary = json.loads((ROOT / f"{REPORTS / server}_summary.json").read_text())
    summary["verdict_text"] = (ROOT / f"{REPORTS / server}_verdict.txt").read_text()
    return dict(summary)


def attack_cell(result: dict[str, Any]) -> str:
    p90 = result["p90_ms"]
    if p90 == "timeout":
        wait = "no answer"
    elif p90 is None:
        wait = "-"
    else:
        wait = f"{p90 / 1000:.1f} s" if p90 >= 1000 else f"{p90:.0f} ms"
    return f"pass, {wait}" if result["passed"] else f"**FAIL**, {wait}"


def knee_cells(run: dict[str, Any]) -> list[str]:
    knee = run.get("knee") or {}
    capacity = run["capacity_rps"]
    sustained = knee.get("sustained_rps")
    cells = [f"{sustained:.1f} ({sustained / capacity:.0%})" if sustained else "none"]
    for key in ("queue_grows_from_rps", "slo_broken_at_rps"):
        value = knee.get(key)
        cells.append(f"{value:.0f}" if value else "not reached")
    shortages = [s["cpu_short"] for s in run["knee_steps"] if s.get("cpu_short") is not None]
    cells.append(f"{max(shortages):.0%}" if shortages else "-")
    return cells


def table(runs: Sequence[dict[str, Any]]) -> list[str]:
    attacks = [a["attack"] for a in runs[0]["attacks"]]
    head = [
        "server",
        "verdict",
        "sustained req/s",
        "queue grows from",
        "SLO broken at",
        "CPUs short",
    ]
    lines = [
        "| " + " | ".join([*head, *attacks]) + " |",
        "|" + "---|" * (len(head) + len(attacks)),
    ]
    for r in runs:
        by_name = {a["attack"]: a for a in r["attacks"]}
        verdict = "PASS" if r["passed"] else "**FAIL**"
        cells = [r["server"], verdict, *knee_cells(r)]
        cells += [attack_cell(by_name[a]) if a in by_name else "-" for a in attacks]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def versions() -> str:
    found = []
    for dist in DISTRIBUTIONS:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def markdown(runs: Sequence[dict[str, Any]], figure: str, argv: Sequence[str]) -> str:
    first = runs[0]
    today = datetime.date.today().isoformat()
    lines = [
        "# Load test: treadle and its peers",
        "",
        f"Written by `scripts/loadtest-peers{' ' + shlex.join(argv) if argv else ''}` on "
        f"{today} ({platform.system()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {versions()}). Each server hosts `treadle.demo:app` "
        f"with {first['threads']} threads and its own defaults otherwise, on loopback, with "
        "Locust on the same machine: a shared 2-core machine is noisy, so read the knees to "
        'within a step and the starvation verdicts as "answered in milliseconds" against '
        '"seconds or never".',
        "",
        "The plan, the same for every server: an open-loop ramp of `/sleep?ms="
        f"{first['sleep_ms']}` arrivals from half the pool's capacity ({first['threads']} "
        f"threads / {first['sleep_ms']} ms = {first['capacity_rps']:.0f} req/s) in steps of "
        f"{plan()['step-seconds']} s until the sleep p95 passes the SLO "
        f"({first['slo_ms']:.0f} ms) or 1% fail; then the starvation attacks, "
        f"{plan()['attack-seconds']} s each, each holding "
        f"{first['attacks'][0]['attackers'] if first['attacks'] else 0} connections, while a new "
        f"connection every 250 ms must be answered within {first['attack_bound_ms']:.0f} ms "
        "(p90, unanswered ones counted as slow).",
        "",
        f"![knee, throughput and starvation per server]({figure})",
        "",
        "## Verdicts and knees",
        "",
        *table(runs),
        "",
        "*Sustained*: the highest answered rate of a step within the SLO (share of the "
        "capacity). *Queue grows from*: the first offered rate at which requests waited a "
        "service time or more. *CPUs short*: the most, over the ramp's steps, that runnable "
        "tasks on the machine waited for a CPU (Linux PSI); a step short for half its time "
        "is too busy to say where a queue began. Attack cells: the verdict and the p90 wait "
        "of a new connection while the attackers held theirs.",
        "",
        "Attacks: "
        + "; ".join(f"**{a['attack']}**: {a['what'].split(': ', 1)[1]}" for a in first["attacks"])
        + ".",
        "",
        "## What the check printed",
        "",
    ]
    for r in runs:
        lines += [f"### {r['server']}", "", "```", r["verdict_text"].rstrip(), "```", ""]
    lines += [
        "## Commands",
        "",
        "    scripts/loadtest-peers                 # this page, about 7 minutes",
        "",
        "Each server's run, from the repository root in the `loadtest-peers` tox env:",
        "",
    ]
    lines += [f"    {shlex.join(run_command(r['server']))}" for r in runs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--out", default="docs/loadtest.md", help="the markdown to write")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown or not servers:
        parser.error(f"--servers: choose from {', '.join(SERVERS)}")
    (ROOT / REPORTS).mkdir(parents=True, exist_ok=True)
    runs = [run(server) for server in servers]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = "loadtest-peers.png"
    draw(str(out.parent / figure), runs)
    if "treadle" in servers:
        shutil.copyfile(ROOT / f"{REPORTS / 'treadle'}.png", out.parent / "loadtest.png")
    out.write_text(markdown(runs, figure, sys.argv[1:] if argv is None else argv))
    print(f"peers: wrote {args.out} and {out.parent / figure}", file=sys.stderr)
    for r in runs:
        print(f"peers: {r['server']}: {'PASS' if r['passed'] else 'FAIL'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
