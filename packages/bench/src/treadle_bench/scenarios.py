"""The scenarios and the loop that runs them.

Within a scenario every round starts each server afresh, one after another, and rotates the order
from round to round, so slow drifts of a noisy machine land on every server alike; each peer's
ratio to treadle is taken within a round, then the median over rounds is reported.

Scenarios 8 and 9 have a lineup of their own (``lineup``): one and two worker processes of
treadle, treadle's gunicorn worker, gunicorn gthread and granian; treadle on Python 3.11, 3.12
and 3.13. Their measurements also say how much CPU the server's processes and wrk used.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from treadle_bench.idle import IdleConnections
from treadle_bench.servers import (
    SERVERS,
    Running,
    TlsFiles,
    machine_busy_seconds,
    running,
    tree_cpu_seconds,
    tree_rss_kib,
)
from treadle_bench.wrk import WrkResult, run_wrk

IDLE_CONNECTIONS = 1000

Measurement = dict[str, float]

# (one process, two processes) of each server in scenario 8
PROCESS_PAIRS = (
    ("treadle", "treadle-w2"),
    ("gunicorn-treadle", "gunicorn-treadle-w2"),
    ("gunicorn-gthread", "gunicorn-gthread-w2"),
    ("granian", "granian-w2"),
)
PROCESS_LINEUP = tuple(name for pair in PROCESS_PAIRS for name in pair)


@dataclass(frozen=True, slots=True)
class Scenario:
    number: int
    title: str
    short: str  # for the chart's axis
    path: str
    connections: int
    close: bool = False
    extra_servers: tuple[str, ...] = ()
    idle: bool = False
    tls: bool = False  # HTTPS, with the servers that can serve it
    lineup: tuple[str, ...] = ()  # its own servers, whatever --servers says
    reference: str = "treadle"  # what the others are compared with
    rounds_factor: int = 1  # small differences need more rounds

    def wrk_line(self, duration: int) -> str:
        close = ' -H "Connection: close"' if self.close else ""
        scheme = "https" if self.tls else "http"
        return (
            f"wrk -t1 -c{self.connections} -d{duration}s --timeout=5s{close}"
            f" -s summary.lua {scheme}://127.0.0.1:$PORT{self.path}"
        )


SCENARIOS: dict[int, Scenario] = {
    s.number: s
    for s in (
        Scenario(1, "hello world, keep-alive, 50 connections", "hello\n50 conns", "/hello", 50),
        Scenario(2, "hello world, keep-alive, 5 connections", "hello\n5 conns", "/hello", 5),
        Scenario(
            3,
            "hello world, Connection: close, 20 connections",
            "hello, close\n20 conns",
            "/hello",
            20,
            close=True,
        ),
        Scenario(4, "1 MiB responses, keep-alive, 4 connections", "1 MiB\n4 conns", "/big", 4),
        Scenario(
            5,
            "50 ms app, 40 connections, 10 threads (pool saturation)",
            "50 ms app\n40 conns",
            "/sleep",
            40,
            extra_servers=("treadle-max64",),
        ),
        Scenario(
            6,
            f"scenario 1 with {IDLE_CONNECTIONS:,} idle keep-alive connections held open",
            f"hello 50 conns\n+{IDLE_CONNECTIONS:,} idle",
            "/hello",
            50,
            idle=True,
        ),
        Scenario(
            7,
            "hello world over HTTPS, keep-alive, 50 connections",
            "HTTPS hello\n50 conns",
            "/hello",
            50,
            tls=True,
        ),
        Scenario(
            8,
            "scenario 1 with one and with two worker processes",
            "hello 50 conns\n1 and 2 processes",
            "/hello",
            50,
            lineup=PROCESS_LINEUP,
        ),
        Scenario(
            9,
            "scenario 1 on Python 3.11, 3.12 and 3.13",
            "hello 50 conns\nPython versions",
            "/hello",
            50,
            lineup=("treadle-py311", "treadle-py312", "treadle-py313"),
            reference="treadle-py311",
            rounds_factor=2,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    duration: int  # wrk takes whole seconds
    warmup: int
    logdir: Path


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    servers: list[str]
    # rounds[i][server] is that server's measurement in round i (missing when it failed)
    rounds: list[dict[str, Measurement]] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)


def _measure(result: WrkResult) -> Measurement:
    return {
        "rps": result.rps,
        "mib_s": result.mib_per_s,
        "p50": result.p50_ms,
        "p99": result.p99_ms,
        "max": result.max_ms,
        "errors": float(result.errors),
    }


def _plain(server: Running, scenario: Scenario, settings: Settings) -> Measurement:
    url = server.url + scenario.path
    if settings.warmup:
        run_wrk(url, scenario.connections, settings.warmup, scenario.close)
    server_cpu = tree_cpu_seconds(server.proc.pid)
    machine = machine_busy_seconds()
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = _measure(run_wrk(url, scenario.connections, settings.duration, scenario.close))
    wall = time.monotonic() - started
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the child reaped since
    wrk_cpu = wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime
    out["server_cpu"] = (tree_cpu_seconds(server.proc.pid) - server_cpu) / wall
    out["wrk_cpu"] = wrk_cpu / wall
    # Everything else that kept the cores busy meanwhile: other processes, the harness, steal.
    busy = (machine_busy_seconds() - machine) / wall
    out["other_cpu"] = max(0.0, busy - out["server_cpu"] - out["wrk_cpu"])
    out["idle_cpu"] = max(0.0, (os.cpu_count() or 1) - busy)
    return out


def _with_idle(server: Running, scenario: Scenario, settings: Settings) -> Measurement:
    """Scenario 1 alone, then again with the idle connections open, on the same process."""
    url = server.url + scenario.path
    if settings.warmup:
        run_wrk(url, scenario.connections, settings.warmup)
    base = run_wrk(url, scenario.connections, settings.duration)
    time.sleep(0.5)  # let the server settle after the burst before reading its memory
    rss_before = tree_rss_kib(server.proc.pid)
    idle = IdleConnections(server.port, IDLE_CONNECTIONS)
    try:
        opened = idle.open()
        time.sleep(0.5)
        rss_idle = tree_rss_kib(server.proc.pid)
        loaded = run_wrk(url, scenario.connections, settings.duration)
        rss_after = tree_rss_kib(server.proc.pid)
        alive = idle.still_open()
    finally:
        idle.close()
    out = _measure(loaded)
    out.update(
        rps_base=base.rps,
        p99_base=base.p99_ms,
        p99_change=(loaded.p99_ms / base.p99_ms - 1) if base.p99_ms else 0.0,
        errors=float(base.errors + loaded.errors + idle.failures),
        opened=float(opened),
        alive=float(alive),
        rss_before_kib=float(rss_before),
        rss_idle_kib=float(rss_idle),
        rss_after_kib=float(rss_after),
        kib_per_conn=(rss_idle - rss_before) / opened if opened else 0.0,
    )
    return out


def servers_for(scenario: Scenario, chosen: Sequence[str]) -> list[str]:
    if scenario.lineup:
        return list(scenario.lineup)
    names = list(chosen)
    if "treadle" in names:
        names += [extra for extra in scenario.extra_servers if extra not in names]
    if scenario.idle:
        names = [name for name in names if SERVERS[name].keeps_alive]
    if scenario.tls:
        names = [name for name in names if SERVERS[name].tls_template]
    return names


def run_scenario(
    scenario: Scenario,
    chosen: Sequence[str],
    settings: Settings,
    progress: Callable[[str], None],
) -> ScenarioResult:
    names = servers_for(scenario, chosen)
    result = ScenarioResult(scenario, names)
    measure = _with_idle if scenario.idle else _plain
    tls = TlsFiles.create(settings.logdir) if scenario.tls else None
    for index in range(settings.rounds * scenario.rounds_factor):
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        measured: dict[str, Measurement] = {}
        for name in order:
            try:
                with running(SERVERS[name], settings.logdir, tls) as server:
                    measurement = measure(server, scenario, settings)
                    server.check_alive()
            except Exception as exc:  # one server's failure must not end the whole run
                result.failures.setdefault(name, []).append(f"{type(exc).__name__}: {exc}")
                progress(f"  scenario {scenario.number} round {index + 1}: {name} FAILED: {exc}")
                continue
            measured[name] = m = measurement
            progress(
                f"  scenario {scenario.number} round {index + 1}/"
                f"{settings.rounds * scenario.rounds_factor}: {name:<19}"
                f" {m['rps']:>9,.0f} req/s  p99 {m['p99']:8.1f} ms  errors {m['errors']:.0f}"
            )
        result.rounds.append(measured)
    return result


def progress(line: str) -> None:
    print(line, flush=True)
