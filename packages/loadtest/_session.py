"""One run: its target, plan, clock, book and sampler; the phase sequence; the verdict at the end.

The step shape begins the session at its first tick (on the master, or the only process) and
asks it every tick which phase runs: `advance` starts each phase when the previous one has run
its time, puts a tick with no users between phases of different user classes (Locust keeps
users of classes that leave the shape's list, so they must be stopped first), and ends a knee
ramp after its first step beyond the SLO. The `quitting` listener judges the book, writes the
plot, the samples, the verdict and a JSON summary, prints the verdict and sets the exit code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

import _collect  # noqa: F401  (registers the outcome listeners)
import _options  # noqa: F401  (registers the command-line options)
from _book import Book
from _events import listen
from _knee import judge_knee_step
from _plan import Attack, Phase, Plan, Step, make_plan
from _plot import draw
from _procstat import ProcSampler
from _sampler import Sampler, fetch, pressure_between
from _settings import Settings
from _summary import summarize
from _tally import PENDING
from _verdict import Thresholds, Verdict, judge, report
from _wire import Target, ask

__all__ = ["Attack", "Phase", "Session", "Step", "begin", "settings_of"]

log = logging.getLogger("treadle.loadtest")

DEFAULT_THREADS = 5
REPORTS = os.path.join("reports", "loadtest")


@dataclass(frozen=True, slots=True)
class Move:
    phase: Phase
    users: int
    gap: bool  # a tick with no users before the next phase


@dataclass(slots=True)
class Session:
    settings: Settings
    plan: Plan
    server: str
    answering: Callable[[], bool]  # does the server answer a new connection right now?
    users_now: Callable[[], int]  # users running (in distributed mode, as workers report)
    prefix: str  # report files: PREFIX.png, PREFIX_verdict.txt, ...
    book: Book
    sampler: Sampler
    position: int = -1  # index in plan.phases of the running phase
    following: int | None = None  # the phase after it, once it has ended
    gap_since: float | None = None  # when the gap after it began

    @property
    def limits(self) -> Thresholds:
        return Thresholds.of(self.settings)

    def fold(self) -> None:
        self.book.fold(PENDING.take())

    def users(self, phase: Phase) -> int:
        if isinstance(phase, Attack):
            return phase.attackers + self.plan.probe_users
        return phase.users + self.plan.idle_users + self.plan.probe_users

    def advance(self, elapsed: float) -> Move | None:
        """The phase to run at `elapsed` seconds, a gap before the next, or None when done.

        Around an attack the gap lasts until every user has stopped (workers in distributed mode
        say so a heartbeat later) and the server answers a new connection again, or until
        --recovery-seconds pass: what came before (a knee ramp's backlog, the last attack's
        leftovers) is not blamed on the next phase, and the book notes how long each attack's
        aftermath kept new connections out.
        """
        phases = self.plan.phases
        if self.position < 0:
            return self.start(0, elapsed) if phases else None
        current = phases[self.position]
        started = self.book.started(current.index)
        assert started is not None
        if self.gap_since is None:
            if elapsed < started.end:
                return Move(current, self.users(current), gap=False)
            self.following = self.next_position()
            after = phases[self.following] if self.following is not None else None
            if not needs_gap(current, after):
                return None if self.following is None else self.start(self.following, elapsed)
            self.gap_since = elapsed
            return Move(current, 0, gap=True)
        waited = elapsed - started.end
        if self.users_now() and elapsed - self.gap_since < self.settings.recovery_seconds:
            return Move(current, 0, gap=True)  # workers report their users stopped late
        if self.answering():
            self.book.recovered[current.index] = waited
        elif elapsed - self.gap_since < self.settings.recovery_seconds:
            return Move(current, 0, gap=True)
        else:
            self.book.recovered[current.index] = math.inf
            log.warning("%s: no answer %.0f s after %s", self.server, waited, current.label)
        return None if self.following is None else self.start(self.following, elapsed)

    def start(self, position: int, elapsed: float) -> Move:
        self.position, self.following, self.gap_since = position, None, None
        phase = self.plan.phases[position]
        self.book.begin(phase, elapsed)
        log.info("phase %s began at %.1f s: %d users", phase.label, elapsed, self.users(phase))
        return Move(phase, self.users(phase), gap=False)

    def next_position(self) -> int | None:
        """The phase after the current one. A knee ramp skips its steps beyond the SLO; a step
        that broke it while the machine's CPUs were short (--busy-pressure) runs once more,
        from scratch, since the machine rather than the server may have broken it."""
        following = self.position + 1
        current = self.plan.phases[self.position]
        if self.plan.mode == "knee" and isinstance(current, Step):
            self.fold()
            limits = self.limits
            result = judge_knee_step(current, self.book, limits.slo_ms, limits.max_fail_ratio)
            started = self.book.started(current.index)
            assert started is not None
            lo, hi = self.book.t0 + started.start + current.settle, self.book.t0 + started.end
            short = pressure_between(self.sampler.rows, lo, hi) or 0.0
            retried = sum(s.phase.index == current.index for s in self.book.timeline) > 1
            if result.broken and short >= limits.busy_pressure and not retried:
                log.info(
                    "knee: %s broke the SLO with the CPUs short %.0f%% of it: once more",
                    current.label,
                    100 * short,
                )
                self.book.forget(current.index)
                return self.position
            if result.broken:
                log.info(
                    "knee: %s is beyond the SLO (%s): the ramp ends",
                    current.label,
                    "; ".join(result.broken),
                )
                following = len(self.plan.steps)
        return following if following < len(self.plan.phases) else None


RECOVERY_PROBE_TIMEOUT = 1.0


def ask_quietly(target: Target, path: str) -> bool:
    try:
        ask(target, path, RECOVERY_PROBE_TIMEOUT)
    except Exception:  # no answer, a refusal or an error status: not recovered
        return False
    return True


def needs_gap(current: Phase, following: Phase | None) -> bool:
    """Steps share their user classes; an attack has its own, and its aftermath is measured."""
    return isinstance(current, Attack) or isinstance(following, Attack)


CURRENT: Session | None = None


def settings_of(environment: Environment) -> Settings:
    return Settings.from_options(environment.parsed_options)


def discover_threads(settings: Settings, stats: dict[str, Any] | None) -> tuple[int, str]:
    """The pool size and where it came from: --pool-threads, else the server's stats, else 5."""
    if settings.pool_threads:
        return settings.pool_threads, "given"
    if stats is not None:
        return int(stats.get("max_threads") or stats.get("threads") or DEFAULT_THREADS), "stats"
    return DEFAULT_THREADS, "default"


def server_header(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return str(response.headers.get("Server") or "")
    except (OSError, ValueError):
        return ""


def name_server(settings: Settings, host: str) -> str:
    """--server-name, else the product in the Server header, else HOST:PORT."""
    if settings.server_name:
        return settings.server_name
    product = server_header(host.rstrip("/") + settings.cheap_path).split("/")[0].strip()
    return product.lower() if product else host.rsplit("://", maxsplit=1)[-1].rstrip("/")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "server"


def begin(environment: Environment, elapsed: float) -> Session:
    global CURRENT
    if CURRENT is not None:
        CURRENT.sampler.stop()
    settings = settings_of(environment)
    host = environment.host or ""
    stats_url = host.rstrip("/") + settings.stats_path if settings.stats_path else None
    stats = fetch(stats_url) if stats_url else None
    stats_url = stats_url if stats is not None else None
    threads, source = discover_threads(settings, stats)
    plan = make_plan(settings, threads)
    server = name_server(settings, host)
    prefix = settings.report_prefix or os.path.join(REPORTS, f"{slug(server)}-{settings.mode}")
    proc = ProcSampler(settings.server_pid) if settings.server_pid else None
    sampler = Sampler(environment.runner, stats_url, proc)
    sampler.start()
    book = Book(time.time() - elapsed, plan.duration)
    target = Target.of(host)
    answering = partial(ask_quietly, target, settings.cheap_path)
    runner = environment.runner
    assert runner is not None

    def users_now() -> int:
        return int(runner.user_count)

    CURRENT = Session(settings, plan, server, answering, users_now, prefix, book, sampler)
    log.info(
        "%s at %s: %s mode, %d threads (%s), attacks %s, steps %s; stats %s; /proc %s",
        server,
        host,
        settings.mode,
        threads,
        source,
        ", ".join(a.label for a in plan.attacks) or "none",
        ", ".join(s.label for s in plan.steps),
        stats_url or "not available",
        f"pid {settings.server_pid}" if proc else "not sampled (no --server-pid)",
    )
    return CURRENT


def finish(environment: Environment, **_: Any) -> None:
    session = CURRENT
    if session is None or isinstance(environment.runner, WorkerRunner):
        return
    session.sampler.stop()
    session.fold()
    note_pressure(session.book, session.sampler.rows)
    ended = time.time() - session.book.t0
    verdict = judge(session.plan, session.book, session.limits, ended)
    text = report(verdict, session.server)
    write_outputs(session, verdict, text)
    (log.info if verdict.passed else log.error)("%s", text)
    environment.process_exit_code = 0 if verdict.passed else 1


listen("quitting", finish)


def note_pressure(book: Book, rows: list[dict[str, Any]]) -> None:
    for started in book.timeline:
        lo = book.t0 + started.start + started.phase.settle
        share = pressure_between(rows, lo, book.t0 + started.end)
        if share is not None:
            book.pressure[started.phase.index] = share


def write_outputs(session: Session, verdict: Verdict, text: str) -> None:
    prefix = session.prefix
    folder = os.path.dirname(prefix)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(prefix + "_verdict.txt", "w") as out:
        out.write(text + "\n")
    with open(prefix + "_summary.json", "w") as out:
        json.dump(summarize(verdict, session.server, session.book), out, indent=1)
    session.sampler.write_csv(prefix + "_server_stats.csv", session.book.t0)
    draw(prefix + ".png", verdict, session.book, session.sampler.rows, session.server)
    log.info("reports: %s.png, _verdict.txt, _summary.json, _server_stats.csv", prefix)
