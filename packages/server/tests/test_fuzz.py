"""Random bytes on the wire never crash a worker, leak a connection, or earn a 5xx."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.limits import Limits
from treadle.server import HttpServer
from treadle.testing import running

from ._wire import Client
from .conftest import hello_app

PREFIXES = [
    b"",
    b"GET / HTTP/1.1\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[HttpServer]:
    with running(hello_app, limits=Limits(timeout=0.5, keep_alive_timeout=0.5)) as srv:
        yield srv


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=st.sampled_from(PREFIXES), junk=st.binary(min_size=1, max_size=200))
def test_property_random_bytes_get_4xx_or_close(
    fuzz_server: HttpServer, prefix: bytes, junk: bytes
) -> None:
    sock = socket.create_connection(fuzz_server.bind_addr[:2], timeout=5)
    client = Client(sock)
    try:
        client.send(prefix + junk + b"\r\n\r\n")
        raw = client.file.read(4096)
    except ConnectionResetError:
        raw = b""
    finally:
        client.close()
    if raw:
        assert raw.startswith(b"HTTP/1.1 "), raw[:40]
        status = int(raw[9:12])
        assert status < 500 or status in (501, 505), raw[:80]


def test_server_is_whole_after_fuzzing(fuzz_server: HttpServer) -> None:
    client = Client(socket.create_connection(fuzz_server.bind_addr[:2], timeout=5))
    assert client.request(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n").body == b"hello /ok "
    client.close()
    assert fuzz_server.stats()["threads"] == 5
    deadline = time.monotonic() + 5  # lingering closes finish within the linger timeout
    while fuzz_server.stats()["open_connections"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fuzz_server.stats()["open_connections"] == 0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_abusive_clients_leak_no_socket_or_thread() -> None:
    """Resets mid-head, mid-body and mid-response, half-closes, and silence: afterwards every
    connection is gone and the pool is whole."""
    limits = Limits(timeout=0.3, keep_alive_timeout=0.3, linger_timeout=0.3)
    with running(hello_app, threads=3, limits=limits) as srv:
        baseline = _open_fds()
        threads_before = threading.active_count()
        address = srv.bind_addr[:2]
        payloads = [
            b"GET / HTTP/1.1\r\nHo",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc",
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
            b"",
        ]
        for i in range(100):
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(payloads[i % len(payloads)])
            if i % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
            else:
                sock.shutdown(socket.SHUT_WR)
            sock.close()
        deadline = time.monotonic() + 10
        while srv.stats()["open_connections"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.stats()["open_connections"] == 0
        assert srv.stats()["threads"] == 3
        assert _open_fds() <= baseline
        assert threading.active_count() == threads_before
