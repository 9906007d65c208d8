"""Turning rounds of measurements into medians, ratios to treadle, tables, targets and the docs."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from treadle_bench.scenarios import (
    IDLE_CONNECTIONS,
    PROCESS_PAIRS,
    SCENARIOS,
    ScenarioResult,
    Settings,
    servers_for,
)
from treadle_bench.servers import DEFAULT_SERVERS, SERVERS, find_python
from treadle_bench.wrk import wrk_version

REFERENCE = "treadle"
PYTHON_PEERS = ("waitress", "cheroot", "gunicorn-gthread", "gunicorn-sync")
CHART_NAME = "benchmarks.png"


@dataclass(frozen=True, slots=True)
class Summary:
    """One server in one scenario: medians over rounds, ratios to treadle taken per round."""

    server: str
    rounds: int
    median: dict[str, float]
    rps_ratio: float | None
    p99_ratio: float | None
    errors: int
    rps_rounds: tuple[float, ...]


def summarise(result: ScenarioResult) -> list[Summary]:
    out = []
    for name in result.servers:
        runs = [r[name] for r in result.rounds if name in r]
        if not runs:
            continue
        keys = runs[0].keys()
        median = {k: statistics.median(run[k] for run in runs) for k in keys}
        ref = result.scenario.reference
        pairs = [r for r in result.rounds if name in r and ref in r]
        rps_ratio = p99_ratio = None
        if pairs and name != ref:
            rps_ratio = statistics.median(_div(r[name]["rps"], r[ref]["rps"]) for r in pairs)
            p99_ratio = statistics.median(_div(r[name]["p99"], r[ref]["p99"]) for r in pairs)
        errors = int(sum(run["errors"] for run in runs))
        rps_rounds = tuple(run["rps"] for run in runs)
        out.append(Summary(name, len(runs), median, rps_ratio, p99_ratio, errors, rps_rounds))
    return out


def _spread(x: Summary) -> str:
    """(max - min) / median of req/s over the rounds: how much the machine moved them."""
    if len(x.rps_rounds) < 2 or not x.median["rps"]:
        return "-"
    return f"{(max(x.rps_rounds) - min(x.rps_rounds)) / x.median['rps']:.0%}"


def _div(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def pair_ratios(result: ScenarioResult, base: str, other: str, key: str = "rps") -> list[float]:
    """``other``'s figure over ``base``'s, round by round (rounds where both ran)."""
    return [
        r[other][key] / r[base][key]
        for r in result.rounds
        if base in r and other in r and r[base][key]
    ]


def _ratio_range(ratios: Sequence[float]) -> str:
    if not ratios:
        return "-"
    median = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{median:.2f}x"
    return f"{median:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def table(result: ScenarioResult, summaries: Sequence[Summary]) -> str:
    s = result.scenario
    if s.idle:
        head = [
            "server", "req/s", "req/s ÷ treadle", "p99 alone ms", "p99 with idle ms",
            "p99 change", "max ms", "idle still open", "RSS before MiB", "RSS with idle MiB",
            "KiB per idle conn", "errors",
        ]  # fmt: skip
        rows = [
            [
                x.server, f"{x.median['rps']:,.0f}", _ratio(x.rps_ratio), _ms(x.median["p99_base"]),
                _ms(x.median["p99"]), f"{x.median['p99_change']:+.0%}", _ms(x.median["max"]),
                f"{x.median['alive']:.0f} / {x.median['opened']:.0f}",
                f"{x.median['rss_before_kib'] / 1024:.1f}",
                f"{x.median['rss_idle_kib'] / 1024:.1f}",
                f"{x.median['kib_per_conn']:.1f}", str(x.errors),
            ]
            for x in summaries
        ]  # fmt: skip
    else:
        mib = s.path == "/big"
        cpu = bool(s.lineup)
        head = ["server", "req/s", "spread", *(["MiB/s"] if mib else []),
                f"req/s ÷ {s.reference}", "p50 ms", "p99 ms", f"p99 ÷ {s.reference}", "max ms",
                *(["server CPU", "wrk CPU", "other CPU", "idle CPU"] if cpu else []),
                "errors"]  # fmt: skip
        rows = [
            [
                x.server, f"{x.median['rps']:,.0f}", _spread(x),
                *([f"{x.median['mib_s']:,.0f}"] if mib else []),
                _ratio(x.rps_ratio), _ms(x.median["p50"]), _ms(x.median["p99"]),
                _ratio(x.p99_ratio), _ms(x.median["max"]),
                *([_cores(x.median.get(k))
                   for k in ("server_cpu", "wrk_cpu", "other_cpu", "idle_cpu")] if cpu else []),
                str(x.errors),
            ]
            for x in summaries
        ]  # fmt: skip
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    for name, errs in result.failures.items():
        lines.append(f"\n{name} failed {len(errs)} time(s): {errs[-1]}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    measured: str
    met: bool | None  # None: not measured in this run


def targets(results: dict[int, tuple[ScenarioResult, list[Summary]]]) -> list[Target]:
    def get(number: int, server: str) -> Summary | None:
        if number not in results:
            return None
        return next((x for x in results[number][1] if x.server == server), None)

    out: list[Target] = []

    def faster(number: int, peer: str, factor: float) -> None:
        x = get(number, peer)
        text = f"S{number}: treadle ≥ {factor:g}x {peer}'s req/s"
        if x is None or not x.rps_ratio:
            out.append(Target(text, "not measured", None))
            return
        ratio = 1 / x.rps_ratio
        out.append(Target(text, f"{ratio:.2f}x", ratio >= factor))

    faster(1, "waitress", 2)
    faster(1, "cheroot", 3)
    treadle1 = get(1, REFERENCE)
    for peer in PYTHON_PEERS:
        x = get(1, peer)
        text = f"S1: treadle's p99 below {peer}'s"
        if x is None or treadle1 is None:
            out.append(Target(text, "not measured", None))
        else:
            t, p = treadle1.median["p99"], x.median["p99"]
            out.append(Target(text, f"{_ms(t)} ms vs {_ms(p)} ms", t < p))
    faster(3, "waitress", 1.2)
    faster(4, "gunicorn-gthread", 1.0)
    x = get(5, "treadle-max64")
    text = "S5 (--max-threads 64): p99 ≤ 1.5 x 50 ms"
    if x is None:
        out.append(Target(text, "not measured", None))
    else:
        out.append(Target(text, f"{_ms(x.median['p99'])} ms", x.median["p99"] <= 75.0))
    x = get(6, REFERENCE)
    if x is None:
        out.append(Target("S6: p99 moves < 20 % with idle connections", "not measured", None))
        out.append(Target("S6: < 10 KiB per idle connection", "not measured", None))
    else:
        change = x.median["p99_change"]
        alive = f"; {x.median['alive']:.0f} of {x.median['opened']:.0f} idle still open"
        out.append(Target("S6: p99 moves < 20 % with idle connections",
                          f"{change:+.0%}{alive}", abs(change) < 0.20))  # fmt: skip
        kib = x.median["kib_per_conn"]
        out.append(Target("S6: < 10 KiB per idle connection", f"{kib:.1f} KiB", kib < 10))
    measured = [(n, s) for n, (_, ss) in results.items() for s in ss if s.server == REFERENCE]
    errors = sum(s.errors for _, s in measured)
    out.append(
        Target("no errors (treadle, every scenario run)", f"{errors} errors", errors == 0)
        if measured
        else Target("no errors (treadle, every scenario run)", "not measured", None)
    )
    return out


def targets_table(items: Sequence[Target]) -> str:
    mark = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["| target | measured | status |", "|---|---|---|"]
    lines += [f"| {t.text} | {t.measured} | {mark[t.met]} |" for t in items]
    return "\n".join(lines)


def chart(results: dict[int, tuple[ScenarioResult, list[Summary]]], path: Path) -> bool:
    """Grouped bars of each server's req/s and p99 as a ratio to treadle's, per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    numbers = sorted(n for n in results if not results[n][0].scenario.lineup)
    peers = [
        n
        for n in dict.fromkeys(x.server for num in numbers for x in results[num][1])
        if n != REFERENCE
    ]
    if not peers or not any(x.rps_ratio for num in numbers for x in results[num][1]):
        return False
    fig, axes = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    width = 0.8 / len(peers)
    for ax, key, label in (
        (axes[0], "rps_ratio", "req/s ÷ treadle's\n(above 1: more than treadle)"),
        (axes[1], "p99_ratio", "p99 latency ÷ treadle's\n(above 1: worse than treadle)"),
    ):
        for i, peer in enumerate(peers):
            xs, ys = [], []
            for j, num in enumerate(numbers):
                x = next((s for s in results[num][1] if s.server == peer), None)
                value = getattr(x, key) if x else None
                if value:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(value)
            ax.bar(xs, ys, width, label=peer)
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(
            FixedLocator(
                [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
            )
        )
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(label)
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=len(peers))
    ticks = [f"S{n}: {results[n][0].scenario.short}" for n in numbers]
    axes[1].set_xticks(range(len(numbers)), ticks)
    fig.suptitle("Each server against treadle, same run (medians of per-round ratios; log scale)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def machine() -> list[str]:
    def first(path: str, prefix: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":" if ":" in line else "=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return "unknown"

    mem = first("/proc/meminfo", "MemTotal")
    mem_gib = f"{int(mem.split()[0]) / 1024 / 1024:.1f} GiB" if mem != "unknown" else mem
    return [
        f"CPU: {first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} logical cores",
        f"memory: {mem_gib}",
        f"OS: {first('/etc/os-release', 'PRETTY_NAME')}, Linux {platform.release()}",
        f"Python: {platform.python_implementation()} {platform.python_version()}",
    ]


def versions() -> list[str]:
    out = []
    for dist in ("treadle", "waitress", "cheroot", "gunicorn", "granian"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    for minor in ("3.11", "3.12", "3.13"):
        python = find_python(minor)
        out.append(f"python{minor} {_python_version(python)}" if python else f"no python{minor}")
    try:
        out.append(wrk_version())
    except (OSError, IndexError):
        out.append("wrk (version unknown)")
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """A run read back from its benchmarks.json."""

    results: dict[int, tuple[ScenarioResult, list[Summary]]]
    settings: Settings
    servers: list[str]
    command: str
    label: str
    started: datetime
    finished: datetime
    machine: list[str]
    versions: list[str]


def load_run(path: Path) -> Run:
    raw = json.loads(path.read_text())
    settings = Settings(raw["rounds"], raw["duration_s"], raw["warmup_s"], path.parent)
    servers = raw.get("servers") or list(DEFAULT_SERVERS)
    results: dict[int, tuple[ScenarioResult, list[Summary]]] = {}
    for number, data in raw["scenarios"].items():
        scenario = SCENARIOS[int(number)]
        names = data.get("servers") or servers_for(scenario, servers)
        result = ScenarioResult(scenario, names, data["rounds"], data["failures"])
        results[int(number)] = (result, summarise(result))
    started = datetime.fromisoformat(raw["started_utc"])
    finished = datetime.fromisoformat(raw.get("finished_utc") or raw["started_utc"])
    return Run(results, settings, servers, raw["command"], raw["label"], started, finished,
               raw["machine"], raw["versions"])  # fmt: skip


def _python_version(python: str) -> str:
    import subprocess

    try:
        out = subprocess.run([python, "-V"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return "(version unknown)"
    return out.stdout.strip().removeprefix("Python ") or "(version unknown)"


def processes_section(result: ScenarioResult, summaries: Sequence[Summary]) -> str:
    """What the second process bought in scenario 8, and why, from the measured CPU."""
    by_name = {x.server: x for x in summaries}
    lines = [
        "| server | 1 process req/s | 2 processes req/s | 2 ÷ 1 req/s (range over rounds) | "
        "p99 ms, 1 → 2 | server CPU, 1 → 2 | wrk CPU, 1 → 2 |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for one, two in PROCESS_PAIRS:
        a, b = by_name.get(one), by_name.get(two)
        if a is None or b is None:
            continue
        ratios = pair_ratios(result, one, two)
        lines.append(
            f"| {one} | {a.median['rps']:,.0f} | {b.median['rps']:,.0f} | {_ratio_range(ratios)} | "
            f"{_ms(a.median['p99'])} → {_ms(b.median['p99'])} | "
            f"{_cores(a.median.get('server_cpu'))} → {_cores(b.median.get('server_cpu'))} | "
            f"{_cores(a.median.get('wrk_cpu'))} → {_cores(b.median.get('wrk_cpu'))} |"
        )
    if len(lines) == 2:
        return "\n".join(lines)

    def cpu(names: Sequence[str], key: str = "server_cpu") -> float:
        values = [by_name[n].median.get(key, 0.0) for n in names if n in by_name]
        return statistics.median(values) if values else 0.0

    python_pairs = [pair for pair in PROCESS_PAIRS if not pair[0].startswith("granian")]
    ones, twos = [a for a, _ in python_pairs], [b for _, b in python_pairs]
    cores = os.cpu_count() or 1
    treadle = pair_ratios(result, "treadle", "treadle-w2")
    granian = pair_ratios(result, "granian", "granian-w2")
    idle_one, other_one = cpu(ones, "idle_cpu"), cpu(ones, "other_cpu")
    text = [
        f"\n**Why.** The machine has {cores} logical cores. With one process, the Python "
        f"servers (treadle, its gunicorn worker, gunicorn gthread) used a median "
        f"{cpu(ones):.2f} core(s), wrk {cpu(ones, 'wrk_cpu'):.2f} (one thread of C on epoll "
        f"needs little at these rates), work outside the benchmark (other processes, and time "
        f"the hypervisor gave other guests) {other_one:.2f}, and {idle_one:.2f} stayed idle."
    ]
    if idle_one >= 0.3:
        text.append(
            "So one process was not short of CPU: it was held back by its one GIL. Every "
            "request passes from the acceptor thread to a worker thread and back, each hand-off "
            "waits for the GIL and for a thread to wake, and only one thread runs Python at a "
            "time, so more threads do not help. A second process has a GIL of its own: two "
            "such chains run at once, on the CPU the first left idle."
        )
    if other_one >= 0.3:
        text.append(
            f"Other work on the machine took {other_one:.2f} core(s) meanwhile"
            + (", so that idle CPU was all a second process could count on, with" if idle_one
               >= 0.3 else "; a second process then gains")
            + " what the scheduler gives a second claim on the cores (it divides time among "
            "runnable processes)."
        )  # fmt: skip
    if idle_one < 0.3 and other_one < 0.3:
        text.append(
            "The cores were busy already, so a second process could only take turns with the first."
        )
    text.append(
        f"With two processes: servers {cpu(twos):.2f} core(s), wrk {cpu(twos, 'wrk_cpu'):.2f}, "
        f"other work {cpu(twos, 'other_cpu'):.2f}, idle {cpu(twos, 'idle_cpu'):.2f}"
        + (f"; treadle served {_ratio_range(treadle)} the requests of one process." if treadle
           else ".")
        + " It cannot double on this machine: wrk and the kernel's loopback networking (counted "
        "in each process's system time) need the same two cores, context switches among two "
        "processes and wrk cost time, and the connections split unevenly between the workers "
        "(whichever is awake accepts them), so one may be busy while the other waits. With "
        "more cores than the load needs, or with the load coming from other machines, each "
        "process adds up to one core's worth, until the cores or the clients run out: that "
        "is what `--workers` is for."
    )  # fmt: skip
    if granian:
        text.append(
            f"granian, whose HTTP work runs in Rust threads outside the GIL, went from "
            f"{cpu(['granian']):.2f} to {cpu(['granian-w2']):.2f} core(s) and served "
            f"{_ratio_range(granian)} as many requests with two workers."
        )
    lines.append(" ".join(text))
    return "\n".join(lines)


def versions_section(result: ScenarioResult, summaries: Sequence[Summary]) -> str:
    """Each version's req/s and p99 against 3.11's, taken round by round."""
    lines = [
        "| Python | req/s | req/s ÷ 3.11 (range over rounds) | p99 ms | p99 ÷ 3.11 (range) |",
        "|---|--:|--:|--:|--:|",
    ]
    ref = result.scenario.reference
    for x in summaries:
        rps = pair_ratios(result, ref, x.server) if x.server != ref else []
        p99 = pair_ratios(result, ref, x.server, "p99") if x.server != ref else []
        lines.append(
            f"| {x.server.removeprefix('treadle-py').replace('3', '3.', 1)} | "
            f"{x.median['rps']:,.0f} | "
            f"{_ratio_range(rps) if rps else '-'} | {_ms(x.median['p99'])} | "
            f"{_ratio_range(p99) if p99 else '-'} |"
        )
    lines.append(
        "\nA difference is worth reading only when the range of the per-round ratios stays on "
        "one side of 1.00x; when it straddles 1.00x, the versions are within this machine's "
        "noise of each other."
    )
    return "\n".join(lines)


def write_docs(
    docs: Path,
    results: dict[int, tuple[ScenarioResult, list[Summary]]],
    settings: Settings,
    servers: Sequence[str],
    command: str,
    label: str,
    started: datetime,
    finished: datetime | None = None,
    machine_lines: list[str] | None = None,
    version_list: list[str] | None = None,
) -> Path:
    """The page, its chart and the raw figures (from which ``load_run`` can write the page
    again: ``--render``)."""
    docs.mkdir(parents=True, exist_ok=True)
    has_chart = chart(results, docs / CHART_NAME)
    finished = finished or datetime.now(UTC)
    machine_lines = machine_lines or machine()
    version_list = version_list or versions()
    raw = {
        "command": command,
        "label": label,
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": finished.isoformat(timespec="seconds"),
        "rounds": settings.rounds,
        "duration_s": settings.duration,
        "warmup_s": settings.warmup,
        "servers": list(servers),
        "machine": machine_lines,
        "versions": version_list,
        "scenarios": {
            str(n): {
                "title": r.scenario.title,
                "servers": r.servers,
                "rounds": r.rounds,
                "failures": r.failures,
            }
            for n, (r, _) in results.items()
        },
    }
    (docs / "benchmarks.json").write_text(json.dumps(raw, indent=1) + "\n")
    md = _markdown(
        results, settings, servers, command, label, (started, finished),
        (machine_lines, version_list), has_chart,
    )  # fmt: skip
    path = docs / "benchmarks.md"
    path.write_text(md)
    return path


def _markdown(
    results: dict[int, tuple[ScenarioResult, list[Summary]]],
    settings: Settings,
    servers: Sequence[str],
    command: str,
    label: str,
    when: tuple[datetime, datetime],
    about: tuple[list[str], list[str]],
    has_chart: bool,
) -> str:
    started, finished = when
    machine_lines, version_list = about
    p: list[str] = []
    add = p.append
    add("# Benchmarks: treadle and its peers\n")
    add(
        "*This page is written by `scripts/bench`; edit the harness (`packages/bench/`), not this "
        "file. Raw per-round figures: [benchmarks.json](benchmarks.json).*\n"
    )
    add(f"**This run:** {label}. Command: `{command}`. {settings.rounds} round(s) of "
        f"{settings.duration:g} s per server and scenario (after a {settings.warmup:g} s warm-up), "
        f"{started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC.\n")  # fmt: skip
    add("## How to read it\n")
    add(
        "- Every server runs alone, as its own process, on 127.0.0.1, started afresh for each "
        "measurement and stopped after it; all host the same tiny WSGI app "
        "(`treadle_bench.app`: 13-byte hello, 1 MiB body, 50 ms sleep; every response has "
        "Content-Length).\n"
        "- Load comes from `wrk` with **one thread** (`-t1`): the machine's cores are shared "
        "between wrk and the server, and one wrk thread takes at most one core. Latencies are "
        "wrk's (coordinated omission not corrected); a request slower than 5 s counts as a "
        "timeout error.\n"
        "- Servers alternate within each scenario and the order rotates every round. "
        "Figures are **medians over rounds**; a ratio to treadle is computed within each round "
        "(same machine state) and its median reported. `req/s ÷ treadle` below 1 means slower "
        "than treadle; `p99 ÷ treadle` above 1 means a worse tail than treadle's. `spread` is "
        "(max - min) ÷ median of a server's req/s over the rounds: a rough gauge of the noise.\n"
        "- `server CPU` and `wrk CPU` (S8, S9) are the cores each used during the measured "
        "run: CPU seconds of the server's whole process tree (from /proc) and of wrk "
        "(getrusage), divided by the run's wall time. S9 runs twice as many rounds as the "
        "others: its differences are small.\n"
        "- Errors are summed over all rounds (wrk's connect/read/write/timeout errors and "
        "non-2xx answers; in S6 also idle connections that could not be opened).\n"
        "- These machines are noisy (other work shares the cores): compare ratios from one run, "
        "not absolute figures across runs.\n"
    )
    add("## Machine and versions\n")
    add("\n".join(f"- {line}" for line in [*machine_lines, ", ".join(version_list)]) + "\n")
    add("## Targets (issue 6)\n")
    add(targets_table(targets(results)) + "\n")
    if has_chart:
        add(f"![ratios to treadle]({CHART_NAME})\n")
    for number in sorted(results):
        result, summaries = results[number]
        add(f"## S{number}: {result.scenario.title}\n")
        add(f"`{result.scenario.wrk_line(settings.duration)}`\n")
        if result.scenario.idle:
            add(
                f"Per server and round: a warm-up, then scenario 1 alone (`p99 alone`); then "
                f"{IDLE_CONNECTIONS:,} connections each send one `GET /hello`, read the answer and "
                "stay silent, and scenario 1 runs again beside them (`p99 with idle`) on the same "
                "process. RSS is VmRSS from /proc summed over the server's process tree, read "
                "after the first burst and again with the idle connections open; "
                "`KiB per idle conn` is the difference divided by the connections opened. "
                "`idle still open` counts those the server had not closed by the end. "
                "`p99 change` is the median of each round's change, so it need not match the "
                "two median columns beside it; `req/s` is the run with idle connections. RSS is "
                "user-space memory only: the kernel's socket buffers are not in it.\n\n"
                "gunicorn sync is left out: its workers close every connection after one "
                "request, so it never holds an idle keep-alive connection. waitress's event loop "
                "uses `select()`, which cannot watch a file descriptor above 1023, so with "
                "1,000 idle connections plus wrk's it stops with `ValueError` (its default "
                "connection limit of 100, raised here, would instead stop it accepting); that "
                "shows as a failure line under the table.\n"
            )
        add(table(result, summaries) + "\n")
        if number == 8:
            add("### What a second process buys here, and why\n")
            add(processes_section(result, summaries) + "\n")
        if number == 9:
            add("### Python 3.11, 3.12 and 3.13\n")
            add(versions_section(result, summaries) + "\n")
    add('## The servers and what "10 threads" means for each\n')
    add("| server | command (`$PORT` chosen free by the harness) | notes |\n|---|---|---|")
    for name in [*servers, *(n for n in SERVERS if n not in servers)]:
        if name not in {x.server for _, ss in results.values() for x in ss}:
            continue
        spec = SERVERS[name]
        add(f"| {name} | `{spec.shown()}` | {spec.note} |")
        if spec.tls_template and 7 in results:
            add(f"| {name} (S7) | `{spec.shown(tls=True)}` | the same, over HTTPS |")
    add(
        "\nEvery server's idle keep-alive timeout is raised to 300 s (treadle `--keep-alive`, "
        "waitress `--channel-timeout`, gunicorn `--keep-alive`, cheroot `timeout`; granian keeps "
        "its own default) so that scenario 6's idle connections outlive the measurement; under "
        "wrk's load no connection is idle, so the other scenarios do not notice it. Limits on "
        "open connections are raised the same way (waitress, cheroot, gunicorn gthread) so "
        "that 1,000 idle connections fit. No server writes an access log.\n\n"
        "gunicorn sync answers every request with `Connection: close`, so in S1, S2 and S4 "
        "wrk reconnects for each request; its figures there are those of S3's workload.\n\n"
        "S7 serves HTTPS with one certificate for 127.0.0.1 made by trustme for the run; "
        "only the servers that terminate TLS themselves take part (waitress and this "
        "harness's cheroot launcher do not).\n"
    )
    add("## Running it\n")
    add(
        "    scripts/bench                  # full run: 3 rounds x 5 s, about 13-15 minutes\n"
        "    scripts/bench --quick          # 1 round x 2 s, about 2-3 minutes, to reports/bench\n"
        "    scripts/bench --scenarios 1,3 --servers treadle,waitress --duration 10\n"
        "    scripts/bench --help           # --rounds, --warmup, --note, --docs, --no-docs\n"
        "    tox -e bench -- --quick        # the same harness, straight from tox\n"
        "\n"
        "`scripts/bench` installs wrk (`apt-get install wrk`) when it is missing, then runs the "
        "harness in the `bench` tox env (the harness also installs wrk itself when run as "
        "root). The harness raises its open-file limit (inherited by the servers) for "
        "scenario 6, writes this page, `benchmarks.png` and `benchmarks.json` "
        "(`--no-docs` to skip), and prints the same tables.\n"
        f"Default servers: {', '.join(DEFAULT_SERVERS)} (treadle-max64 joins scenario 5; "
        f"scenarios 8 and 9 have their own: {', '.join(SCENARIOS[8].lineup)}; "
        f"{', '.join(SCENARIOS[9].lineup)}). A complete run (every scenario, the default "
        "servers, not `--quick`) rewrites this page; any other run writes its page to "
        "`reports/bench/` (or `--docs DIR`).\n"
    )
    return "\n".join(p)
