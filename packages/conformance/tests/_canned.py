"""One-connection TCP servers that answer with canned bytes, to test the harness's own reader
and judge without a real server: the first reply answers the scenario, `after` answers
whatever comes next (the sentinel request), then the server closes."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from treadle_conformance.model import Scenario
from treadle_conformance.runner import Result, run
from treadle_conformance.target import Baseline, Settings, Target

SENTINEL_JSON = b'{"reflect": "treadle-conformance", "path": "/__sentinel"}'
SENTINEL_OK = (
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(SENTINEL_JSON)
    + SENTINEL_JSON
)
BASELINE = Baseline(
    status=200,
    body_length=len(SENTINEL_JSON),
    body_sha256=hashlib.sha256(SENTINEL_JSON).hexdigest(),
    closes=True,
    reflect_path="/__sentinel",
)

QUICK = Settings(timeout=2.0, close_wait=0.5)


def json_ok(path: str, extra: bytes = b"") -> bytes:
    body = b'{"reflect": "treadle-conformance", "path": "%s"%s}' % (path.encode(), extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def plain(status: int, *, close: bool = False, body: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
    return head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body


@contextmanager
def canned(
    reply: bytes, *, close: bool = True, after: bytes | None = SENTINEL_OK
) -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(TimeoutError):
                conn.recv(1 << 22)
            conn.sendall(reply)
            if not close:
                conn.settimeout(10)
                try:
                    more = conn.recv(65536)
                except (TimeoutError, OSError):
                    more = b""
                if more and after is not None:
                    conn.sendall(after)
                elif more:
                    done.wait(5)
            with contextlib.suppress(OSError):
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


def judged(
    scenario: Scenario,
    reply: bytes,
    *,
    close: bool = False,
    after: bytes | None = SENTINEL_OK,
    reflect: bool = True,
) -> Result:
    """The result of one scenario against a canned server."""
    with canned(reply, close=close, after=after) as (host, port):
        target = Target(host, port, reflect=reflect, baseline=BASELINE, settings=QUICK)
        return run(scenario, target)
