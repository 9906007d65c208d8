"""The harness's pure parts: the app, the command table, wrk's command line, medians and ratios,
the target checks. No server is started and wrk is not needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from treadle_bench import report
from treadle_bench.__main__ import _shown_args, docs_dir, parse_args
from treadle_bench.app import BIG, HELLO, app
from treadle_bench.scenarios import SCENARIOS, ScenarioResult, servers_for
from treadle_bench.servers import SERVERS, find_python
from treadle_bench.wrk import wrk_argv


def call(path: str) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path}, start_response))
    return seen["status"], seen["headers"], body


def test_app_routes_carry_content_length() -> None:
    for path, body in (("/hello", HELLO), ("/big", BIG), ("/sleep", HELLO)):
        status, headers, got = call(path)
        assert status == "200 OK"
        assert got == body
        assert headers["Content-Length"] == str(len(body))
    assert len(BIG) == 1024 * 1024
    assert call("/nope")[0].startswith("404")


def test_commands_fill_port_and_docs_show_no_local_path() -> None:
    for spec in SERVERS.values():
        if spec.python and find_python(spec.python) is None:
            continue
        argv = spec.command(4321)
        assert any("4321" in word for word in argv)
        assert not any("{" in word for word in argv)
        shown = spec.shown()
        assert "$PORT" in shown
        assert "/" not in shown.replace("127.0.0.1", "").split(" ", 1)[0]
        assert str(Path.home()) not in shown


def test_treadle_command_follows_the_contract() -> None:
    argv = SERVERS["treadle"].command(8000)
    assert argv[1:3] == ["-m", "treadle"]
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8000"
    assert argv[argv.index("--threads") + 1] == "10"
    assert "--max-threads" in SERVERS["treadle-max64"].command(8000)


def test_wrk_uses_one_thread_and_close_header() -> None:
    argv = wrk_argv("http://127.0.0.1:1/hello", 20, 5, True, "s.lua")
    assert argv[:4] == ["wrk", "-t1", "-c20", "-d5s"]
    assert argv[argv.index("-H") + 1] == "Connection: close"
    assert "-H" not in wrk_argv("http://127.0.0.1:1/", 50, 5, False, "s.lua")


def test_scenario_server_lists() -> None:
    assert servers_for(SCENARIOS[5], ["treadle", "waitress"])[-1] == "treadle-max64"
    assert "treadle-max64" not in servers_for(SCENARIOS[1], ["treadle", "waitress"])
    assert "gunicorn-sync" not in servers_for(SCENARIOS[6], ["treadle", "gunicorn-sync"])


def m(rps: float, p99: float, errors: float = 0) -> dict[str, float]:
    return {"rps": rps, "mib_s": 0.0, "p50": p99 / 2, "p99": p99, "max": p99, "errors": errors}


def test_ratios_are_taken_per_round_then_medianed() -> None:
    result = ScenarioResult(SCENARIOS[1], ["treadle", "waitress"])
    # A noisy round halves both servers' rates: ratios stay 0.5 though the medians move.
    result.rounds = [
        {"treadle": m(1000, 10), "waitress": m(500, 40)},
        {"treadle": m(500, 20), "waitress": m(250, 80, errors=3)},
        {"waitress": m(900, 40)},  # treadle failed here: no ratio from this round
    ]
    treadle, waitress = report.summarise(result)
    assert treadle.rps_ratio is None
    assert waitress.rps_ratio == 0.5
    assert waitress.p99_ratio == 4.0
    assert waitress.median["rps"] == 500
    assert waitress.errors == 3


def test_targets() -> None:
    result = ScenarioResult(SCENARIOS[1], ["treadle", "waitress", "cheroot"])
    result.rounds = [{"treadle": m(9000, 10), "waitress": m(3000, 50), "cheroot": m(4000, 900)}]
    checks = {t.text: t for t in report.targets({1: (result, report.summarise(result))})}
    assert checks["S1: treadle ≥ 2x waitress's req/s"].met is True
    assert checks["S1: treadle ≥ 3x cheroot's req/s"].met is False
    assert checks["S1: treadle's p99 below cheroot's"].met is True
    assert checks["S3: treadle ≥ 1.2x waitress's req/s"].met is None


def test_options_and_shown_command() -> None:
    args = parse_args(["--quick", "--scenarios", "1,3", "--servers", "treadle,waitress"])
    assert (args.rounds, args.duration, args.scenario_numbers) == (1, 2, [1, 3])
    assert _shown_args(["--quick", "--docs", "/x/y", "--note=z", "--duration", "3"]) == [
        "--quick",
        "--duration",
        "3",
    ]


def test_only_a_complete_full_length_run_replaces_the_tracked_page() -> None:
    assert docs_dir(parse_args(["--scenarios", "1,3"])) == Path("reports/bench")
    assert docs_dir(parse_args(["--servers", "treadle,waitress"])) == Path("reports/bench")
    assert docs_dir(parse_args(["--quick", "--docs", "docs"])) == Path("docs")


def test_https_scenario_runs_the_servers_that_terminate_tls() -> None:
    from treadle_bench.servers import TlsFiles

    https = SCENARIOS[7]
    assert https.tls and "https://" in https.wrk_line(5)
    names = servers_for(https, ["treadle", "waitress", "cheroot", "gunicorn-gthread", "granian"])
    assert names == ["treadle", "gunicorn-gthread", "granian"]
    files = TlsFiles(Path("c.pem"), Path("k.pem"))
    for name in names:
        argv = SERVERS[name].command(4321, files)
        assert "c.pem" in argv and "k.pem" in argv
        assert argv[-1] == "treadle_bench.app:app"  # the options come before the app
        assert "server.pem" in SERVERS[name].shown(tls=True)


def test_process_and_version_scenarios_have_their_own_lineups() -> None:
    processes, versions = SCENARIOS[8], SCENARIOS[9]
    assert servers_for(processes, ["treadle", "waitress"]) == [
        "treadle", "treadle-w2", "gunicorn-treadle", "gunicorn-treadle-w2",
        "gunicorn-gthread", "gunicorn-gthread-w2", "granian", "granian-w2",
    ]  # fmt: skip
    assert servers_for(versions, ["waitress"]) == [
        "treadle-py311",
        "treadle-py312",
        "treadle-py313",
    ]
    assert versions.rounds_factor == 2
    two = {name: SERVERS[name].command(4321) for name in processes.lineup if "w2" in name}
    assert two["treadle-w2"][two["treadle-w2"].index("--workers") + 1] == "2"
    for name in ("gunicorn-gthread-w2", "gunicorn-treadle-w2", "granian-w2"):
        assert two[name][two[name].index("-w" if "gunicorn" in name else "--workers") + 1] == "2"
    assert "treadle.gunicorn.Worker" in two["gunicorn-treadle-w2"]
    assert SERVERS["treadle-py313"].shown().startswith("python3.13 -m treadle ")


def test_versions_run_from_the_source_tree_under_the_found_interpreter() -> None:
    spec = SERVERS["treadle-py312"]
    roots = spec.environ()["PYTHONPATH"].split(os.pathsep)
    assert any(Path(root, "treadle", "server.py").exists() for root in roots)
    assert any(Path(root, "treadle_bench", "app.py").exists() for root in roots)
    found = find_python("3.12")
    if found is not None:
        assert spec.command(1)[0] == found


def test_only_a_complete_run_rewrites_the_tracked_page() -> None:
    assert docs_dir(parse_args([])) == Path("docs")
    assert docs_dir(parse_args(["--quick"])) == Path("reports/bench")
    assert docs_dir(parse_args(["--scenarios", "8,9"])) == Path("reports/bench")
    assert docs_dir(parse_args(["--servers", "treadle,waitress"])) == Path("reports/bench")
    assert docs_dir(parse_args(["--scenarios", "8", "--docs", "elsewhere"])) == Path("elsewhere")


def test_what_a_second_process_buys_is_taken_round_by_round() -> None:
    result = ScenarioResult(SCENARIOS[8], list(SCENARIOS[8].lineup))

    def cpu(rps: float, server: float) -> dict[str, float]:
        return {**m(rps, 10), "server_cpu": server, "wrk_cpu": 0.25, "other_cpu": 0.0,
                "idle_cpu": 2 - server - 0.25}  # fmt: skip

    result.rounds = [
        {"treadle": cpu(1000, 1.0), "treadle-w2": cpu(1100, 1.1)},
        {"treadle": cpu(500, 1.0), "treadle-w2": cpu(600, 1.1)},  # a slow round: same gain
    ]
    assert report.pair_ratios(result, "treadle", "treadle-w2") == [1.1, 1.2]
    text = report.processes_section(result, report.summarise(result))
    assert "| treadle | 750 | 850 | 1.15x (1.10-1.20) |" in text
    assert "used a median 1.00 core(s), wrk 0.25" in text and "held back by its one GIL" in text
    assert "treadle served 1.15x (1.10-1.20) the requests of one process" in text
    versions = ScenarioResult(SCENARIOS[9], list(SCENARIOS[9].lineup))
    versions.rounds = [{"treadle-py311": m(1000, 10), "treadle-py313": m(900, 12)}]
    text = report.versions_section(versions, report.summarise(versions))
    assert "| 3.13 | 900 | 0.90x | 12 | 1.20x |" in text


def test_a_run_is_written_again_from_its_raw_figures(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from treadle_bench.scenarios import Settings

    result = ScenarioResult(SCENARIOS[1], ["treadle", "waitress"])
    result.rounds = [{"treadle": m(1000, 10), "waitress": m(500, 40)}]
    results = {1: (result, report.summarise(result))}
    started = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    finished = datetime(2026, 1, 2, 3, 24, tzinfo=UTC)
    first = report.write_docs(
        tmp_path, results, Settings(1, 5, 1, tmp_path), ["treadle", "waitress"], "scripts/bench",
        "complete run", started, finished, ["CPU: test"], ["treadle 0"],
    )  # fmt: skip
    page = first.read_text()
    run = report.load_run(tmp_path / "benchmarks.json")
    assert (run.started, run.finished, run.machine) == (started, finished, ["CPU: test"])
    assert run.results[1][0].rounds == result.rounds
    again = report.write_docs(
        tmp_path / "again", run.results, run.settings, run.servers, run.command, run.label,
        run.started, run.finished, run.machine, run.versions,
    )  # fmt: skip
    assert again.read_text() == page
    assert "2026-01-02 03:04-03:24 UTC" in page
