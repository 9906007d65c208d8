"""The portable SelectorPoller keeps the EpollPoller's promises (used where epoll is missing)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest

from treadle.limits import Limits
from treadle.poller import EpollPoller, Poller, SelectorPoller, default_poller
from treadle.server import HttpServer
from treadle.testing import running

from ._wire import Client
from .conftest import hello_app

GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(params=[SelectorPoller, EpollPoller], ids=["selector", "epoll"])
def poller_server(request: pytest.FixtureRequest) -> Iterator[HttpServer]:
    poller: Poller = request.param()
    limits = Limits(keep_alive_timeout=0.3, timeout=0.5)
    with running(hello_app, threads=2, limits=limits, poller=poller) as srv:
        yield srv


def _client(srv: HttpServer) -> Client:
    return Client(socket.create_connection(srv.bind_addr[:2], timeout=3))


def test_keep_alive_and_pipelining(poller_server: HttpServer) -> None:
    client = _client(poller_server)
    assert client.request(GET).body == b"hello /x "
    client.send(GET * 3)
    assert [client.read_response().status for _ in range(3)] == [200, 200, 200]
    client.close()


def test_idle_clients_do_not_starve_new_ones(poller_server: HttpServer) -> None:
    idle = [_client(poller_server) for _ in range(4)]  # twice the thread count
    for client in idle:
        client.request(GET)
    fresh = _client(poller_server)
    assert fresh.request(GET).status == 200
    for client in [*idle, fresh]:
        client.close()


def test_deadlines_are_swept(poller_server: HttpServer) -> None:
    idle = _client(poller_server)
    idle.request(GET)
    partial = _client(poller_server)
    partial.send(b"GET / HTTP/1.1\r\n")
    assert partial.read_response().status == 408
    assert idle.at_eof()
    idle.close()
    partial.close()


def test_default_poller_is_epoll_on_linux() -> None:
    poller = default_poller()
    try:
        expected = EpollPoller if hasattr(select, "epoll") else SelectorPoller
        assert isinstance(poller, expected)
    finally:
        poller.close()
