"""Raw-socket clients: a newcomer's request, and telling a closed connection without reading."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from _wire import BadAnswer, Target, ask, established


@contextmanager
def answering(answer: bytes) -> Iterator[Target]:
    """A one-connection server on port 0 that reads a head and sends `answer`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Target("127.0.0.1", listener.getsockname()[1])
    finally:
        thread.join(5)
        listener.close()


def test_target_from_url_and_request_head() -> None:
    target = Target.of("http://127.0.0.1:8080/")
    assert target == Target("127.0.0.1", 8080)
    assert target.head("GET", "/hello", "Connection: close") == (
        b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
    )
    assert Target.of("http://[::1]:9/").authority == "[::1]:9"
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        Target.of("https://example.com")


def test_ask_returns_when_the_head_arrives() -> None:
    with answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as target:
        assert ask(target, "/hello", timeout=5) > 0


def test_ask_raises_on_an_error_status_or_a_close() -> None:
    with (
        answering(b"HTTP/1.1 503 Service Unavailable\r\n\r\n") as target,
        pytest.raises(BadAnswer, match="503"),
    ):
        ask(target, "/hello", timeout=5)
    with answering(b"") as target, pytest.raises(BadAnswer, match="closed without an answer"):
        ask(target, "/hello", timeout=5)


def test_established_until_the_peer_closes() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client:
            assert established(client)
            server.close()
            assert client.recv(1, socket.MSG_PEEK) == b""  # the FIN has arrived
            assert not established(client)
