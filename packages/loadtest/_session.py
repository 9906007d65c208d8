"""One run of the saturation test: its plan, its clock, its stats sampler, and its verdict.

The step shape begins the session at its first tick (on the master, or the only process); the
`quitting` listener then judges the records, writes the plot and the stats samples beside
Locust's report, prints the verdict and sets the exit code.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

import _collect  # noqa: F401  (registers the record listeners)
import _options  # noqa: F401  (registers the command-line options)
from _events import listen
from _plan import Plan, make_plan
from _plot import draw
from _records import RECORDS
from _sampler import Sampler, fetch
from _settings import Settings
from _verdict import Thresholds, judge, report

log = logging.getLogger("treadle.loadtest")

DEFAULT_THREADS = 5


@dataclass(slots=True)
class Session:
    settings: Settings
    plan: Plan
    t0: float  # wall-clock start of the first step
    sampler: Sampler | None


CURRENT: Session | None = None


def settings_of(environment: Environment) -> Settings:
    return Settings.from_options(environment.parsed_options)


def discover_threads(settings: Settings, host: str) -> tuple[int, str | None]:
    """The pool size: from --pool-threads, else the server's stats, else the default."""
    stats_url = host.rstrip("/") + settings.stats_path if settings.stats_path else None
    stats = fetch(stats_url) if stats_url else None
    if stats is None:
        stats_url = None
    if settings.pool_threads:
        return settings.pool_threads, stats_url
    if stats is not None:
        return int(stats.get("max_threads") or stats.get("threads") or DEFAULT_THREADS), stats_url
    return DEFAULT_THREADS, stats_url


def begin(environment: Environment, elapsed: float) -> Session:
    global CURRENT
    if CURRENT is not None and CURRENT.sampler is not None:
        CURRENT.sampler.stop()
    settings = settings_of(environment)
    host = environment.host or ""
    threads, stats_url = discover_threads(settings, host)
    plan = make_plan(settings, threads)
    sampler = None
    if stats_url is not None and environment.runner is not None:
        runner = environment.runner
        sampler = Sampler(stats_url, lambda: runner.user_count)
        sampler.start()
    CURRENT = Session(settings, plan, time.time() - elapsed, sampler)
    log.info(
        "saturation test: %s mode, %d threads (%s), steps %s of %.0f s, stats %s",
        settings.mode,
        threads,
        "given" if settings.pool_threads else ("from stats" if stats_url else "default"),
        ", ".join(step.label for step in plan.steps),
        settings.step_seconds,
        stats_url or "not available",
    )
    return CURRENT


def finish(environment: Environment, **_: Any) -> None:
    session = CURRENT
    if session is None or isinstance(environment.runner, WorkerRunner):
        return
    if session.sampler is not None:
        session.sampler.stop()
    settings = session.settings
    limits = Thresholds(
        max_fail_ratio=settings.max_fail_ratio,
        latency_factor=settings.latency_factor,
        latency_slack_ms=settings.latency_slack_ms,
        min_throughput=settings.min_throughput,
    )
    results = judge(session.plan, RECORDS, session.t0, limits, time.time() - session.t0)
    verdict = report(session.plan, results, settings.mode)
    passed = all(not r.problems for r in results)
    if settings.report_prefix:
        write_outputs(session, settings.report_prefix, verdict)
    (log.info if passed else log.error)("%s", verdict)
    environment.process_exit_code = 0 if passed else 1


listen("quitting", finish)


def write_outputs(session: Session, prefix: str, verdict: str) -> None:
    folder = os.path.dirname(prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(prefix + "_verdict.txt", "w") as out:
        out.write(verdict + "\n")
    if session.sampler is not None:
        session.sampler.write_csv(prefix + "_server_stats.csv", session.t0)
    title = f"treadle saturation, {session.settings.mode} mode, {session.plan.threads} threads"
    try:
        draw(
            prefix + ".png",
            session.plan,
            RECORDS,
            session.sampler.rows if session.sampler else [],
            session.t0,
            title,
        )
    except ImportError:
        log.warning("matplotlib is not installed: no plot")
