"""Stand-in proxies for the harness's own tests of proxy mode, in front of the recording backend.

`relay` passes every byte through unchanged, both ways, one upstream connection per client.
`naive_pool` is the proxy that response splicing needs: one upstream connection shared by every
client, each response framed by its head and Content-Length alone (no HEAD, 1xx, 204, 304 or
chunked rules), one response per client connection, then a close; whatever it leaves on the
upstream connection is the next client's answer. `real_proxy` starts nginx or HAProxy in front
of a fresh recording backend, or skips the test saying which program is missing.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from treadle_conformance import proxies
from treadle_conformance.backend import running
from treadle_conformance.blackbox import Missing
from treadle_conformance.target import Settings, Target, started


@contextlib.contextmanager
def _serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A listener on a free loopback port; each accepted client is handled on its own thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def relay(backend_port: int) -> contextlib.AbstractContextManager[int]:
    """A transparent TCP relay: every byte passes unchanged, both ways."""

    def pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def pair(client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", backend_port)) as upstream:
            up = threading.Thread(target=pump, args=(client, upstream), daemon=True)
            up.start()
            pump(upstream, client)
            up.join(10)

    return _serving(pair)


@contextlib.contextmanager
def naive_pool(backend_port: int) -> Iterator[int]:
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

    with upstream, _serving(serve) as port:
        yield port


@contextlib.contextmanager
def real_proxy(name: str, settings: Settings) -> Iterator[Target]:
    """nginx or HAProxy (`proxies.PROXIES`) in front of a recording backend, pre-flighted."""
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(running())
        try:
            command, port = stack.enter_context(proxies.serving(name, backend.port))
        except Missing as exc:
            pytest.skip(f"{name}: {exc}")
        target = stack.enter_context(started(command, name=name, port=port, settings=settings))
        target.backend = backend
        target.preflight()
        yield target
