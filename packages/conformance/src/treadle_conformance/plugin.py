"""pytest plugin: options, the target (started once per session), verdicts and reports.

Load it with `-p treadle_conformance.plugin` (the CLI does). A MUST miss fails its test; a SHOULD
or MAY miss passes with a `ConformanceWarning`, so pytest's exit status is non-zero exactly when a
MUST scenario fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import pytest

from treadle_conformance import report
from treadle_conformance.runner import Result
from treadle_conformance.target import (
    Settings,
    Target,
    TargetError,
    from_url,
    started,
    treadle_command,
)

# Exit statuses besides pytest's own 0-5, so CI can tell "the server is broken" from "the
# server was not there".
EXIT_NO_TARGET = 6
EXIT_TARGET_DIED = 7

RESULTS = pytest.StashKey[list[Result]]()
TARGET = pytest.StashKey[Target]()
STACK = pytest.StashKey[contextlib.ExitStack]()
FATAL = pytest.StashKey[tuple[int, str]]()


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


def settings(config: pytest.Config) -> Settings:
    return Settings(
        idle_bound=config.getoption("--idle-bound"),
        examples=config.getoption("--examples"),
    )


def _open_target(config: pytest.Config, stack: contextlib.ExitStack) -> Target:
    url = config.getoption("--url") or os.environ.get("CONFORMANCE_URL")
    command = config.getoption("--server-cmd")
    if url:
        target = from_url(url, settings(config))
    else:
        target = stack.enter_context(
            started(
                command or treadle_command(),
                name="treadle" if not command else "",
                settings=settings(config),
            )
        )
    target.preflight()
    return target


def _give_up(session: pytest.Session, status: int, line: str) -> None:
    """Stop before the first scenario with one line and a distinct exit status."""
    config = session.config
    config.stash[FATAL] = (status, line)
    session.items.clear()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        # The whole output is the one line written at the end of the session.
        config.pluginmanager.unregister(reporter)


def _wants_target(items: list[pytest.Item]) -> bool:
    return any("conformance_target" in getattr(item, "fixturenames", ()) for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or TARGET in config.stash or not _wants_target(session.items):
        return
    stack = config.stash[STACK] = contextlib.ExitStack()
    try:
        config.stash[TARGET] = _open_target(config, stack)
    except TargetError as exc:
        stack.close()
        _give_up(session, EXIT_NO_TARGET, f"treadle-conformance: {exc}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    stack = config.stash.get(STACK, None)
    if stack is not None:
        stack.close()
    fatal = config.stash.get(FATAL, None)
    if fatal is not None:
        status, line = fatal
        print(line, file=sys.stderr, flush=True)
        session.exitstatus = status


@pytest.fixture(scope="session")
def conformance_target(request: pytest.FixtureRequest) -> Target:
    target = request.config.stash.get(TARGET, None)
    if target is None:
        pytest.fail("the conformance target was not set up (see the first error)", pytrace=False)
    return target


def target_died(request: pytest.FixtureRequest, target: Target, result: Result) -> None:
    """After a scenario that could not reach the server: stop the run if the server is gone."""
    if "could not talk to the server" not in result.observed:
        return
    why = target.alive()
    if why is None:
        return
    config = request.config
    line = f"treadle-conformance: the target died during the run ({why}); stopped"
    config.stash[FATAL] = (EXIT_TARGET_DIED, line)
    request.session.shouldstop = line
    pytest.skip(line)


@pytest.fixture(scope="session")
def conformance_results(request: pytest.FixtureRequest) -> list[Result]:
    return request.config.stash.setdefault(RESULTS, [])


def judge_result(result: Result) -> None:
    """Turn a result into pytest's verdict: unsafe or a MUST missed fails, a SHOULD/MAY warns."""
    scenario = result.scenario
    if result.strict == "skip":
        pytest.skip(result.strict_reason)
    if result.status == "pass":
        return
    lines = [
        f"{scenario.level.value} {scenario.section}: {scenario.title}",
        f"  sent:   {report.sent_text(scenario, 300)}",
        f"  got:    {result.observed}",
        f"  safety: {result.safety}" + (f": {result.safety_reason}" if result.unsafe else ""),
        f"  strict: {result.strict}"
        + (f": {result.strict_reason}" if result.strict_reason else ""),
    ]
    message = "\n".join(lines)
    if result.status == "fail":
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
    terminalreporter.write_line(report.skip_summary(results))
    name = target.name if target else "target"
    json_path = config.getoption("conformance_json")
    if json_path:
        report.write_json(Path(json_path), results, name)
        terminalreporter.write_line(f"JSON results: {json_path}")
    report_path = config.getoption("conformance_report")
    if report_path:
        report.write_report(Path(report_path), results, name)
        terminalreporter.write_line(f"report: {report_path}")
