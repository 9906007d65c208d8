"""The check's rules on made-up outcomes: no server, no Locust."""

from __future__ import annotations

import math

from _fakes import T0, attack_rows, begun, fill, healthy_step, settings, start_of

from _book import MAX_POINTS, Book
from _plan import Attack, Step, make_plan
from _sampler import pressure_between
from _tally import IDLE, NEWCOMER, SLEEP, held
from _verdict import Thresholds, judge, judge_attack, judge_step, report


def test_plan_starts_below_saturation_then_attacks() -> None:
    plan = make_plan(settings(), threads=5)
    assert [s.users for s in plan.steps] == [2, 5, 10, 20]
    assert [s.saturated for s in plan.steps] == [False, False, True, True]
    assert [s.expected_ms for s in plan.steps] == [100, 100, 200, 400]
    assert [s.expected_rps for s in plan.steps] == [20, 50, 50, 50]
    assert [type(p) for p in plan.phases] == [Step] * 4 + [Attack] * 2
    assert [a.attackers for a in plan.attacks] == [8, 8]
    assert plan.idle_users == 10
    assert plan.capacity == 50


def test_knee_steps_are_multiples_of_the_capacity() -> None:
    plan = make_plan(settings(mode="knee"), threads=5)
    assert plan.arrival_ms == 200
    # each user offers 5 req/s, a tenth of the capacity: the steps are what whole users offer
    assert [s.multiple for s in plan.steps] == [0.5, 0.8, 1, 1.2, 1.5, 2]
    assert [s.rate for s in plan.steps][:3] == [25, 40, 50]
    assert plan.steps[0].offered == 2.5  # 25 req/s x 100 ms in flight


def test_open_mode_offers_a_fraction_of_the_pool() -> None:
    plan = make_plan(settings(mode="open"), threads=5)
    assert [s.offered for s in plan.steps] == [0.4, 1.0, 2.0, 4.0]
    assert not any(s.saturated for s in plan.steps)


def test_a_healthy_pool_passes() -> None:
    plan = make_plan(settings(), threads=5)
    book = begun(plan)
    for step in plan.steps:
        fill(book, healthy_step(book, step))
    for attack in plan.attacks:
        fill(book, attack_rows(book, attack, 3.0))
    verdict = judge(plan, book, Thresholds())
    assert verdict.problems == []
    assert report(verdict, "treadle").splitlines()[-1] == "PASS"
    assert report(verdict, "treadle").startswith("treadle: closed mode, 5 threads")


def test_latency_beyond_the_queue_bound_fails() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[1]
    book = begun(plan)
    fill(book, [(t, n, 400.0 if n == SLEEP else ms, e) for t, n, ms, e in healthy_step(book, step)])
    result = judge_step(step, book, Thresholds(), math.inf)
    assert any("sleep p95 404 ms > 300 ms allowed" in p for p in result.problems), result


def test_low_throughput_fails() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[2]
    book = begun(plan)
    fill(book, healthy_step(book, step)[::3])
    result = judge_step(step, book, Thresholds(), math.inf)
    assert any(p.startswith("throughput") for p in result.problems)


def test_failures_over_the_ratio_fail() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[3]
    book = begun(plan)
    rows = healthy_step(book, step)
    rows[::20] = [(t, n, ms, "timed out") for t, n, ms, _ in rows[::20]]
    fill(book, rows)
    assert any("requests failed" in p for p in judge_step(step, book, Thresholds(), 99).problems)
    assert judge_step(step, book, Thresholds(max_fail_ratio=0.1), 99).problems == ()


def test_settling_start_is_left_out() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[0]
    book = begun(plan)
    start = start_of(book, step)
    rows = healthy_step(book, step)
    rows += [(start + 0.5, SLEEP, 9000.0, "")] * 50  # a slow start, inside the settling fifth
    fill(book, rows)
    assert judge_step(step, book, Thresholds(), math.inf).problems == ()


def test_attack_passes_when_newcomers_are_answered_at_once() -> None:
    plan = make_plan(settings(), threads=5)
    attack = plan.attacks[0]
    book = begun(plan)
    rows = attack_rows(book, attack, 4.0)
    rows.append((start_of(book, attack) + 3, NEWCOMER, 1400.0, ""))  # one outlier in 16
    fill(book, rows)
    result = judge_attack(attack, book, Thresholds(), math.inf)
    assert result.problems == ()
    assert result.over == 1


def test_attack_fails_when_newcomers_wait_seconds() -> None:
    plan = make_plan(settings(), threads=5)
    attack = plan.attacks[0]
    book = begun(plan)
    fill(book, attack_rows(book, attack, 4500.0))
    (problem,) = judge_attack(attack, book, Thresholds(), math.inf).problems
    assert problem.startswith("new connections waited: p90 4")
    assert "a thread waits on each new connection for its request" in problem


def test_attack_fails_when_newcomers_get_no_answer_and_names_keep_alive_starvation() -> None:
    plan = make_plan(settings(), threads=5)
    attack = plan.attacks[1]
    assert attack.attack == "idle-keep-alive"
    book = begun(plan)
    fill(book, attack_rows(book, attack, 5000.0, "TimeoutError: timed out"))
    verdict = judge(plan, book, Thresholds())
    text = report(verdict, "seed-style")
    assert "FAIL: new connections starved by silent, idle-keep-alive connections" in text
    assert "p90 no answer > 1000 ms (16 of 16 over, 16 unanswered" in text
    assert "keep-alive starvation" in text


def test_attack_table_says_when_the_server_closed_the_attackers() -> None:
    plan = make_plan(settings(attacks="silent"), threads=5)
    attack = plan.attacks[0]
    book = begun(plan)
    start = start_of(book, attack)
    fill(book, [*attack_rows(book, attack, 3.0), (start, held("silent"), 2000.0, "")])
    book.recovered[attack.index] = 4.0
    text = report(judge(plan, book, Thresholds()), "x")
    assert "after 2.0 s" in text
    assert "after 4 s" in text


def test_a_run_stopped_early_fails_its_unfinished_phases() -> None:
    plan = make_plan(settings(attacks=""), threads=5)
    book = begun(plan, plan.phases[:3])
    for step in plan.steps[:3]:
        fill(book, healthy_step(book, step))
    verdict = judge(plan, book, Thresholds(), ended=start_of(book, plan.steps[2]) + 4)
    assert [r.problems for r in verdict.steps[:2]] == [(), ()]
    assert verdict.steps[2].problems == ("the run stopped 6.0 s before this phase's end",)
    assert verdict.steps[3].problems == ("the run stopped before this phase began",)


def test_outcomes_land_in_the_phase_they_started_in() -> None:
    plan = make_plan(settings(attacks=""), threads=5)
    book = begun(plan)
    second = start_of(book, plan.steps[1])
    fill(book, [(second - 1.3, SLEEP, 100.0, ""), (second - 0.5, SLEEP, 1.0, "")])
    fill(book, [(second + 5, IDLE, 1.0, "")])
    assert book.cell(0, SLEEP).count == 1  # the other started in the gap between the steps
    assert book.cell(1, IDLE).count == 1
    assert book.cell(1, SLEEP).count == 0


def test_a_long_plan_keeps_a_bounded_number_of_plot_points() -> None:
    book = Book(T0, planned_seconds=24 * 3600)
    fill(book, [(float(t), SLEEP, 100.0, "") for t in range(0, 24 * 3600, 7)])
    assert len(book.points) <= MAX_POINTS


def test_timing_on_a_machine_too_busy_to_time_becomes_notes_but_failures_do_not() -> None:
    plan = make_plan(settings(attacks=""), threads=5)
    step = plan.steps[1]
    book = begun(plan)
    rows = [(t, n, 900.0 if n == SLEEP else ms, e) for t, n, ms, e in healthy_step(book, step)]
    fill(book, rows[::3])  # slow and a third of the throughput
    book.pressure[step.index] = 0.8
    result = judge_step(step, book, Thresholds(), math.inf)
    assert result.problems == ()
    assert [n.split(": ", 1)[0] for n in result.notes] == [
        "not judged, the machine's CPUs were short 80% of the window"
    ] * 2
    book.pressure[step.index] = 0.2
    assert len(judge_step(step, book, Thresholds(), math.inf).problems) == 2
    silent = make_plan(settings(attacks=""), threads=5)
    quiet = begun(silent)
    quiet.pressure[0] = 0.9
    assert (
        judge_step(silent.steps[0], quiet, Thresholds(), math.inf)
        .problems[0]
        .startswith("no sleep request succeeded")
    )


def test_cpu_pressure_share_from_samples() -> None:
    rows = [{"t": T0 + i, "cpu_pressure_us": i * 400_000} for i in range(10)]
    assert pressure_between(rows, T0 + 2, T0 + 7) == 0.4
    assert pressure_between(rows[:1], T0, T0 + 9) is None


def test_unanswered_new_connections_fail_a_step_even_on_a_busy_machine() -> None:
    plan = make_plan(settings(attacks=""), threads=5)
    step = plan.steps[1]
    book = begun(plan)
    rows = [r for r in healthy_step(book, step) if r[1] != NEWCOMER]
    start = start_of(book, step)
    rows += [(start + 3, NEWCOMER, 2.0, "")]  # one answered, five not
    rows += [(start + 4 + i / 4, NEWCOMER, 5000.0, "timed out") for i in range(5)]
    fill(book, rows)
    book.pressure[step.index] = 0.99
    verdict = judge(plan, book, Thresholds())
    assert "new connections got no answer: 5 of 6 (timed out)" in verdict.steps[1].problems
    assert "new connections got no answer while 10 idle keep-alive" in report(verdict, "x")
