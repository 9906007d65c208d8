"""pytest plugin: options, the target (started once per session), verdicts and reports.

Load it with `-p treadle_conformance.plugin` (the CLI does), or from another project's suite
with `pytest_plugins = ["treadle_conformance.plugin"]` in its top conftest.py and
`from treadle_conformance.suite import test_scenario` in a test module. The target is the
session fixture `conformance_target`: by default the one `--url`, `--server-cmd` or
`$CONFORMANCE_URL` names (else treadle); a project overrides the fixture to start its own
server (see `fixtures`), and then the plugin starts nothing itself. An unsafe case or a MUST
miss fails its test; a SHOULD or MAY miss passes with a `ConformanceWarning`, so pytest's exit
status is non-zero exactly when a case is unsafe or a MUST scenario fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from treadle_conformance import proxies, proxy_origin, report
from treadle_conformance.backend import running
from treadle_conformance.blackbox import Missing
from treadle_conformance.fixtures import (
    EXIT_NO_TARGET,
    EXIT_TARGET_DIED,
    TARGET,
    settings,
    target_at,
    target_started,
)
from treadle_conformance.model import Scenario
from treadle_conformance.runner import Result
from treadle_conformance.target import (
    DEFAULT_HOST,
    PROXY_SENTINEL,
    Target,
    TargetError,
    from_url,
    started,
    treadle_command,
)

__all__ = ["EXIT_NO_TARGET", "EXIT_TARGET_DIED", "target_at", "target_started"]

RESULTS = pytest.StashKey[list[Result]]()
STACK = pytest.StashKey[contextlib.ExitStack]()
FATAL = pytest.StashKey[tuple[int, str]]()


class ConformanceWarning(UserWarning):
    """A SHOULD (or MAY) scenario the server does not meet."""


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("conformance", "HTTP/1.1 conformance target and reports")
    group.addoption(
        "--url",
        help="test a running server: http://HOST:PORT or https://HOST:PORT "
        "(default: $CONFORMANCE_URL, else start treadle)",
    )
    group.addoption(
        "--server-cmd",
        help="start this command (its program is looked up on PATH); {port} is replaced by a "
        "free port, or the command prints 'listening on http://HOST:PORT'",
    )
    group.addoption(
        "--proxy",
        help="proxy mode: a reverse proxy at this http:// URL forwards to the harness's "
        "recording backend (--backend-port); or 'nginx' / 'haproxy' to start one here",
    )
    group.addoption(
        "--origin-cmd",
        help="proxy + origin mode, with --proxy nginx|haproxy: start this server as --server-cmd "
        "does and the proxy in front of it, with no recording backend; 'treadle' is treadle "
        "hosting the reflection app",
    )
    group.addoption(
        "--backend-port",
        type=int,
        default=0,
        help="proxy mode: the port of the recording backend the proxy forwards to "
        "(default: a free one, printed at the start)",
    )
    group.addoption("--insecure", action="store_true", help="https: do not verify the certificate")
    group.addoption("--ca-file", help="https: trust the CA certificates in this PEM file")
    group.addoption(
        "--host",
        dest="conformance_host",
        default=DEFAULT_HOST,
        help="the Host field value the scenarios and the sentinel send (default %(default)s)",
    )
    group.addoption(
        "--path",
        dest="conformance_path",
        default="/",
        help="the path of the sentinel request on a server without the reflection app",
    )
    timeout_names = ["--conformance-timeout"]
    if not pluginmanager.hasplugin("timeout"):
        timeout_names.insert(0, "--timeout")
    group.addoption(
        *timeout_names,
        dest="conformance_timeout",
        type=float,
        default=3.0,
        help="seconds to wait for a response (default %(default)s)",
    )
    group.addoption(
        "--close-wait",
        type=float,
        default=2.0,
        help="seconds to wait for a close the scenario requires (default %(default)s)",
    )
    group.addoption(
        "--idle-bound",
        type=float,
        default=10.0,
        help="the server's idle and head timeout: the timeout scenarios wait this plus a 2 s "
        "grace (default %(default)s)",
    )
    group.addoption(
        "--examples",
        type=int,
        default=60,
        help="how many random requests the hypothesis scenario sends",
    )
    group.addoption(
        "--category",
        action="append",
        default=[],
        help="run only these categories or groups (framing, chunked, smuggling, ...); "
        "repeat or comma-separate",
    )
    group.addoption(
        "--level",
        action="append",
        default=[],
        help="run only scenarios at these levels (MUST, SHOULD, MAY)",
    )
    group.addoption(
        "--section",
        action="append",
        default=[],
        help="run only scenarios citing this section or a subsection, as RFC/SECTION "
        "(9112/7.1, 9110/5.5)",
    )
    group.addoption("--json", dest="conformance_json", help="write the results as JSON here")
    group.addoption(
        "--report",
        dest="conformance_report",
        help="write a Markdown (.md) or HTML (.html) report here",
    )


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        raise pytest.UsageError(
            "treadle-conformance refuses parallel runs (-n/--dist): the concurrency and timeout "
            "scenarios need the server to themselves, and the reports would be split across "
            "workers. Run without -n."
        )
    problem = origin_usage(config)
    if problem:
        raise pytest.UsageError(f"treadle-conformance: {problem}")


def origin_usage(config: pytest.Config) -> str | None:
    """Why --origin-cmd cannot go with the other options given, or None."""
    if not config.getoption("origin_cmd", None):
        return None
    proxy = config.getoption("proxy")
    if not proxy:
        return "--origin-cmd needs --proxy nginx or --proxy haproxy, the proxy to start in front"
    if proxy not in proxies.NAMES:
        return (
            f"--origin-cmd needs --proxy nginx or --proxy haproxy, not {proxy} (for a proxy and "
            "an origin already running, give the proxy's --url)"
        )
    clashes = [
        option
        for option, dest in (
            ("--backend-port", "backend_port"),
            ("--url", "url"),
            ("--server-cmd", "server_cmd"),
        )
        if config.getoption(dest)
    ]
    if clashes:
        return f"--origin-cmd (the server behind the proxy) does not go with {clashes[0]}"
    return None


def _values(config: pytest.Config, name: str) -> list[str]:
    return [v.strip() for raw in config.getoption(name) for v in raw.split(",") if v.strip()]


def selected(
    scenario: Scenario, categories: list[str], levels: list[str], sections: list[str]
) -> bool:
    if categories and not scenario.groups & {c.lower() for c in categories}:
        return False
    if levels and scenario.level.value not in {lv.upper() for lv in levels}:
        return False
    if sections:
        wanted = [tuple(s.replace("§", "").split("/", 1)) for s in sections]
        cites = scenario.citations
        return any(
            rfc == want[0] and (num == want[-1] or num.startswith(want[-1] + "."))
            for rfc, num in cites
            for want in wanted
        )
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    categories = _values(config, "category")
    levels = _values(config, "level")
    sections = _values(config, "section")
    # The upstream scenarios need the harness's own backend behind a proxy (not an origin).
    backend = bool(config.getoption("proxy")) and not config.getoption("origin_cmd", None)
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        scenario = callspec.params.get("scenario") if callspec else None
        if isinstance(scenario, Scenario) and (
            (scenario.needs_backend and not backend)
            or not selected(scenario, categories, levels, sections)
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _open_proxy(config: pytest.Config, stack: contextlib.ExitStack, proxy: str) -> Target:
    """Proxy mode: the recording backend, then the proxy (a running one's URL, or nginx or
    haproxy started here, configured to forward to the backend)."""
    backend = stack.enter_context(running(config.getoption("backend_port") or 0))
    proxy_settings = replace(settings(config), path=PROXY_SENTINEL)
    if proxy in proxies.NAMES:
        try:
            command, port = stack.enter_context(proxies.serving(proxies.NAMES[proxy], backend.port))
        except Missing as exc:
            raise TargetError(str(exc)) from None
        target = stack.enter_context(
            started(command, name=proxy, settings=proxy_settings, port=port)
        )
    else:
        target = from_url(proxy, proxy_settings)
    target.backend = backend
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"recording backend on 127.0.0.1:{backend.port}; proxy {target.url}")
    target.preflight()
    return target


def _open_proxy_origin(config: pytest.Config, stack: contextlib.ExitStack, proxy: str) -> Target:
    """Proxy + origin mode: the origin, then nginx or haproxy in front of it; no backend."""
    try:
        target = stack.enter_context(
            proxy_origin.fronted(
                proxies.NAMES[proxy], config.getoption("origin_cmd"), settings(config)
            )
        )
    except Missing as exc:
        raise TargetError(str(exc)) from None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and target.origin is not None:
        reporter.write_line(f"origin on {target.origin.url}; {proxy} in front on {target.url}")
    target.preflight()
    return target


def _open_target(config: pytest.Config, stack: contextlib.ExitStack) -> Target:
    proxy = config.getoption("proxy")
    if proxy and config.getoption("origin_cmd"):
        return _open_proxy_origin(config, stack, proxy)
    if proxy:
        return _open_proxy(config, stack, proxy)
    url = config.getoption("--url") or os.environ.get("CONFORMANCE_URL")
    command = config.getoption("--server-cmd")
    if url:
        target = from_url(url, settings(config))
    else:
        if not command and importlib.util.find_spec("treadle") is None:
            raise TargetError(
                "no target: give --url URL or --server-cmd CMD (treadle, the default target, "
                "is not installed)"
            )
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


def _overridden(item: pytest.Item) -> bool:
    """The project defines its own `conformance_target` for this item (see `fixtures`)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}).get("conformance_target", ())
    return bool(defs) and getattr(defs[-1].func, "__module__", __name__) != __name__


def _wants_target(items: list[pytest.Item]) -> bool:
    return any(
        "conformance_target" in getattr(item, "fixturenames", ()) and not _overridden(item)
        for item in items
    )


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
    unreachable = "could not talk to the server" in result.observed
    # Behind a proxy, a dead origin shows as the proxy's 502s, not as an unreachable server.
    if not unreachable and (target.origin is None or result.status in ("pass", "skip")):
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
    if config.option.xmlpath:
        terminalreporter.write_line(f"JUnit XML: {config.option.xmlpath}")
