"""The command line, in a subprocess: startup line, SIGTERM drain, SIGINT, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ._proc import TREADLE, spawned
from ._wire import Client

LISTENING = re.compile(r"listening on (http://\S+)")


@contextmanager
def treadle(*args: str, cwd: Path | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with spawned([*TREADLE, "--bind", "127.0.0.1:0", *args], cwd=cwd) as (proc, url):
        yield proc, url


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treadle", *args], capture_output=True, text=True, timeout=30
    )


def test_serves_the_demo_app() -> None:
    with treadle("treadle.demo:app") as (_, url):
        assert httpx.get(url + "/hello").text == "Hello, world!"
        assert httpx.post(url + "/echo", content=b"hi").json()["body"] == "hi"
        lines = httpx.get(url + "/stream?n=3").text.splitlines()
        assert lines == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]


def test_sigterm_drains_in_flight_requests_then_exits_0() -> None:
    with treadle("--stats-path", "/_stats", "treadle.demo:app") as (proc, url):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = Client(socket.create_connection((host, int(port)), timeout=10))
        client.send(b"GET /sleep?ms=700 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while json.loads(httpx.get(url + "/_stats").text)["busy_threads"] < 1:
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGTERM)
        response = client.read_response()
        assert response.status == 200 and response.body == b"slept 700 ms\n"
        assert response.header("Connection") == "close"
        assert proc.wait(10) == 0
        client.close()


def test_sigint_stops_quickly() -> None:
    with treadle("treadle.demo:app") as (proc, url):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = Client(socket.create_connection((host, int(port)), timeout=10))
        client.send(b"GET /sleep?ms=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert httpx.get(url + "/hello").status_code == 200  # the sleeper is in a worker now
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 5
        client.close()


def test_access_log_to_stdout() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "treadle",
            "--bind",
            "127.0.0.1:0",
            "--access-log",
            "-",
            "treadle.demo:app",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        url = next(m[1] for line in proc.stderr if (m := LISTENING.search(line)))
        httpx.get(url + "/hello?x=1", headers={"User-Agent": "probe/1", "Referer": "http://r/"})
        line = proc.stdout.readline()
        assert re.fullmatch(
            r'127\.0\.0\.1 - - \[[^\]]+\] "GET /hello\?x=1 HTTP/1\.1" 200 13 '
            r'"http://r/" "probe/1"\n',
            line,
        ), line
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0", "treadle.demo:app"], "--threads"),
        (["--threads", "many", "treadle.demo:app"], "--threads"),
        (["--bind", "nowhere", "treadle.demo:app"], "--bind"),
        (["--keep-alive", "-1", "treadle.demo:app"], "--keep-alive"),
        (["--threads", "4", "--max-threads", "2", "treadle.demo:app"], "--max-threads"),
        (["no_such_module_x:app"], "cannot import 'no_such_module_x'"),
        (["treadle.demo:nothing"], "has no attribute 'nothing'"),
        (["treadle.demo"], "module 'treadle.demo' has no attribute 'application'"),
        ([":app"], "is not MODULE:APP"),
        (["--graceful-timeout", "nan", "treadle.demo:app"], "--graceful-timeout"),
        (["--timeout", "inf", "treadle.demo:app"], "--timeout"),
        (["--umask", "8", "treadle.demo:app"], "--umask"),
        (["--socket-mode", "1777", "treadle.demo:app"], "--socket-mode"),
        (["--bind", "fd://three", "treadle.demo:app"], "fd://N"),
        (["--chdir", "/nonexistent-treadle-dir", "treadle.demo:app"], "--chdir"),
        ([], "MODULE:APP"),
        (["--log-level", "loud", "treadle.demo:app"], "--log-level"),
        (["--forwarded-allow-ips", "10.0.0.0/8,proxy", "treadle.demo:app"], "'proxy'"),
        (["--proxy-headers", "x-real-ip", "treadle.demo:app"], "--proxy-headers"),
        (["--root-path", "app", "treadle.demo:app"], "must start with '/'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("treadle: error:") and message in lines[0], lines


def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _run("--bind", f"127.0.0.1:{taken.getsockname()[1]}", "treadle.demo:app")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("treadle: error: cannot listen")


def test_factory_and_access_log_file(tmp_path: Path) -> None:
    (tmp_path / "factory_app.py").write_text(
        "def make():\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "        return [b'made']\n"
        "    return app\n"
    )
    log = tmp_path / "access.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "treadle",
            "--bind",
            "127.0.0.1:0",
            "--factory",
            "--access-log",
            str(log),
            "factory_app:make",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        url = next(m[1] for line in proc.stderr if (m := LISTENING.search(line)))
        assert httpx.get(url + "/f").text == "made"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stderr is not None:
            proc.stderr.close()
    assert '"GET /f HTTP/1.1" 200 4' in log.read_text()


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.startswith("treadle ")


SHOW_ENVIRON = (
    "import json\n"
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
    "    keys = ('REMOTE_ADDR', 'wsgi.url_scheme', 'SCRIPT_NAME', 'PATH_INFO')\n"
    "    return [json.dumps({k: environ.get(k) for k in keys}).encode()]\n"
)


def test_proxy_headers_and_root_path(tmp_path: Path) -> None:
    (tmp_path / "show_app.py").write_text(SHOW_ENVIRON)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    options = ("--proxy-headers", "x-forwarded", "--root-path", "/app/")
    with treadle(*options, "show_app:app", cwd=tmp_path) as (_, url):
        seen = httpx.get(url + "/app/page", headers=headers).json()
    assert seen == {
        "REMOTE_ADDR": "203.0.113.7",  # 127.0.0.1 is trusted by default
        "wsgi.url_scheme": "https",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/page",
    }


def test_proxy_headers_are_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "show_app.py").write_text(SHOW_ENVIRON)
    with treadle("show_app:app", cwd=tmp_path) as (_, url):
        seen = httpx.get(url + "/p", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["SCRIPT_NAME"] == ""


CAPTURE_SERVER_ARGUMENTS = """
import json, sys
import treadle.cli as cli

class Captured(Exception):
    pass

def fake_server(*args, **kwargs):
    proxy = kwargs["proxy"]
    print(json.dumps({
        "proxy_protocol": kwargs["proxy_protocol"],
        "networks": [str(n) for n in proxy.networks],
        "headers": proxy.headers,
        "root_path": kwargs["root_path"],
    }))
    raise Captured

cli.HttpServer = fake_server
try:
    cli.main(sys.argv[1:])
except Captured:
    pass
"""


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (
            [],
            {},
            {"proxy_protocol": False, "networks": ["127.0.0.1/32", "::1/128"], "headers": "none"},
        ),
        (
            [
                "--proxy-protocol",
                "--forwarded-allow-ips",
                "10.0.0.0/8",
                "--proxy-headers",
                "forwarded",
            ],
            {},
            {"proxy_protocol": True, "networks": ["10.0.0.0/8"], "headers": "forwarded"},
        ),
        (
            [],
            {"FORWARDED_ALLOW_IPS": "192.0.2.0/24"},  # as gunicorn and uvicorn
            {"proxy_protocol": False, "networks": ["192.0.2.0/24"], "headers": "none"},
        ),
    ],
)
def test_edge_options_reach_the_server(
    args: list[str], env: dict[str, str], expected: dict[str, object]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CAPTURE_SERVER_ARGUMENTS, *args, "treadle.demo:app"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**expected, "root_path": ""}
