"""The phase sequence: steps back to back, a gap around attacks that lasts until the server
answers again, and a knee ramp cut after its first step beyond the SLO."""

from __future__ import annotations

import math
from collections.abc import Iterator

from _fakes import T0, fill, settings

from _book import Book
from _plan import make_plan
from _sampler import Sampler
from _session import Move, Session
from _settings import Settings
from _tally import SLEEP


def session(s: Settings, answers: Iterator[bool]) -> Session:
    plan = make_plan(s, threads=5)
    book = Book(T0, plan.duration)
    return Session(
        s, plan, "x", lambda: next(answers), lambda: 0, "r/x", book, Sampler(None, None, None)
    )


def labels(moves: list[Move | None]) -> list[str]:
    return [
        "end" if m is None else ("gap" if m.gap else f"{m.phase.label}:{m.users}") for m in moves
    ]


def test_steps_follow_each_other_and_gaps_wait_for_an_answer() -> None:
    s = session(settings(steps="1,2", attacks="silent,no-read"), iter([True, False, True, True]))
    ticks = [0, 9, 10, 20, 21, 26, 27, 28, 33, 34]
    assert labels([s.advance(t) for t in ticks]) == [
        "1x (5 users):16", "1x (5 users):16", "2x (10 users):21",
        "gap", "silent (8):9", "gap", "gap", "no-read (8):9", "gap", "end",
    ]  # fmt: skip
    assert s.book.recovered == {1: 1.0, 2: 2.0, 3: 1.0}
    assert [round(t.start) for t in s.book.timeline] == [0, 10, 21, 28]


def test_a_server_that_never_answers_again_is_given_up_on() -> None:
    s = session(settings(steps="1", attacks="silent", recovery_seconds=3.0), iter([False] * 9))
    moves = [s.advance(t) for t in (0, 10, 11, 12, 13)]
    assert labels(moves)[-1] == "silent (8):9"
    assert s.book.recovered == {0: math.inf}


def test_a_knee_ramp_ends_after_its_first_step_beyond_the_slo() -> None:
    s = session(settings(mode="knee", steps="0.5,1,2", attacks="silent"), iter([True] * 9))
    assert labels([s.advance(0)]) == ["0.5x (5 users):16"]
    fill(s.book, [(t / 25, SLEEP, 101.0, "") for t in range(250)])
    assert labels([s.advance(10)]) == ["1x (10 users):21"]
    fill(s.book, [(10 + t / 50, SLEEP, 2000.0, "") for t in range(500)])
    assert labels([s.advance(20), s.advance(21)]) == ["gap", "silent (8):9"]


def test_a_knee_step_broken_on_a_busy_machine_runs_once_more() -> None:
    s = session(settings(mode="knee", steps="0.5,1,2", attacks=""), iter([True] * 9))
    s.sampler.rows = [{"t": T0 + t, "cpu_pressure_us": t * 800_000} for t in range(40)]
    assert labels([s.advance(0)]) == ["0.5x (5 users):16"]
    fill(s.book, [(t / 25, SLEEP, 2000.0, "") for t in range(250)])
    assert labels([s.advance(10)]) == ["0.5x (5 users):16"]  # the CPUs were short 80%
    assert s.book.cell(0, SLEEP).count == 0  # the first try is forgotten
    fill(s.book, [(10 + t / 25, SLEEP, 2000.0, "") for t in range(250)])
    assert labels([s.advance(20)]) == ["end"]  # broken twice: the ramp ends


def test_the_gap_lasts_until_every_user_has_stopped() -> None:
    s = session(settings(steps="1", attacks="silent"), iter([True] * 9))
    running = iter([3, 1, 0])
    s.users_now = lambda: next(running)
    moves = [s.advance(t) for t in (0, 10, 11, 12, 13)]
    assert labels(moves) == ["1x (5 users):16", "gap", "gap", "gap", "silent (8):9"]
