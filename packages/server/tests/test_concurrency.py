"""No starvation, bounded queue (503), a pool that grows and shrinks.

Liveness is checked with client socket timeouts far below the server's own timeouts: a server
that pinned a thread per connection would answer only after its 30 s timeouts, and these
tests would fail on their 3 s socket timeout first.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import pytest

from treadle.limits import Limits
from treadle.server import HttpServer
from treadle.wsgi import Environ, StartResponse

from ._wire import Client
from .conftest import BlockingApp, ServerFactory, hello_app

Connect = Callable[..., Client]
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
PATIENT = Limits(keep_alive_timeout=30.0, timeout=30.0)

HOLDERS: dict[str, Callable[[Client], None]] = {
    "idle after a request": lambda c: c.request(GET) and None,
    "connected, sent nothing": lambda c: None,
    "sent half a head": lambda c: c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "),
    "sent half a body": lambda c: c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"
    ),
}


@pytest.mark.parametrize("hold", list(HOLDERS.values()), ids=list(HOLDERS))
def test_ninth_client_served_while_eight_hold_connections(
    make_server: ServerFactory, connect: Connect, hold: Callable[[Client], None]
) -> None:
    with make_server(hello_app, threads=5, limits=PATIENT) as srv:
        holders = [connect(srv, timeout=3.0) for _ in range(8)]
        for client in holders:
            hold(client)
        ninth = connect(srv, timeout=3.0)
        assert ninth.request(b"GET /ninth HTTP/1.1\r\nHost: t\r\n\r\n").body == b"hello /ninth "
        # The eight hold no thread: once the last responses have left, every worker is free
        # while the eight still hold their connections.
        deadline = time.monotonic() + 2
        while srv.stats()["busy_threads"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.stats()["busy_threads"] == 0


def test_sixty_idle_keep_alive_clients_on_five_threads(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, threads=5, limits=PATIENT) as srv:
        clients = [connect(srv, timeout=3.0) for _ in range(60)]
        for round_ in range(2):
            for client in clients:
                assert client.request(GET).status == 200, round_
        # a worker parks its connection just after the response leaves: allow it a moment
        deadline = time.monotonic() + 5
        while srv.stats()["parked_connections"] < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv.stats()["parked_connections"] == 60


def test_full_queue_answers_503_with_retry_after(
    make_server: ServerFactory, connect: Connect
) -> None:
    blocking_app = BlockingApp()
    entered, release = blocking_app.entered, blocking_app.release

    with make_server(blocking_app, threads=1, queue_size=1) as srv:
        first, second, third = (connect(srv, timeout=5.0) for _ in range(3))
        first.send(GET)
        assert entered.wait(5)
        second.send(GET)  # waits in the queue
        while srv.stats()["queue_depth"] < 1:
            time.sleep(0.01)
        shed = third.request(GET)
        assert shed.status == 503 and shed.header("Retry-After") == "1"
        assert third.at_eof()
        release.set()
        assert first.read_response().body == b"done"
        assert second.read_response().body == b"done"
        assert srv.stats()["shed_503"] == 1


def test_queue_logger_notes_waiting_work(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.queue")
    blocking_app = BlockingApp()
    entered, release = blocking_app.entered, blocking_app.release

    with make_server(blocking_app, threads=1) as srv:
        first, second, third = (connect(srv) for _ in range(3))
        first.send(GET)
        assert entered.wait(5)
        second.send(GET)
        third.send(GET)
        while srv.stats()["queue_depth"] < 2:
            time.sleep(0.01)
        release.set()
        for client in (first, second, third):
            assert client.read_response().status == 200
    notes = [r.getMessage() for r in caplog.records if r.name == "treadle.queue"]
    assert notes and "2 requests waiting for a thread (1 of 1 busy, max 1)" in notes[0]


def test_pool_grows_toward_max_and_shrinks_back(
    make_server: ServerFactory, connect: Connect
) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        barrier.wait()  # passes only if three requests run at once
        start_response("200 OK", [])
        return [b"together"]

    with make_server(app, threads=1, max_threads=3, thread_idle_timeout=0.2) as srv:
        clients = [connect(srv) for _ in range(3)]
        for client in clients:
            client.send(GET)
        assert [c.read_response().body for c in clients] == [b"together"] * 3
        assert srv.stats()["threads"] == 3
        deadline = time.monotonic() + 5
        while srv.stats()["threads"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.stats()["threads"] == 1


def test_worker_survives_a_client_that_vanishes_mid_response(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    def big(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return [b"x" * 65536] * 64

    with make_server(big, threads=1) as srv:
        client = connect(srv)
        client.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        client.send(GET)
        client.file.read(10)
        client.close()  # reset, mid-body
        assert len(connect(srv).request(GET).body) == 64 * 65536
    # a client going away is not an application error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_stats_counts(server: HttpServer, connect: Connect) -> None:
    client = connect(server)
    for _ in range(4):
        client.request(GET)
    stats = server.stats()
    # Counted after its response is sent, so the 4th may not be counted yet; the 3rd was,
    # before its connection was parked and the 4th dispatched.
    assert stats["requests_served"] in (3, 4) and stats["accepted_connections"] == 1
    assert stats["threads"] == 5 and stats["open_connections"] == 1
