from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import settings

from treadle.server import HttpServer
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse

from ._wire import Client

# The property tests check results, not speed: on a loaded machine (the gate runs three envs at
# once on two cores) one case may take longer than hypothesis's 200 ms default deadline.
settings.register_profile("treadle", deadline=None)
settings.load_profile("treadle")


def hello_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
    return [b"hello " + environ["PATH_INFO"].encode("latin-1") + b" " + body]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (server stats, typically) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


class BlockingApp:
    """An app that signals ``entered`` and then holds its worker until ``release`` is set."""

    def __init__(self, hold: float = 10.0) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold = hold

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        self.entered.set()
        self.release.wait(self.hold)
        start_response("200 OK", [])
        return [b"done"]


ServerFactory = Callable[..., AbstractContextManager[HttpServer]]


@pytest.fixture
def make_server() -> ServerFactory:
    """``with make_server(app, threads=2) as server:`` a real server on 127.0.0.1, port 0."""
    return running


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with running(hello_app) as srv:
        yield srv


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def _connect(
        srv: HttpServer, timeout: float = 5.0, rcvbuf: int | None = None, **kwargs: Any
    ) -> Client:
        """``rcvbuf``: the receive buffer, set before connecting (set after, on loopback, it
        leaves a window the sender can only probe, slower by the second)."""
        host, port = srv.bind_addr[:2]
        if rcvbuf is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        else:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        client = Client(sock)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()
