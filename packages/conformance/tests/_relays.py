"""Stand-in proxies for the harness's own tests of proxy mode, in front of the recording backend.

`relay` passes every byte through unchanged, both ways, one upstream connection per client.
`naive_pool` is the proxy that response splicing needs: one upstream connection shared by every
client, each response framed by its head and Content-Length alone (no HEAD, 1xx, 204, 304 or
chunked rules), one response per client connection, then a close; whatever it leaves on the
upstream connection is the next client's answer.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def relay(backend_port: int) -> Iterator[int]:
    """A transparent TCP relay: every byte passes unchanged, both ways."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def pair(client: socket.socket, upstream: socket.socket) -> None:
        up = threading.Thread(target=pump, args=(client, upstream), daemon=True)
        up.start()
        pump(upstream, client)
        up.join(10)
        client.close()
        upstream.close()

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", backend_port))
            threading.Thread(target=pair, args=(client, upstream), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


@contextlib.contextmanager
def naive_pool(backend_port: int) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    upstream = socket.create_connection(("127.0.0.1", backend_port), timeout=5)
    pending = bytearray()
    lock = threading.Lock()

    def more() -> None:
        data = upstream.recv(65536)
        if not data:
            raise OSError("the backend closed the shared connection")
        pending.extend(data)

    def response() -> bytes:
        while b"\r\n\r\n" not in pending:
            more()
        end = pending.index(b"\r\n\r\n") + 4
        length = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", pending[:end])
        end += int(length.group(1)) if length else 0
        while len(pending) < end:
            more()
        out = bytes(pending[:end])
        del pending[:end]
        return out

    def serve(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = client.recv(65536)
                if not data:
                    return
                request += data
            with lock:
                upstream.sendall(request)
                answer = response()
            client.sendall(answer)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        upstream.close()
