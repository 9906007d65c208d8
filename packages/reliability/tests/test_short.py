"""The gating subset: the attacks at a small scale, against treadle only, with real assertions.

Each test starts treadle (``python -m treadle --threads 5``) in a subprocess under the attack's
limits, runs the attack, and asserts on its checks (the same checks ``tox -e reliability`` prints
for every server) and on the figures that matter most for it. ``tox -e reliability-short``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle_reliability.attacks import ATTACKS
from treadle_reliability.harness import PROBE_BOUND, Result, run_attack
from treadle_reliability.servers import SERVERS

pytestmark = pytest.mark.timeout(90)


def attack(name: str, logs: Path, **params: float) -> Result:
    result = run_attack(ATTACKS[name], SERVERS["treadle"], logs, **params)
    print(result.explain())  # shown with -rP, and on failure
    return result


def assert_probe_served(result: Result) -> None:
    probe = result.outcome.probe
    assert probe is not None and probe.total > 0, result.explain()
    assert probe.ok == probe.total, result.explain()
    assert probe.p99 < PROBE_BOUND, result.explain()


def test_slowloris_200_connections_do_not_starve_the_probe(tmp_path: Path) -> None:
    result = attack("slowloris", tmp_path, connections=200, seconds=3.0)
    assert_probe_served(result)
    assert result.passed, result.explain()


def test_clients_that_never_read_do_not_hold_the_workers(tmp_path: Path) -> None:
    """issue 9, defect 6: six never-readers on five threads; a seventh client is served."""
    result = attack("never-read", tmp_path, seconds=3.0)
    assert_probe_served(result)
    assert result.passed, result.explain()


def test_steady_slow_reader_gets_every_byte(tmp_path: Path) -> None:
    """issue 9, defect 5: 50 KiB/s past the 10 s send-stall timeout."""
    result = attack("steady-reader", tmp_path, slow_for=12.0)
    assert result.outcome.lost == 0, result.explain()
    assert result.passed, result.explain()


def test_fd_exhaustion_does_not_spin_and_open_connections_are_served(tmp_path: Path) -> None:
    """issue 9, defect 3: ``ulimit -n 64`` and 100 idle connections."""
    result = attack("fd-exhaustion", tmp_path, seconds=3.0)
    assert_probe_served(result)
    assert result.passed, result.explain()


def test_server_survives_a_body_spool_it_cannot_write(tmp_path: Path) -> None:
    """issue 9, defect 1: ``ulimit -f 1024`` and 2 MiB uploads."""
    result = attack("spool-failure", tmp_path, uploads=2, seconds=1.0)
    assert result.survived, result.explain()
    assert result.passed, result.explain()


def test_crlf_flood_connection_is_refused_quickly(tmp_path: Path) -> None:
    """issue 9, defect 4: ``\\r\\n`` x 32,768, again and again."""
    result = attack("crlf-flood", tmp_path, seconds=3.0)
    assert result.passed, result.explain()


def test_app_base_exceptions_do_not_kill_workers(tmp_path: Path) -> None:
    """issue 9, defect 2: SystemExit, KeyboardInterrupt and kin from the app, on all 5 threads."""
    result = attack("base-exceptions", tmp_path)
    assert result.outcome.lost == 0, result.explain()
    assert result.passed, result.explain()


def test_sigterm_loses_no_request_that_had_arrived(tmp_path: Path) -> None:
    """issue 9, defect 9: in-flight requests at SIGTERM, and SIGTERM right at start-up."""
    result = attack("sigterm", tmp_path, keep_alive=50, fresh=50, early_tries=2)
    assert result.outcome.sent == 100, result.explain()
    assert result.outcome.lost == 0, result.explain()
    assert result.passed, result.explain()


def test_wire_fuzz_gets_no_5xx_and_leaks_nothing(tmp_path: Path) -> None:
    result = attack("fuzz", tmp_path, count=3000, seconds=5.0)
    assert result.passed, result.explain()
