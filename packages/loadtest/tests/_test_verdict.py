"""The check's rules on made-up records: no server, no Locust."""

from __future__ import annotations

import math
from types import SimpleNamespace

from _plan import make_plan
from _plot import latency_series
from _records import IDLE, PROBE, SLEEP, Record
from _settings import Settings
from _verdict import Thresholds, judge, judge_step, percentile, report

T0 = 1_000_000.0


def settings(**overrides: object) -> Settings:
    options = {
        "mode": "closed",
        "pool_threads": 0,
        "steps": "1,2,4",
        "step_seconds": 10.0,
        "settle_seconds": 0.0,
        "sleep_ms": 100,
        "sleep_path": "/sleep?ms={ms}",
        "cheap_path": "/hello",
        "stats_path": "/_treadle/stats",
        "idle_users": -1,
        "idle_seconds": 2.0,
        "arrival_ms": 0,
        "request_timeout": 5.0,
        "max_fail_ratio": 0.01,
        "latency_factor": 1.5,
        "latency_slack_ms": 50.0,
        "min_throughput": 0.5,
        "report_prefix": "",
        "html_file": None,
        "csv_prefix": None,
    }
    options.update(overrides)
    return Settings.from_options(SimpleNamespace(**options))


def healthy(start: float, end: float, users: int, threads: int = 5) -> list[Record]:
    """What a good pool gives a closed loop: answers at S x max(1, users/T), T/S per second."""
    ms = 100 * max(1.0, users / threads)
    rps = min(users, threads) * 10
    records = []
    for i in range(int((end - start) * rps)):
        t = T0 + start + i / rps
        records.append(Record(t, SLEEP, ms, ""))
    for i in range(int(end - start)):
        records.append(Record(T0 + start + i + 0.1, PROBE, ms, ""))
        records.append(Record(T0 + start + i + 0.2, IDLE, ms, ""))
    return records


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0
    assert math.isnan(percentile([], 0.95))


def test_plan_steps_cross_the_pool_size() -> None:
    plan = make_plan(settings(), threads=5)
    assert [s.users for s in plan.steps] == [5, 10, 20]
    assert [s.saturated for s in plan.steps] == [False, True, True]
    assert [s.expected_ms for s in plan.steps] == [100, 200, 400]
    assert [s.expected_rps for s in plan.steps] == [50, 50, 50]
    assert plan.idle_users == 10
    assert plan.duration == 30
    assert plan.steps[0].window == (2.0, 10.0)


def test_open_mode_offers_a_fifth_of_a_thread_per_user_by_default() -> None:
    plan = make_plan(settings(mode="open"), threads=5)
    assert [s.offered for s in plan.steps] == [1.0, 2.0, 4.0]
    assert not any(s.saturated for s in plan.steps)


def test_a_healthy_pool_passes() -> None:
    plan = make_plan(settings(), threads=5)
    records = [r for s in plan.steps for r in healthy(s.start, s.end, s.users)]
    results = judge(plan, records, T0, Thresholds())
    assert [r.problems for r in results] == [(), (), ()]
    assert report(plan, results, "closed").splitlines()[-1] == "PASS"


def test_latency_beyond_the_queue_bound_fails() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[0]
    records = [
        Record(r.t, r.name, 400.0, "") if r.name == SLEEP else r
        for r in healthy(step.start, step.end, step.users)
    ]
    result = judge_step(step, records, T0, Thresholds())
    assert any("sleep p95 400 ms > 200 ms allowed" in p for p in result.problems)


def test_low_throughput_fails() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[1]
    records = healthy(step.start, step.end, step.users)[::3]
    result = judge_step(step, records, T0, Thresholds())
    assert any(p.startswith("throughput") for p in result.problems)


def test_failures_over_the_ratio_fail() -> None:
    plan = make_plan(settings(), threads=5)
    step = plan.steps[2]
    records = healthy(step.start, step.end, step.users)
    records[::20] = [Record(r.t, r.name, r.ms, "timed out") for r in records[::20]]
    result = judge_step(step, records, T0, Thresholds())
    assert any("requests failed" in p for p in result.problems)
    assert judge_step(step, records, T0, Thresholds(max_fail_ratio=0.1)).problems == ()


def test_starved_new_connections_are_named_as_keep_alive_starvation() -> None:
    plan = make_plan(settings(), threads=5)
    records = [r for s in plan.steps for r in healthy(s.start, s.end, s.users) if r.name != PROBE]
    results = judge(plan, records, T0, Thresholds())
    text = report(plan, results, "closed")
    assert "FAIL: new connections got no answer" in text
    assert "keep-alive starvation" in text


def test_plot_series_buckets_by_second_and_drops_what_ends_after_the_plan() -> None:
    records = [Record(T0 + 0.2, SLEEP, 100.0, ""), Record(T0 + 0.7, SLEEP, 300.0, "")]
    records += [Record(T0 + 1.5, IDLE, 5.0, ""), Record(T0 + 9.0, SLEEP, 1.0, "")]
    times, rps, sleep_rps, p50, p95 = latency_series(records, T0, end=5.0)
    assert times == [0.5, 1.5]
    assert rps == [2.0, 1.0]
    assert sleep_rps == [2.0, 0.0]
    assert p50[0] == 100.0
    assert p95[0] == 300.0
    assert math.isnan(p50[1])


def test_a_run_stopped_early_fails_its_unfinished_steps() -> None:
    plan = make_plan(settings(), threads=5)
    records = [r for s in plan.steps[:2] for r in healthy(s.start, s.end, s.users)]
    results = judge(plan, records, T0, Thresholds(), ended=21.0)
    assert [r.problems for r in results[:2]] == [(), ()]
    assert results[2].problems == ("the run stopped 9.0 s before this step's end",)
