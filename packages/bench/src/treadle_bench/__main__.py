"""``python -m treadle_bench``: run the scenarios, print a table each, write the docs page."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from treadle_bench import report
from treadle_bench.idle import IDLE_CONNECTIONS_FDS, raise_fd_limit
from treadle_bench.scenarios import SCENARIOS, ScenarioResult, Settings, progress, run_scenario
from treadle_bench.servers import DEFAULT_SERVERS, SERVERS
from treadle_bench.wrk import ensure_wrk


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark treadle against its peers with wrk; see docs/benchmarks.md.",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s (about 3 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 3; quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 5)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load (default 1; 0: none)")
    parser.add_argument(
        "--scenarios", default=",".join(map(str, SCENARIOS)), help="e.g. 1,3 (default all)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated, from: {', '.join(SERVERS)}",
    )
    parser.add_argument(
        "--docs",
        help="where benchmarks.md goes (default: docs for a complete run, else reports/bench)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print the tables only")
    parser.add_argument("--note", default="", help="a sentence about this run for the docs page")
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="measure nothing: write the page again from a run's benchmarks.json (after a "
        "change to the report), into --docs or the JSON's own folder",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 5)
    args.warmup = 1 if args.warmup is None else args.warmup
    try:
        args.scenario_numbers = [int(n) for n in _list(args.scenarios)]
    except ValueError:
        parser.error("--scenarios takes numbers, e.g. 1,3")
    unknown = [n for n in args.scenario_numbers if n not in SCENARIOS]
    bad = [s for s in _list(args.servers) if s not in SERVERS]
    if unknown or bad:
        parser.error(f"unknown scenario(s) {unknown} or server(s) {bad}")
    args.server_names = _list(args.servers)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --duration take 1 or more, --warmup 0 or more")
    return args


def _shown_args(argv: list[str]) -> list[str]:
    """The arguments as the docs show them: without --docs/--note, which may hold local paths."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--docs", "--note"):
            skip = True
        elif not arg.startswith(("--docs=", "--note=")):
            out.append(arg)
    return out


def complete(args: argparse.Namespace) -> bool:
    """Every scenario with the default servers: the only kind of run the tracked page shows."""
    return sorted(args.scenario_numbers) == sorted(SCENARIOS) and set(args.server_names) >= set(
        DEFAULT_SERVERS
    )


def docs_dir(args: argparse.Namespace) -> Path:
    if args.docs:
        return Path(args.docs)
    return Path("docs") if complete(args) and not args.quick else Path("reports/bench")


def _label(args: argparse.Namespace) -> str:
    kind = "quick run" if args.quick else "run"
    kind = ("complete " if complete(args) else "partial ") + kind
    return f"{kind}; {args.note}" if args.note else kind


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally` that stops a server


def render(args: argparse.Namespace) -> int:
    source = Path(args.render)
    run = report.load_run(source)
    path = report.write_docs(
        Path(args.docs) if args.docs else source.parent, run.results, run.settings,
        run.servers, run.command, run.label, run.started, run.finished, run.machine,
        run.versions,
    )  # fmt: skip
    progress(f"wrote {path} from {source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    ensure_wrk()
    limit = raise_fd_limit()
    if 6 in args.scenario_numbers and limit < IDLE_CONNECTIONS_FDS:
        progress(f"warning: open-file limit {limit}; scenario 6 needs about {IDLE_CONNECTIONS_FDS}")
    started = datetime.now(UTC)
    results: dict[int, tuple[ScenarioResult, list[report.Summary]]] = {}
    with tempfile.TemporaryDirectory(prefix="treadle-bench-") as logdir:
        settings = Settings(args.rounds, args.duration, args.warmup, Path(logdir))
        for number in args.scenario_numbers:
            scenario = SCENARIOS[number]
            progress(f"S{number}: {scenario.title}")
            result = run_scenario(scenario, args.server_names, settings, progress)
            results[number] = (result, report.summarise(result))
            print(f"\nS{number}: {scenario.title}\n{report.table(*results[number])}\n", flush=True)
    print(report.targets_table(report.targets(results)))
    if not args.no_docs:
        command = shlex.join(
            ["scripts/bench", *_shown_args(sys.argv[1:] if argv is None else argv)]
        )
        label = _label(args)
        path = report.write_docs(
            docs_dir(args), results, settings, args.server_names, command, label, started
        )
        progress(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
