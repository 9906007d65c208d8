"""Binding, the startup line, and a stop() that always returns in bounded time."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from treadle.server import HttpServer, parse_bind_addr
from treadle.testing import running, serving
from treadle.wsgi import Environ, StartResponse

from ._wire import Client
from .conftest import BlockingApp, ServerFactory, hello_app

Connect = Callable[..., Client]
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        (("127.0.0.1", 80), (socket.AF_INET, ("127.0.0.1", 80))),
        ("127.0.0.1:8080", (socket.AF_INET, ("127.0.0.1", 8080))),
        ("[::1]:0", (socket.AF_INET6, ("::1", 0))),
        (":9000", (socket.AF_INET, ("0.0.0.0", 9000))),
        ("/run/app.sock", (socket.AF_UNIX, "/run/app.sock")),
        ("unix:app.sock", (socket.AF_UNIX, "app.sock")),
    ],
)
def test_parse_bind_addr(addr: str | tuple[str, int], expected: tuple[int, object]) -> None:
    assert parse_bind_addr(addr) == expected


@pytest.mark.parametrize("addr", ["localhost", "host:port", "[::1]", "h:70000", "[::1]x"])
def test_parse_bind_addr_refuses_nonsense(addr: str) -> None:
    with pytest.raises(ValueError):
        parse_bind_addr(addr)


def test_startup_line_names_the_real_port(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="treadle.error")
    with running(hello_app) as srv:
        port = srv.bind_addr[1]
    assert port != 0
    assert f"listening on http://127.0.0.1:{port}" in caplog.text


def test_serving_yields_a_url() -> None:
    import httpx

    with serving(hello_app) as url:
        assert httpx.get(url + "/u").text == "hello /u "


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "t.sock")
    server = HttpServer(path, hello_app)
    server.prepare()
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(path)
        client = Client(sock)
        assert client.request(GET).body == b"hello / "
        client.close()
    finally:
        server.stop(2)
        thread.join(3)
    assert not Path(path).exists()


def test_ipv6_loopback(connect: Connect) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        ctx = running(hello_app, host="::1")
        srv = ctx.__enter__()
    except OSError:
        pytest.skip("::1 is not available here")
    try:
        sock = socket.create_connection(("::1", srv.bind_addr[1]), timeout=5)
        client = Client(sock)
        assert client.request(GET).status == 200
        client.close()
    finally:
        ctx.__exit__(None, None, None)


def test_two_binds_serve_the_same_app(connect: Connect) -> None:
    server = HttpServer([("127.0.0.1", 0), "127.0.0.1:0"], hello_app)
    server.prepare()
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        for sock in server.sockets:
            client = Client(socket.create_connection(sock.getsockname(), timeout=5))
            assert client.request(GET).status == 200
            client.close()
    finally:
        server.stop(2)
        thread.join(3)


def test_stop_is_bounded_with_a_stuck_app(connect: Connect) -> None:
    stuck = BlockingApp(hold=30)
    entered, release = stuck.entered, stuck.release
    ctx = running(stuck, stop_timeout=0.5)
    srv = ctx.__enter__()
    try:
        client = connect(srv)
        client.send(GET)
        assert entered.wait(5)
        started = time.monotonic()
        srv.stop(0.5)
        assert time.monotonic() - started < 1.5
        assert client.at_eof()  # the stuck request's connection was closed
    finally:
        release.set()
        ctx.__exit__(None, None, None)


def test_stop_lets_in_flight_requests_finish(connect: Connect) -> None:
    entered = threading.Event()

    def slow(environ: Environ, start_response: StartResponse) -> list[bytes]:
        entered.set()
        time.sleep(0.3)  # the app is slow on purpose
        start_response("200 OK", [])
        return [b"finished"]

    with running(slow) as srv:
        client = connect(srv)
        idle = connect(srv)
        assert idle.request(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").body == b"finished"
        entered.clear()
        client.send(GET)
        assert entered.wait(5)
        address = srv.bind_addr[:2]
        srv.stop(5)
        response = client.read_response()
        assert response.body == b"finished" and response.header("Connection") == "close"
        assert idle.at_eof()  # the idle keep-alive connection was closed at once
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=1)  # no longer accepting


def test_bind_failure_raises_and_releases(make_server: ServerFactory) -> None:
    with make_server(hello_app) as srv:
        taken = srv.bind_addr[1]
        other = HttpServer([("127.0.0.1", 0), ("127.0.0.1", taken)], hello_app)
        with pytest.raises(OSError):
            other.prepare()
        assert other.sockets == []
