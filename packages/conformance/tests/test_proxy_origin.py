"""Proxy + origin mode: a real proxy (nginx, HAProxy) in front of a real server (treadle).

The proxies come from Debian and are started here in the foreground, in front of an origin
started like `--server-cmd`; a missing proxy program, or treadle not installed, skips with the
reason. There is no recording backend: the reflection app, reached through the proxy, tells
what arrived, and X-Forwarded-For in what it saw proves the requests went through the proxy.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle_conformance import peers, proxies, proxy_origin
from treadle_conformance.blackbox import Missing, program
from treadle_conformance.plugin import EXIT_TARGET_DIED
from treadle_conformance.runner import run
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import Settings, Target

QUICK = Settings(timeout=2.0, close_wait=0.5)
PY = shlex.quote(sys.executable)
DYING = shlex.quote(str(Path(__file__).with_name("_dying.py")))


def need(proxy: str) -> None:
    """Skip, saying why, without the proxy's program or without treadle."""
    try:
        program(proxy_origin.short_name(proxy))
    except Missing as exc:
        pytest.skip(str(exc))
    if importlib.util.find_spec("treadle") is None:
        pytest.skip("treadle is not installed")


@pytest.fixture
def nginx_treadle() -> Iterator[Target]:
    need("nginx-proxy")
    with proxy_origin.fronted("nginx-proxy", proxy_origin.TREADLE, QUICK) as target:
        target.preflight()
        yield target


def seen(target: Target) -> dict[str, Any]:
    """What the reflection app saw of a plain GET sent to the target."""
    with target.connect() as wire:
        wire.send(b"GET /seen HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        response = wire.read_response()
    data = response.json() if response is not None else None
    assert data is not None, response
    return data


@pytest.mark.timeout(120)
def test_nginx_in_front_of_treadle_runs_in_reflection_mode_through_the_proxy(
    nginx_treadle: Target,
) -> None:
    target = nginx_treadle
    assert target.name == "nginx+treadle" and target.backend is None
    assert target.reflect and target.interface == "wsgi"
    assert target.origin is not None and target.origin.port != target.port
    # nginx added X-Forwarded-For and passed Host on: a bypassed proxy would add nothing.
    data = seen(target)
    assert ["x-forwarded-for", "127.0.0.1"] in data["headers"], data["headers"]
    assert ["host", "example.test"] in data["headers"], data["headers"]
    results = {i: run(by_id()[i], target) for i in ("RL-ORIGIN", "SMUG-CL-TE", "PIPE-TWO")}
    results["CHUNK-BASIC"] = run(by_id()["CHUNK-BASIC"], target, "bytes")
    assert all(r.strict != "skip" and r.safety != "n/a" for r in results.values())
    for case in ("RL-ORIGIN", "PIPE-TWO", "CHUNK-BASIC"):
        assert results[case].status == "pass", results[case].reason
    assert not results["SMUG-CL-TE"].unsafe, results["SMUG-CL-TE"].reason
    assert target.alive() is None


@pytest.mark.timeout(120)
def test_a_dead_origin_is_noticed_through_the_proxy(nginx_treadle: Target) -> None:
    origin = nginx_treadle.origin
    assert origin is not None
    origin.stop()
    why = nginx_treadle.alive()
    assert why is not None and "the origin behind the proxy is gone" in why, why


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run(
            [sys.executable, "-m", "treadle_conformance", *args, "--report-dir", tmp],
            capture_output=True,
            text=True,
            timeout=150,
        )


@pytest.mark.timeout(180)
def test_the_cli_starts_haproxy_in_front_of_an_origin_command() -> None:
    need("haproxy")
    origin = f"{PY} -m treadle --threads 2 --bind 127.0.0.1:{{port}} {peers.APP}"
    done = cli(
        *("--proxy", "haproxy", "--origin-cmd", origin),
        *("-k", "RL-ORIGIN and not bytes and not random", "-p", "no:warnings"),
    )
    assert "haproxy in front on http://127.0.0.1:" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.timeout(180)
def test_an_origin_that_dies_behind_the_proxy_stops_the_run() -> None:
    need("nginx-proxy")
    done = cli("--proxy", "nginx", "--origin-cmd", f"{PY} {DYING} {{port}} 12", "-k", "HDR-")
    assert done.returncode == EXIT_TARGET_DIED, done.stdout + done.stderr
    assert "the origin behind the proxy is gone" in done.stderr


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--origin-cmd", "treadle"], "needs --proxy nginx or --proxy haproxy"),
        (["--proxy", "http://127.0.0.1:9", "--origin-cmd", "treadle"], "give the proxy's --url"),
        (["--proxy", "nginx", "--origin-cmd", "treadle", "--backend-port", "9"], "--backend-port"),
        (["--proxy", "nginx", "--origin-cmd", "treadle", "--server-cmd", "x"], "--server-cmd"),
    ],
)
def test_origin_cmd_in_a_bad_combination_is_a_usage_error(args: list[str], why: str) -> None:
    done = cli(*args)
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and "--origin-cmd" in line and why in line, done.stderr


def test_the_peers_run_has_both_proxies_in_front_of_treadle() -> None:
    assert {"nginx+treadle", "haproxy+treadle"} <= set(peers.DEFAULT)
    assert set(peers.FRONTED.values()) == set(proxies.PROXIES)
    assert proxy_origin.origin_command("treadle") == (proxy_origin.TREADLE_ORIGIN, "treadle")
    assert peers.SERVERS["treadle"][2] == proxy_origin.TREADLE_ORIGIN
