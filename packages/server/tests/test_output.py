"""The output buffer (output.py): a client that does not read holds no worker.

Each client here has a 4 KiB receive buffer and reads nothing at first, so the server's sends
block after a few responses; the rest of the response at hand waits in the connection's output
buffer, parked in the poller, and the worker goes on to other clients.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable

import pytest

from treadle.limits import Limits
from treadle.server import HttpServer

from ._fill import SIZE, fillers, filling, get, pattern, pattern_app, read_in_order
from ._wire import Client
from .conftest import ServerFactory, wait_until

Connect = Callable[..., Client]
HELLO = get("hi", 16)
HI = pattern("hi", 16)


def non_reader(
    connect: Connect, srv: HttpServer, *requests: bytes, size: int = SIZE, answered: bool = True
) -> Client:
    """A client with a small receive buffer that pipelines ``filling(*requests)`` in one write
    and reads nothing (yet); returned once the server has begun to answer, if ``answered``."""
    client = connect(srv, timeout=10.0, rcvbuf=4096)
    client.send(filling(*requests, size=size))
    if answered:
        assert select.select([client.sock], [], [], 5.0)[0]
    return client


def parked_sending(srv: HttpServer, count: int = 1) -> Callable[[], bool]:
    """No worker is busy (none waits on a client), and ``count`` connections wait in the
    poller with buffered output."""

    def check() -> bool:
        stats = srv.stats()
        return (
            stats["busy_threads"] == 0
            and stats["stalled_threads"] == 0
            and stats["sending_connections"] == count
        )

    return check


def test_clients_that_pipeline_and_never_read_do_not_starve_a_newcomer(
    make_server: ServerFactory, connect: Connect
) -> None:
    """Six clients pipeline more than the socket buffers hold and read nothing, against 2
    threads (the pool may grow to 4 for stalled workers): every one of them is answered as far
    as it reads, a fresh client is answered at once, and the six are closed at the send
    deadline, not before."""
    timeout = 4.0
    with make_server(pattern_app, threads=2, limits=Limits(timeout=timeout)) as srv:
        sent = time.monotonic()  # before any hog is parked: none may be closed before + timeout
        hogs = [non_reader(connect, srv, size=16_384, answered=False) for _ in range(6)]
        poller = select.poll()
        for hog in hogs:
            poller.register(hog.sock, select.POLLIN)
        answered: set[int] = set()
        while len(answered) < len(hogs):  # every hog is being answered, none is queued
            assert time.monotonic() - sent < timeout / 2, f"{len(answered)} of 6 answered"
            answered.update(fd for fd, _ in poller.poll(100))
        started = time.monotonic()
        fresh = connect(srv, timeout=timeout)
        assert fresh.request(HELLO).body == HI
        assert time.monotonic() - started < 1.0  # not the hogs' send deadline
        fresh.close()
        wait_until(parked_sending(srv, 6))
        stats = srv.stats()
        assert stats["threads"] == 2
        assert 0 < stats["send_buffer_bytes"] <= 6 * 256 * 1024
        wait_until(lambda: srv.stats()["open_connections"] == 0, timeout + 3.0)
        assert time.monotonic() - sent >= timeout  # closed for the deadline, not before


def test_a_buffered_response_is_drained_in_order_to_a_slow_reader(
    make_server: ServerFactory, connect: Connect
) -> None:
    """Three pipelined responses of 200 KB each: the poller sends what the worker left, then the
    next request is served, in order, every byte; meanwhile the one worker serves others."""
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(connect, srv, get("one"), get("two"), get("three", pieces=7))
        wait_until(parked_sending(srv))
        assert srv.stats()["send_buffer_bytes"] > 0
        assert connect(srv).request(HELLO).body == HI  # the one worker is free
        read_in_order(slow, [*fillers(), "one", "two", "three"])
        assert slow.request(get("four", 10)).body == pattern("four", 10)
        wait_until(lambda: srv.stats()["sending_connections"] == 0)


def test_a_buffered_chunked_response_arrives_whole(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(connect, srv, get("chnk", pieces=50))
        wait_until(parked_sending(srv))
        read_in_order(slow, fillers())
        response = slow.read_response()
        assert response.header("Transfer-Encoding") == "chunked"
        assert response.body == pattern("chnk", SIZE)


def test_a_client_that_reads_nothing_is_closed_at_the_send_deadline_holding_no_worker(
    make_server: ServerFactory, connect: Connect
) -> None:
    timeout = 1.0
    with make_server(pattern_app, threads=1, limits=Limits(timeout=timeout)) as srv:
        non_reader(connect, srv, get("one"), get("two"))
        wait_until(parked_sending(srv))
        parked = time.monotonic()
        answered = 0
        while srv.stats()["open_connections"]:
            assert time.monotonic() - parked < timeout + 2.0, srv.stats()
            fresh = connect(srv)
            assert fresh.request(HELLO).body == HI
            fresh.close()
            answered += 1
            stats = srv.stats()
            assert stats["stalled_threads"] == 0 and stats["threads"] == 1
        assert time.monotonic() - parked > timeout - 0.3
        assert answered > 1


def test_connection_close_waits_for_the_buffered_response(
    make_server: ServerFactory, connect: Connect
) -> None:
    """The write side is shut only once every byte is out: the client reads them all, then EOF."""
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(connect, srv, get("last", extra=b"Connection: close\r\n"))
        wait_until(parked_sending(srv))
        read_in_order(slow, fillers())
        response = slow.read_response()
        assert response.header("Connection") == "close"
        assert response.body == pattern("last", SIZE)
        assert slow.at_eof()


def test_http_1_0_close_delimited_response_is_drained_before_the_close(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(connect, srv, b"GET /ten?size=%d&pieces=4 HTTP/1.0\r\n\r\n" % SIZE)
        wait_until(parked_sending(srv))
        read_in_order(slow, fillers())
        data = slow.file.read()
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert data.partition(b"\r\n\r\n")[2] == pattern("ten", SIZE)


def test_stop_sends_buffered_output_before_closing(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """The response being sent when the stop begins arrives whole; the next one says
    ``Connection: close``; then the connection closes, before the graceful deadline."""
    caplog.set_level(logging.INFO, logger="treadle.error")
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(connect, srv, get("one"), get("two"))
        wait_until(parked_sending(srv))
        stopper = threading.Thread(target=srv.stop, args=(10.0,))
        stopper.start()
        wait_until(lambda: srv.stopping)
        started = time.monotonic()
        for name in [*fillers(), "one", "two"]:
            response = slow.read_response()
            assert response.body == pattern(name, SIZE)
            if response.header("Connection") == "close":
                break
        assert slow.at_eof()
        stopper.join(10)
        assert time.monotonic() - started < 5.0
    assert any(r.getMessage().startswith("stopped: ") for r in caplog.records)


def test_stop_cuts_a_client_that_does_not_read_at_the_deadline_and_names_it(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.error")
    with make_server(pattern_app, threads=1, stop_timeout=0.5) as srv:
        non_reader(connect, srv, get("one"), get("two"))
        wait_until(parked_sending(srv))
        started = time.monotonic()
    assert time.monotonic() - started < 3.0  # the graceful deadline, not the send deadline
    cut = [r.getMessage() for r in caplog.records if "graceful deadline" in r.getMessage()]
    assert cut and "1 cut" in cut[0] and "GET /f" in cut[0]  # the response being sent


def test_the_connection_limit_never_evicts_a_connection_still_sending(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(pattern_app, threads=1, max_connections=2) as srv:
        slow = non_reader(connect, srv, get("one"))
        wait_until(parked_sending(srv))
        idle = connect(srv)
        assert idle.request(HELLO).body == HI
        wait_until(lambda: srv.stats()["parked_connections"] == 2)
        assert connect(srv).request(HELLO).body == HI
        assert idle.at_eof()  # the idle one made room
        read_in_order(slow, fillers())
        assert slow.read_response().body == pattern("one", SIZE)


def test_100_continue_after_a_buffered_response_arrives_in_order(
    make_server: ServerFactory, connect: Connect
) -> None:
    """The interim response is written once the response before it has left (the socket
    buffers may still be full then: it waits in the output buffer, in state BODY)."""
    with make_server(pattern_app, threads=1) as srv:
        slow = non_reader(
            connect,
            srv,
            b"POST /cont?size=10 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n",
        )
        wait_until(parked_sending(srv))
        read_in_order(slow, fillers())
        assert slow.read_response().status == 100
        slow.send(b"hello")
        assert slow.read_response().body == pattern("cont", 10)


def test_100_continue_the_socket_cannot_take_waits_in_the_poller(
    make_server: ServerFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interim response goes into the output buffer as if the socket were full: the
    connection waits for writability in state BODY, sends it, then reads the body."""
    from treadle import output
    from treadle.connection import HttpConnection
    from treadle.request import CONTINUE

    sendall = HttpConnection.sendall

    def full_for_continue(conn: HttpConnection, data: bytes) -> None:
        if data == CONTINUE and conn.out is None:
            output.send_rest(conn, memoryview(data), len(data))  # the socket took none of it
            return
        sendall(conn, data)

    monkeypatch.setattr(HttpConnection, "sendall", full_for_continue)
    with make_server(pattern_app, threads=1) as srv:
        client = connect(srv)
        client.send(
            b"POST /cont?size=10 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        assert client.read_response().status == 100
        # The body is awaited in the poller: the worker lets go (it may still be on its way
        # out when the 100 arrives, sent by the poller).
        wait_until(lambda: srv.stats()["busy_threads"] == 0)
        client.send(b"hello")
        assert client.read_response().body == pattern("cont", 10)
        assert client.request(get("next", 10)).body == pattern("next", 10)
