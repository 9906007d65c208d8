"""Deadlines: idle keep-alive, a whole head, a body stall, slowloris (RFC 9112 §9.5)."""

from __future__ import annotations

import time
from collections.abc import Callable

from treadle.limits import Limits

from ._wire import Client
from .conftest import ServerFactory, hello_app

Connect = Callable[..., Client]
SHORT = Limits(keep_alive_timeout=0.3, timeout=0.5)


def test_idle_keep_alive_connection_is_closed(make_server: ServerFactory, connect: Connect) -> None:
    with make_server(hello_app, limits=SHORT) as srv:
        client = connect(srv, timeout=5.0)
        assert client.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status == 200
        started = time.monotonic()
        assert client.at_eof()  # closed quietly, no 408 for an idle connection
        assert time.monotonic() - started < 4.0
        assert srv.stats()["open_connections"] == 0


def test_silent_new_connection_is_closed(make_server: ServerFactory, connect: Connect) -> None:
    with make_server(hello_app, limits=SHORT) as srv:
        assert connect(srv, timeout=5.0).at_eof()


def test_rfc9110_15_5_9_half_a_head_gets_408(make_server: ServerFactory, connect: Connect) -> None:
    with make_server(hello_app, limits=SHORT) as srv:
        client = connect(srv, timeout=5.0)
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        response = client.read_response()
        assert response.status == 408 and client.at_eof()


def test_body_stall_gets_408(make_server: ServerFactory, connect: Connect) -> None:
    with make_server(hello_app, limits=SHORT) as srv:
        client = connect(srv, timeout=5.0)
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        assert client.read_response().status == 408 and client.at_eof()


def test_slowloris_cannot_outlive_the_head_deadline(
    make_server: ServerFactory, connect: Connect
) -> None:
    """One byte every 0.1 s keeps the connection active, but the deadline is for the whole head."""
    with make_server(hello_app, limits=SHORT) as srv:
        client = connect(srv, timeout=5.0)
        started = time.monotonic()
        refused = False
        for byte in b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + b"a" * 100:
            try:
                client.send(bytes([byte]))
            except OSError:
                refused = True
                break
            time.sleep(0.1)  # the client is the slow one here
            if time.monotonic() - started > 3.0:
                break
        assert refused or client.read_response().status == 408
        assert time.monotonic() - started < 3.0
