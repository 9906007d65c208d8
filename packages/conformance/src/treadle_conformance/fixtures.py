"""What a project's own `conformance_target` fixture uses: start or reach its server as the
target, with the run's options. Kept apart from `plugin` so that a conftest.py can import it
before pytest loads the plugin (importing the plugin first would stop pytest rewriting it).

    from treadle_conformance.fixtures import target_started

    @pytest.fixture(scope="session")
    def conformance_target(pytestconfig):
        with target_started("myserver --port {port}", pytestconfig) as target:
            yield target
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from treadle_conformance.target import Settings, Target, TargetError, from_url, started

# Exit statuses besides pytest's own 0-5, so CI can tell "the server is broken" from "the
# server was not there".
EXIT_NO_TARGET = 6
EXIT_TARGET_DIED = 7

TARGET = pytest.StashKey[Target]()


def settings(config: pytest.Config) -> Settings:
    return Settings(
        host_header=config.getoption("conformance_host"),
        path=config.getoption("conformance_path"),
        timeout=config.getoption("conformance_timeout"),
        close_wait=config.getoption("close_wait"),
        idle_bound=config.getoption("idle_bound"),
        examples=config.getoption("examples"),
        insecure=config.getoption("insecure"),
        ca_file=config.getoption("ca_file"),
    )


def target_at(url: str, config: pytest.Config) -> Target:
    """A running server as the conformance target, pre-flighted, with this run's options
    (`--timeout`, `--host`, ...). For a project's own `conformance_target` fixture."""
    try:
        target = from_url(url, settings(config))
        target.preflight()
    except TargetError as exc:
        pytest.exit(f"treadle-conformance: {exc}", returncode=EXIT_NO_TARGET)
    config.stash[TARGET] = target
    return target


@contextlib.contextmanager
def target_started(command: str, config: pytest.Config, name: str = "") -> Iterator[Target]:
    """Start command (`{port}` becomes a free port, or it prints `listening on http://...`),
    yield it pre-flighted as the conformance target, and end it afterwards. For a project's own
    session-scoped `conformance_target` fixture; a server that does not come up ends the run
    with exit status 6 and one line saying why."""
    with contextlib.ExitStack() as stack:
        try:
            target = stack.enter_context(started(command, name=name, settings=settings(config)))
            target.preflight()
        except TargetError as exc:
            stack.close()
            pytest.exit(f"treadle-conformance: {exc}", returncode=EXIT_NO_TARGET)
        config.stash[TARGET] = target
        yield target
