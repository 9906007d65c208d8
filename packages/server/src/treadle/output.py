"""The output buffer: the unsent tail of a response, sent by the poller, so that a worker never
waits on a client that does not read a response that fits.

A worker writes with ``HttpConnection.sendall``: one ``send`` on the hot path. When the socket
takes only part, the rest moves into the connection's output buffer (``conn.out``) if the
buffered total stays within ``limits.send_buffer_size``, and later pieces of the response go in
behind it. Past the bound (a large or streaming response to a slow reader) the worker waits
until what is left fits, as it always did: a send that makes no progress for ``STALL_GRACE``
marks it *stalled*, and the pool may start a replacement (workers.py).

When a response is done and bytes are still buffered, the worker serves nothing more on that
connection: it parks it in state SEND, watched for writability. The acceptor sends what the
socket takes at each event, and tries again every ``PROGRESS_INTERVAL`` whatever the poller
says (Linux reports writability only once much of a large send buffer drains, so a slow but
steady reader shows none for seconds while it takes bytes). A client that takes no byte for
``limits.timeout`` is closed. Once the buffer is empty the connection goes on as the response
said: the next pipelined request is dispatched, or it parks for one (HEAD), or it closes
gracefully (LINGER). So a connection holds at most one response's tail in memory.

    worker    send --part--> the rest fits? --yes--> conn.out --response done--> park SEND
                                            --no---> wait (stalled) until it fits
    acceptor  SEND --writable, or every 0.5 s--> send from conn.out --empty--> dispatch,
                                                                               HEAD or LINGER

An interim ``100 Continue`` that cannot leave at once waits the same way, in state BODY: the
connection is watched for writability until it is out, then for the body.

TLS: Python's TLS writes are all or nothing, and OpenSSL wants one that would block retried
with the same bytes, at least as many (their address may move: Python sets
SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). The size of a write that would block is kept
(``conn.retry_size``) for its retry; past it, the slow path writes a record at a time. The
buffer loses bytes from its start only after a write went through, and grows only at its end.
(The hot path writes a response whole, in one call, as before: the retry of a large write that
would block is one unit, whose progress shows only when all of it has left.)
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
import time
from typing import TYPE_CHECKING

from . import connection  # the module: its Ready and State are read at call time
from .errors import ClientGone
from .parser import find_head_end
from .workers import WorkerThread

if TYPE_CHECKING:
    from .connection import HttpConnection

error_log = logging.getLogger("treadle.error")

# A send that cannot go on for this long means the client is not reading (a fast reader frees
# room within a round trip): the worker is then reported stalled and may be replaced.
STALL_GRACE = 0.02
# While a client is not taking bytes, how often a send is tried whatever the poller says:
# progress is bytes sent, not readiness.
PROGRESS_INTERVAL = 0.5
# A non-blocking send that cannot go on now, on a plain or a TLS socket.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Python's TLS writes are all or nothing (OpenSSL's partial writes are not enabled), and one
# that would block must be retried with the same bytes, at least as many. Past that retry, the
# slow path writes a TLS connection's bytes a record at a time, so that each record that leaves
# is progress a slow reader has made, not just the last byte of the whole buffer.
TLS_RECORD = 16384


# -- worker side ---------------------------------------------------------------------------------


def send_rest(conn: HttpConnection, rest: memoryview, attempted: int) -> None:
    """The socket did not take ``rest``, the end of what was written (``attempted``: how many
    bytes the last send tried), and nothing is buffered: buffer it, once what is left fits."""
    if conn.tls is not None:
        conn.retry_size = attempted
    limit = conn.server.limits.send_buffer_size
    if len(rest) > limit:
        rest = rest[send_slowly(conn, rest, limit) :]
    if rest:
        conn.out = bytearray(rest)


def send_behind(conn: HttpConnection, data: bytes) -> None:
    """Send ``data`` after the bytes that wait in the output buffer."""
    flush(conn)
    out = conn.out
    if out is None:
        conn.sendall(data)
        return
    limit = conn.server.limits.send_buffer_size
    if len(out) + len(data) > limit:
        del out[: send_slowly(conn, out, max(0, limit - len(data)))]
        if not out:
            conn.out = None
            conn.sendall(data)
            return
    out += data


def send_slowly(conn: HttpConnection, data: bytes | bytearray | memoryview, keep: int = 0) -> int:
    """Send ``data`` until at most ``keep`` bytes of it are left; how many were sent. A client
    that takes no bytes for ``timeout`` seconds is gone; one that takes none for
    ``STALL_GRACE`` stalls the worker, which the pool may replace."""
    poller = select.poll()
    poller.register(conn.fd, select.POLLOUT)
    timeout = conn.server.limits.timeout
    last_progress = time.monotonic()
    wait = STALL_GRACE
    worker: WorkerThread | None = None
    pos = 0
    with memoryview(data) as view:
        size = view.nbytes
        try:
            while size - pos > keep:
                writable = poller.poll(wait * 1000)
                if not writable and worker is None:
                    current = threading.current_thread()
                    if isinstance(current, WorkerThread):
                        worker = current
                        conn.server.requests.stall(worker)
                try:
                    sent = _send_once(conn, view[pos:])
                except _WOULD_BLOCK:
                    sent = 0
                except OSError as exc:
                    raise ClientGone(str(exc)) from exc
                now = time.monotonic()
                if sent:
                    pos += sent
                    last_progress = now
                elif now - last_progress >= timeout:
                    raise ClientGone("client did not read the response in time")
                if worker is not None:
                    wait = min(PROGRESS_INTERVAL, max(0.001, last_progress + timeout - now))
        finally:
            if worker is not None:
                conn.server.requests.unstall(worker)
    return pos


def flush(conn: HttpConnection) -> int:
    """Send what the socket takes now from the output buffer, without waiting; how much."""
    out = conn.out
    if out is None:
        return 0
    total = 0
    try:
        while out:
            with memoryview(out) as view:
                sent = _send_once(conn, view)
            if not sent:
                break
            del out[:sent]
            total += sent
    except ssl.SSLWantReadError:
        conn.want_write = False  # OpenSSL must read first (a renegotiation): wait for input
        return total
    except _WOULD_BLOCK:
        conn.want_write = True
        return total
    except OSError as exc:
        raise ClientGone(str(exc)) from exc
    if not out:
        conn.out = None
    return total


def _send_once(conn: HttpConnection, view: memoryview) -> int:
    """One send from the start of ``view``: all of it on a plain socket; on TLS a record, or
    as many bytes as the write that would block, which OpenSSL wants again."""
    if conn.tls is None:
        return conn.socket.send(view)
    size = conn.retry_size = max(conn.retry_size, min(len(view), TLS_RECORD))
    sent = conn.socket.send(view[:size])
    conn.retry_size = 0
    return sent


# -- acceptor side -------------------------------------------------------------------------------


def arm(conn: HttpConnection, now: float) -> None:
    """Bytes wait in the output buffer as the connection is parked: watch for writability, and
    come back within ``PROGRESS_INTERVAL`` whatever the poller says."""
    conn.want_write = True
    conn.progress_at = now
    conn.deadline = now + min(PROGRESS_INTERVAL, conn.server.limits.timeout)


def on_writable(conn: HttpConnection) -> connection.Ready:
    """Send what the client takes (acceptor thread); once all is out, go on as the response
    said. Called on readiness and by the deadline sweep."""
    now = time.monotonic()
    try:
        sent = flush(conn)
    except ClientGone as exc:
        error_log.debug("client %s went away: %s", conn.remote_addr, exc)
        conn.close()
        return connection.Ready.CLOSED
    timeout = conn.server.limits.timeout
    out = conn.out
    if out is not None:
        if sent:
            conn.progress_at = now
        elif now - conn.progress_at >= timeout:
            error_log.debug(
                "client %s took none of the last %d bytes of a response in %g s; closed",
                conn.remote_addr,
                len(out),
                timeout,
            )
            conn.close()
            return connection.Ready.CLOSED
        conn.deadline = min(now + PROGRESS_INTERVAL, conn.progress_at + timeout)
        return connection.Ready.WAIT
    conn.want_write = False
    if conn.state is connection.State.BODY:  # the 100 Continue is out: now the body
        conn.deadline = now + timeout
        return connection.Ready.WAIT
    conn.active = None
    if conn.closing:
        conn.closing = False
        conn.close_gracefully()
        return connection.Ready.PARKED
    if conn.tls is not None:
        conn.buf += conn.take_pending()
    conn.state = connection.State.HEAD
    if conn.buf and find_head_end(conn.buf) >= 0:
        return connection.Ready.DISPATCH
    conn.park(connection.State.HEAD)
    return connection.Ready.PARKED
