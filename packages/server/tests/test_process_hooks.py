"""What ``HttpServer`` offers the process managers (the supervisor, gunicorn's arbiter): shared
listening sockets, a heartbeat from the acceptor, stats of every worker, a first request that
is still on its way when a stop begins; and the stats board the workers share."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from treadle.server import (
    HttpServer,
    Stats,
    bind_scheme,
    open_listener,
    parse_bind_addr,
    prometheus_stats,
    total_stats,
)
from treadle.supervised import ENV_VAR, SLOT_SIZE, StatsBoard, Supervised
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse, WSGIApp

from ._wire import Client
from .conftest import hello_app

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def named(name: bytes) -> WSGIApp:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name]

    return app


def test_a_scheme_may_precede_an_inherited_socket() -> None:
    assert parse_bind_addr("https://fd://4") == (socket.AF_UNSPEC, 4)
    assert bind_scheme("https://fd://4") == "https"
    assert parse_bind_addr("http://fd://3") == (socket.AF_UNSPEC, 3)
    with pytest.raises(ValueError):
        parse_bind_addr("https://fd://x")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = open_listener(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_a_stop_with_shared_listeners_leaves_the_backlog_to_the_others(
    listener: socket.socket,
) -> None:
    """What a reload relies on: the old worker's stop takes nothing from the common queue."""
    old = HttpServer(f"fd://{os.dup(listener.fileno())}", named(b"old"), shared_listeners=True)
    old.prepare()  # listening, not accepting: the client below waits in the backlog
    client = Client(socket.create_connection(listener.getsockname(), timeout=10))
    client.send(GET)
    old.stop(2.0)
    new = HttpServer(f"fd://{os.dup(listener.fileno())}", named(b"new"))
    new.prepare()
    thread = threading.Thread(target=new.start)
    thread.start()
    try:
        assert client.read_response().body == b"new"
    finally:
        client.close()
        new.stop(2.0)
        thread.join(5)


def test_a_first_request_still_on_its_way_when_a_stop_begins_is_served() -> None:
    with running(hello_app, stop_timeout=5.0) as server:
        client = Client(socket.create_connection(server.bind_addr, timeout=10))
        deadline = time.monotonic() + 10
        while server.stats()["accepted_connections"] < 1:
            assert time.monotonic() < deadline
        stopper = threading.Thread(target=server.stop, args=(5.0,))
        stopper.start()
        while server.sockets:  # the listeners close once the drain has begun
            assert time.monotonic() < deadline
        time.sleep(0.3)  # the client is slow: its request leaves after the stop began
        client.send(GET)
        response = client.read_response()
        assert response.status == 200 and response.header("Connection") == "close"
        stopper.join(10)
        client.close()


def test_an_idle_keep_alive_connection_is_still_closed_at_once_by_a_stop() -> None:
    with running(hello_app) as server:
        client = Client(socket.create_connection(server.bind_addr, timeout=10))
        assert client.request(GET).status == 200
        started = time.monotonic()
        server.stop(5.0)
        assert time.monotonic() - started < 0.5
        assert client.at_eof()
        client.close()


def test_the_heartbeat_comes_from_the_acceptor_and_survives_its_own_failure() -> None:
    beats: list[str] = []

    def heartbeat() -> None:
        beats.append(threading.current_thread().name)
        if len(beats) == 1:
            raise RuntimeError("a hook that fails once")

    with running(hello_app, heartbeat=heartbeat) as server:
        deadline = time.monotonic() + 10
        while len(beats) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        client = Client(socket.create_connection(server.bind_addr, timeout=10))
        assert client.request(GET).status == 200
        client.close()
    assert set(beats) == {"treadle-acceptor"}


def test_stats_with_a_source_answer_for_every_worker() -> None:
    other: Stats = {"pid": 99, "threads": 7, "requests_served": 5, "uptime_seconds": 1000.0}

    def source(own: Stats) -> list[Stats]:
        return [{"pid": 1, **own}, other]

    with running(hello_app, stats_path="/_stats", stats_source=source) as server:
        client = Client(socket.create_connection(server.bind_addr, timeout=10))
        doc = json.loads(client.request(b"GET /_stats HTTP/1.1\r\nHost: t\r\n\r\n").body)
        client.close()
    assert [w["pid"] for w in doc["workers"]] == [1, 99]
    assert doc["threads"] == 5 + 7 and doc["uptime_seconds"] == 1000.0
    assert "pid" not in doc


def test_total_and_prometheus_of_several_workers() -> None:
    workers: list[Stats] = [
        {"pid": 1, "busy_threads": 2, "uptime_seconds": 3.0},
        {"pid": 2, "busy_threads": 1, "uptime_seconds": 5.5},
    ]
    assert total_stats(workers) == {"busy_threads": 3, "uptime_seconds": 5.5}
    text = prometheus_stats({}, workers)
    assert text.splitlines()[:4] == [
        "# TYPE treadle_busy_threads gauge",
        "treadle_busy_threads 3",
        'treadle_busy_threads{pid="1"} 2',
        'treadle_busy_threads{pid="2"} 1',
    ]
    assert (
        prometheus_stats({"threads": 5}, []) == "# TYPE treadle_threads gauge\ntreadle_threads 5\n"
    )


def test_the_stats_board_keeps_one_slot_per_worker_and_skips_a_torn_one() -> None:
    board = StatsBoard.create()
    try:
        board.write(0, {"pid": 10, "threads": 5})
        board.write(2, {"pid": 12, "threads": 6})
        assert board.read() == [{"pid": 10, "threads": 5}, {"pid": 12, "threads": 6}]
        assert board.read(skip=0) == [{"pid": 12, "threads": 6}]
        os.pwrite(board.fd, b"X", 2 * SLOT_SIZE + 9)  # a write caught halfway
        assert board.read() == [{"pid": 10, "threads": 5}]
        board.clear(0)
        assert board.read() == []
        with pytest.raises(ValueError):
            board.write(1, {"pid": 11, "x": "y" * SLOT_SIZE})
    finally:
        board.close()


def test_the_link_to_the_supervisor_is_read_once_from_the_environment() -> None:
    board = StatsBoard.create()
    read, write = os.pipe()
    spec = {"fds": [[7, "https"], [8, "http"]], "pipe": write, "stats_fd": board.fd,
            "slot": 3, "ppid": os.getppid(), "number": 4, "max_requests": 10}  # fmt: skip
    env = {ENV_VAR: json.dumps(spec)}
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)}
    try:
        link = Supervised.from_environ(env)
        assert link is not None and env == {}
        assert link.binds() == ["https://fd://7", "http://fd://8"]
        assert (link.slot, link.number, link.max_requests) == (3, 4, 10)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # the supervisor's to act on
        assert not os.get_inheritable(write)
        link.ready()
        assert os.read(read, 1) == b"R"
        assert Supervised.from_environ({}) is None
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        os.close(read)
        os.close(write)
        board.close()


def test_the_request_limit_hook_comes_at_the_nth_request_and_can_stop_accepting() -> None:
    calls: list[int] = []
    holder: list[HttpServer] = []

    def limit_reached() -> None:
        calls.append(1)
        holder[0].interrupt()

    with running(hello_app, request_limit=3, on_request_limit=limit_reached) as server:
        holder.append(server)
        client = Client(socket.create_connection(server.bind_addr, timeout=10))
        for _ in range(2):
            assert client.request(GET).status == 200
        assert calls == []
        assert client.request(GET).status == 200  # the third: handed over, then the hook
        assert calls == [1]
        assert not server.ready  # the accept loop ends; a stop follows
        client.close()
