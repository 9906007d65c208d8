"""One attack against one server: start it fresh, watch it, attack it, judge it, stop it.

    run_attack(attack, spec, logdir, **params) -> Result

The server is started for this attack alone (under the attack's resource limits, if any), its
process tree is sampled by a ``Monitor`` throughout, and the attack body gets a ``Target``:
the server, the monitor, and ``probe()`` for the well-behaved client that keeps asking during
the attack. The body returns an ``Outcome``: its own figures (lost requests, notes) and its
checks. Afterwards the harness checks that the process is still there and still answers (unless
the attack's point is to stop it), and the server is stopped by its PID.

A check is the attack's pass/fail criterion, applied the same way to every server; the doc
prints the figures side by side and which checks each server failed.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .monitor import Monitor, Usage
from .probe import Probe, ProbeFigures
from .servers import Launch, Server, ServerSpec, running
from .wire import WireError, exchange, request

# A starved server shows multi-second or endless waits; a healthy one on a busy shared 2-core
# machine stays well under this.
PROBE_BOUND = 1.0
SURVIVAL_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class Outcome:
    """What an attack body reports."""

    probe: ProbeFigures | None = None
    lost: int | None = None  # the attack's own legitimate requests that got no answer
    sent: int | None = None  # ... out of this many
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))

    def check_probe(self, bound: float = PROBE_BOUND) -> None:
        probe = self.probe
        assert probe is not None
        self.check(
            f"probe: every request answered, p99 <= {bound:g} s",
            probe.all_within(bound),
            f"{probe.ok}/{probe.total}, p99 {fmt_seconds(probe.p99)}",
        )


@dataclass(slots=True)
class Target:
    server: Server
    monitor: Monitor

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def probe(self, **kwargs: Any) -> Probe:
        return Probe(self.address, **kwargs)


AttackBody = Callable[..., Outcome]


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    title: str
    summary: str  # what it does, with its full-run numbers, for the doc
    body: AttackBody
    launch: Launch = field(default_factory=Launch)
    stops_server: bool = False  # the attack ends the process on purpose (SIGTERM)


@dataclass(slots=True)
class Result:
    attack: str
    server: str
    outcome: Outcome
    usage: Usage
    survived: bool | None  # None: the attack stops the server on purpose
    seconds: float
    worker_restarts: int = 0
    error: str = ""
    exit_status: int | None = None  # the process had exited by the end (not on purpose)

    @property
    def checks(self) -> list[Check]:
        checks = list(self.outcome.checks)
        if self.survived is not None:
            checks.insert(0, Check("server survived and still answers", self.survived))
        if self.error:
            checks.insert(0, Check("attack ran to its end", False, self.error))
        return checks

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def explain(self) -> str:
        lines = [f"{self.attack} on {self.server}: {'pass' if self.passed else 'FAIL'}"]
        lines.extend(
            f"  [{'ok' if c.ok else 'FAIL'}] {c.name}{': ' + c.detail if c.detail else ''}"
            for c in self.checks
        )
        lines.extend(f"  note: {note}" for note in self.outcome.notes)
        return "\n".join(lines)


def fmt_seconds(value: float) -> str:
    if value == float("inf"):
        return "timeout"
    if value < 1.0:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def still_answers(server: Server) -> bool:
    if not server.alive():
        return False
    try:
        response = exchange(server.address, request("GET", "/hello", close=True), SURVIVAL_TIMEOUT)
    except WireError:
        return False
    return response.status == 200


def _worker_restarts(usage: Usage, root_pid: int) -> int:
    """Child processes (gunicorn workers) seen during the attack that were gone at its end."""
    children = {pid for sample in usage.samples for pid in sample.pids if pid != root_pid}
    final = usage.samples[-1].pids - {root_pid} if usage.samples else frozenset()
    return max(0, len(children) - len(final))


def run_attack(attack: Attack, spec: ServerSpec, logdir: Path, **params: Any) -> Result:
    started = time.monotonic()
    error = ""
    outcome = Outcome()
    with running(spec, logdir, attack.launch) as server:
        with Monitor(server.pid) as monitor:
            try:
                outcome = attack.body(Target(server, monitor), **params)
            except Exception as exc:  # a broken attack is reported, not a crash of the run
                error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            survived = None if attack.stops_server else still_answers(server)
        usage = monitor.usage()
        exit_status = None
        if survived is False and not server.alive():
            exit_status = server.proc.returncode
            outcome.notes.append(f"exited with status {exit_status}: {server.log_tail(2)}")
    restarts = 0 if attack.stops_server else _worker_restarts(usage, server.pid)
    if restarts:
        outcome.notes.append(f"{restarts} worker process(es) died and were replaced")
    return Result(
        attack.name,
        spec.name,
        outcome,
        usage,
        survived,
        time.monotonic() - started,
        restarts,
        error,
        exit_status,
    )
