from __future__ import annotations

import shlex
import sys

import pytest

from tests._canned import BASELINE, canned
from treadle_conformance.runner import run
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import Settings, Target, TargetError, free_port, from_url, started

PY = shlex.quote(sys.executable)
REFLECT_ON_PORT_0 = (
    "from wsgiref.simple_server import make_server;"
    "from treadle_conformance.reflect import app;"
    "s = make_server('127.0.0.1', 0, app);"
    "print('listening on http://127.0.0.1:%d' % s.server_port, flush=True);"
    "s.serve_forever()"
)


def test_port_substitution_and_reflection_probe() -> None:
    with started(f"{PY} -m http.server --bind 127.0.0.1 {{port}}") as target:
        target.preflight()
        assert target.port > 0
        assert target.reflect is False
        proc = target.process
    assert proc is not None and proc.poll() is not None


def test_startup_line_gives_the_port_and_the_app_is_found() -> None:
    with started(f"{PY} -c {shlex.quote(REFLECT_ON_PORT_0)}") as target:
        target.preflight()
        assert target.reflect is True
        again = from_url(target.url)
        again.preflight()
        assert again.reflect is True
        proc = target.process
    assert proc is not None and proc.poll() is not None


def test_a_server_that_exits_is_reported() -> None:
    with pytest.raises(TargetError), started(f"{PY} -c 'raise SystemExit(3)'"):
        pass


def test_only_http_and_https_urls() -> None:
    with pytest.raises(TargetError):
        from_url("ftp://127.0.0.1:1")


def test_a_dead_port_fails_the_preflight() -> None:
    with pytest.raises(TargetError, match="does not answer"):
        from_url(f"http://127.0.0.1:{free_port()}").preflight()


def test_host_option_rewrites_the_first_head_and_the_sentinel_only() -> None:
    target = Target("127.0.0.1", 1, settings=Settings(host_header="vhost.test", path="/index"))
    body = b"Host: example.test\r\n"
    data = b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 20\r\n\r\n" + body
    assert target.host_for(data) == data.replace(b"example.test", b"vhost.test", 1)
    assert target.sentinel().startswith(b"GET /index HTTP/1.1\r\nHost: vhost.test\r\n")
    target.reflect = True
    assert target.sentinel().startswith(b"GET /__sentinel HTTP/1.1\r\n")


def test_the_timeout_option_is_how_long_each_response_is_awaited() -> None:
    quick = Settings(timeout=0.5, close_wait=0.2)
    with canned(b"", close=False, after=None) as (host, port):
        target = Target(host, port, reflect=True, baseline=BASELINE, settings=quick)
        result = run(by_id()["RL-ORIGIN"], target)
    assert "no response 1 within 0.5s" in result.observed
    assert result.seconds < 2.5
