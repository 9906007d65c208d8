"""Made-up runs for the unit tests: settings, a book with every phase begun, outcomes."""

from __future__ import annotations

from types import SimpleNamespace

from _book import Book
from _plan import Attack, Phase, Plan, Step
from _settings import Settings
from _tally import IDLE, NEWCOMER, SLEEP, Slots

T0 = 1_000_000.0
GAP = 1.0  # seconds between phases, as the shape leaves them


def settings(**overrides: object) -> Settings:
    options: dict[str, object] = {
        "mode": "closed",
        "server_name": "",
        "server_pid": 0,
        "pool_threads": 0,
        "steps": "",
        "step_seconds": 10.0,
        "settle_seconds": 0.0,
        "sleep_ms": 100,
        "sleep_path": "/sleep?ms={ms}",
        "cheap_path": "/hello",
        "stats_path": "/_treadle/stats",
        "idle_users": -1,
        "idle_seconds": 2.0,
        "arrival_ms": 0,
        "slo_ms": 0.0,
        "attacks": "silent,idle-keep-alive",
        "attackers": -1,
        "attack_seconds": 5.0,
        "attack_bound_ms": 1000.0,
        "recovery_seconds": 30.0,
        "probe_ms": 250,
        "trickle_seconds": 1.0,
        "body_path": "/echo",
        "big_bytes": 0,
        "request_timeout": 5.0,
        "max_fail_ratio": 0.01,
        "latency_factor": 2.0,
        "latency_slack_ms": 100.0,
        "min_throughput": 0.5,
        "busy_pressure": 0.5,
        "report_prefix": "",
        "html_file": None,
        "csv_prefix": None,
    }
    options.update(overrides)
    return Settings.from_options(SimpleNamespace(**options))


def begun(plan: Plan, phases: tuple[Phase, ...] | None = None) -> Book:
    """A book in which the phases began one after the other, a gap apart."""
    book = Book(T0, plan.duration)
    start = 0.0
    for phase in plan.phases if phases is None else phases:
        book.begin(phase, start)
        start += phase.seconds + GAP
    return book


def start_of(book: Book, phase: Phase) -> float:
    started = book.started(phase.index)
    assert started is not None
    return started.start


def fill(book: Book, rows: list[tuple[float, str, float, str]]) -> Book:
    """Fold (seconds since t0 at the request's start, name, ms, error) rows into the book."""
    slots = Slots()
    for t, name, ms, error in rows:
        slots.add(T0 + t, name, ms, error)
    book.fold(slots.take())
    return book


def healthy_step(book: Book, step: Step) -> list[tuple[float, str, float, str]]:
    """What a good pool gives a closed loop: answers at S x max(1, users/T), T/S per second."""
    start = start_of(book, step)
    ms = step.sleep_ms * max(1.0, step.offered / step.threads)
    rate = step.expected_rps
    rows = [(start + i / rate, SLEEP, ms, "") for i in range(int(step.seconds * rate))]
    for i in range(int(step.seconds * 4)):
        rows.append((start + i / 4, NEWCOMER, 2.0, ""))
    for i in range(int(step.seconds)):
        rows.append((start + i + 0.5, IDLE, 3.0, ""))
    return rows


def attack_rows(
    book: Book, attack: Attack, wait_ms: float, error: str = ""
) -> list[tuple[float, str, float, str]]:
    """A newcomer every 250 ms through the attack, each waiting `wait_ms` (or failing)."""
    start = start_of(book, attack)
    return [(start + i / 4, NEWCOMER, wait_ms, error) for i in range(int(attack.seconds * 4))]
