"""pytest plugin: options, the target (started once per session), verdicts and reports.

Load it with `-p treadle_conformance.plugin` (the CLI does). A MUST miss fails its test; a SHOULD
or MAY miss passes with a `ConformanceWarning`, so pytest's exit status is non-zero exactly when a
MUST scenario fails.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from treadle_conformance import report
from treadle_conformance.model import Level
from treadle_conformance.runner import Result
from treadle_conformance.target import Target, from_url, started, treadle_command

RESULTS = pytest.StashKey[list[Result]]()
TARGET = pytest.StashKey[Target]()


class ConformanceWarning(UserWarning):
    """A SHOULD (or MAY) scenario the server does not meet."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "HTTP/1.1 conformance target and reports")
    group.addoption(
        "--url",
        help="test a running server, e.g. http://127.0.0.1:8080 "
        "(default: $CONFORMANCE_URL, else start treadle)",
    )
    group.addoption(
        "--server-cmd",
        help="start this command; {port} is replaced by a free port, "
        "or the command prints 'listening on http://HOST:PORT'",
    )
    group.addoption(
        "--idle-bound",
        type=float,
        default=10.0,
        help="seconds to wait for a server to time out an idle connection",
    )
    group.addoption(
        "--examples",
        type=int,
        default=60,
        help="how many random requests the hypothesis scenario sends",
    )
    group.addoption("--json", dest="conformance_json", help="write the results as JSON here")
    group.addoption(
        "--report",
        dest="conformance_report",
        help="write a Markdown (.md) or HTML (.html) report here",
    )


@pytest.fixture(scope="session")
def conformance_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    config = request.config
    url = config.getoption("--url") or os.environ.get("CONFORMANCE_URL")
    command = config.getoption("--server-cmd")
    with contextlib.ExitStack() as stack:
        if url:
            target = from_url(url)
        else:
            target = stack.enter_context(
                started(
                    command or treadle_command(),
                    name="treadle" if not command else command.split()[0],
                )
            )
        target.idle_bound = config.getoption("--idle-bound")
        target.examples = config.getoption("--examples")
        config.stash[TARGET] = target
        yield target


@pytest.fixture(scope="session")
def conformance_results(request: pytest.FixtureRequest) -> list[Result]:
    return request.config.stash.setdefault(RESULTS, [])


def judge_result(result: Result) -> None:
    """Turn a result into pytest's verdict."""
    scenario = result.scenario
    if result.status == "skip":
        pytest.skip(result.reason)
    if result.status == "pass":
        return
    message = (
        f"{scenario.level.value} {scenario.section}: {scenario.title}\n"
        f"  sent: {report.sent_text(scenario, 300)}\n"
        f"  got:  {result.observed}\n  why:  {result.reason}"
    )
    if scenario.level is Level.MUST:
        pytest.fail(message, pytrace=False)
    warnings.warn(ConformanceWarning(f"{result.case_id}: {message}"), stacklevel=1)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    target = config.stash.get(TARGET, None)
    terminalreporter.section("conformance by category")
    for line in report.table(results):
        terminalreporter.write_line(line)
    name = target.name if target else "target"
    json_path = config.getoption("conformance_json")
    if json_path:
        report.write_json(Path(json_path), results, name)
        terminalreporter.write_line(f"JSON results: {json_path}")
    report_path = config.getoption("conformance_report")
    if report_path:
        report.write_report(Path(report_path), results, name)
        terminalreporter.write_line(f"report: {report_path}")
