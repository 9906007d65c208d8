"""A one-connection TCP server that answers with canned bytes, to test the harness's own reader."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def canned(reply: bytes, *, close: bool = True) -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(TimeoutError):
                conn.recv(65536)
            conn.sendall(reply)
            if close:
                conn.shutdown(socket.SHUT_WR)
            done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield host, port
    finally:
        done.set()
        thread.join(5)
        listener.close()
