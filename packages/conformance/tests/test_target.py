from __future__ import annotations

import shlex
import sys

import pytest

from treadle_conformance.target import TargetError, from_url, started

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
        assert target.port > 0
        assert target.reflect is False
        proc = target.process
    assert proc is not None and proc.poll() is not None


def test_startup_line_gives_the_port_and_the_app_is_found() -> None:
    with started(f"{PY} -c {shlex.quote(REFLECT_ON_PORT_0)}") as target:
        assert target.reflect is True
        assert from_url(target.url).reflect is True
        proc = target.process
    assert proc is not None and proc.poll() is not None


def test_a_server_that_exits_is_reported() -> None:
    with pytest.raises(TargetError), started(f"{PY} -c 'raise SystemExit(3)'"):
        pass


def test_only_http_urls() -> None:
    with pytest.raises(TargetError):
        from_url("https://127.0.0.1:1")
