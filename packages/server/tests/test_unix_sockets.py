"""Unix socket binds: a live server's path is never taken over, a stale one is, and a server
removes only the socket file it made."""

from __future__ import annotations

import errno
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from treadle.server import HttpServer

from ._proc import unix_get
from .conftest import hello_app


@pytest.fixture
def sock_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tr-") as name:  # short: sun_path is 108 bytes
        yield Path(name) / "app.sock"


@contextmanager
def serving_on(path: Path, **kwargs: object) -> Iterator[HttpServer]:
    server = HttpServer(str(path), hello_app, **kwargs)  # type: ignore[arg-type]
    server.prepare()
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop(2)
        thread.join(3)


def test_a_live_servers_socket_is_not_taken_over(sock_path: Path) -> None:
    with serving_on(sock_path):
        second = HttpServer(str(sock_path), hello_app)
        with pytest.raises(OSError, match="another server is listening") as error:
            second.prepare()
        assert error.value.errno == errno.EADDRINUSE
        second.stop(0)
        assert unix_get(sock_path, "/still").body == b"hello /still "
    assert not sock_path.exists()


def test_a_stale_socket_file_is_replaced(sock_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(sock_path))  # closed without unlinking: a crashed server's leftover
    with serving_on(sock_path):
        assert unix_get(sock_path, "/new").body == b"hello /new "


def test_a_file_that_is_not_a_socket_is_left_alone(sock_path: Path) -> None:
    sock_path.write_text("precious")
    with pytest.raises(OSError, match="exists and is not a socket"):
        HttpServer(str(sock_path), hello_app).prepare()
    assert sock_path.read_text() == "precious"


def test_stop_leaves_a_socket_file_another_server_made_since(sock_path: Path) -> None:
    with serving_on(sock_path), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as newer:
        sock_path.unlink()  # someone removed ours, and a newer server bound the path
        newer.bind(str(sock_path))
        newer.listen()
    assert sock_path.exists()  # the newer server's, so still there


def test_unix_socket_mode(sock_path: Path) -> None:
    with serving_on(sock_path, unix_socket_mode=0o660):
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o660
        assert unix_get(sock_path).status == 200
