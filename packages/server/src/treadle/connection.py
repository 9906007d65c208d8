"""``HttpConnection``: a client socket, its receive buffer, and where it is in its life.

A connection is owned by one thread at a time. While it waits for bytes it is *parked* in the
acceptor's poller, and ``on_readable()`` (acceptor thread) receives into its buffer; once a whole
request head (and any body) is there, it is queued for a worker, which runs ``communicate()``:
serve every complete request in the buffer (pipelining, in order), then park it again. So no
worker ever waits on a client, and idle keep-alive connections cost a poller entry, not a thread.

    state     parked until                       then
    HEAD      a blank line ends a head           dispatch to a worker
    BODY      the body receiver is complete      dispatch (the request is pending)
    LINGER    the client closes, or a deadline   close (after a final response, drain what
                                                 the client still sends so it never sees RST)
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from enum import Enum
from typing import TYPE_CHECKING

from .accesslog import log_request
from .errors import ClientGone, HttpError, RequestTimeout
from .parser import find_head_end
from .request import HttpRequest, error_response

if TYPE_CHECKING:
    from .server import HttpServer

error_log = logging.getLogger("treadle.error")

RECV_SIZE = 65536


class State(Enum):
    HEAD = 1
    BODY = 2
    LINGER = 3


class Ready(Enum):
    """What the acceptor does with a connection after ``on_readable()``."""

    WAIT = 1  # park it again
    DISPATCH = 2  # queue it for a worker
    CLOSED = 3  # it is gone


class HttpConnection:
    # Slots: an idle keep-alive connection should cost little memory (thousands may be parked).
    __slots__ = (
        "buf",
        "closed",
        "deadline",
        "error",
        "fd",
        "head_started",
        "parked_at",
        "pending",
        "registered",
        "remote_addr",
        "remote_port",
        "requests",
        "scanned",
        "server",
        "socket",
        "state",
    )

    def __init__(self, server: HttpServer, sock: socket.socket, addr: object) -> None:
        self.server = server
        self.socket = sock
        self.fd = sock.fileno()
        if isinstance(addr, tuple):
            self.remote_addr, self.remote_port = str(addr[0]), str(addr[1])
        else:
            self.remote_addr, self.remote_port = "", ""
        self.buf = b""
        self.scanned = 0  # buf[:scanned] holds no head end: never rescan it
        self.state = State.HEAD
        self.pending: HttpRequest | None = None
        self.error: HttpError | None = None
        self.requests = 0
        self.parked_at = 0.0
        self.deadline = 0.0
        self.head_started = 0.0
        self.closed = False
        self.registered = False  # in the poller (its business)

    # -- acceptor side ---------------------------------------------------------------------------

    def on_readable(self) -> Ready:
        try:
            data = self.socket.recv(RECV_SIZE)
        except BlockingIOError:
            return Ready.WAIT
        except OSError:
            data = b""
        if not data:
            self.close()
            return Ready.CLOSED
        now = time.monotonic()
        if self.state is State.LINGER:
            return Ready.WAIT  # discard what a closing client still sends
        if self.state is State.BODY:
            return self._feed_body(data, now)
        if not self.buf:
            self.head_started = now
        buf = self.buf = self.buf + data if self.buf else data
        limits = self.server.limits
        if (
            find_head_end(buf, self.scanned) >= 0
            or len(buf) > limits.max_head_size
            or (
                len(buf) > limits.max_request_line
                and buf.find(b"\n", 0, limits.max_request_line + 2) < 0
            )
        ):
            return Ready.DISPATCH  # complete, or bound to be refused: a worker answers
        self.scanned = max(0, len(buf) - 3)
        self.deadline = self.head_started + limits.timeout
        return Ready.WAIT

    def _feed_body(self, data: bytes, now: float) -> Ready:
        req = self.pending
        assert req is not None
        try:
            taken = req.body.feed(data)
        except HttpError as exc:
            self.error = exc
            return Ready.DISPATCH
        if taken < len(data):
            self.buf = data[taken:]  # the start of a pipelined request
        if req.body.complete:
            return Ready.DISPATCH
        self.deadline = now + self.server.limits.timeout
        return Ready.WAIT

    def expire(self, now: float) -> bool:
        """Close if parked past its deadline (acceptor side). True when closed."""
        if now < self.deadline:
            return False
        if self.state is not State.LINGER and (self.buf or self.state is State.BODY):
            # RFC 9110 §15.5.9: a head or body that did not arrive in time.
            self._try_send(error_response(RequestTimeout("timed out"), self.server.software))
        self.close()
        return True

    def _try_send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.socket.send(data)

    # -- worker side -----------------------------------------------------------------------------

    def communicate(self) -> int:
        """Serve the requests that are buffered, then park or close the connection.
        Returns how many requests were answered by the application."""
        server = self.server
        served = 0
        while True:
            if self.error is not None:
                self.send_error(self.error)
                return served
            req = self.pending
            if req is None:
                req = HttpRequest(server, self)
                try:
                    if not req.parse_request():
                        self.park(State.HEAD)
                        return served
                except HttpError as exc:
                    self.send_error(exc)
                    return served
                except ClientGone:
                    self.close()
                    return served
                if not req.body.complete:
                    self.pending = req
                    self.park(State.BODY)
                    return served
            else:
                self.pending = None
            try:
                req.respond()
            except ClientGone as exc:
                error_log.debug("client %s went away: %s", self.remote_addr, exc)
                self.close()
                return served
            finally:
                req.body.close()
            served += 1
            self.requests += 1
            if server.access_logging:
                log_request(req)
            if req.close_connection or server.stopping:
                self.close_gracefully()
                return served
            if not self.buf or find_head_end(self.buf) < 0:
                self.park(State.HEAD)
                return served

    def send_error(self, exc: HttpError) -> None:
        self.error = None
        self.pending = None
        try:
            self.sendall(error_response(exc, self.server.software))
        except ClientGone:
            self.close()
            return
        error_log.debug("refused request from %s: %s %s", self.remote_addr, exc.status, exc)
        self.close_gracefully()

    def park(self, state: State) -> None:
        now = time.monotonic()
        self.state = state
        self.parked_at = now
        limits = self.server.limits
        if state is State.HEAD:
            self.scanned = max(0, len(self.buf) - 3)
            if self.buf:
                self.head_started = now
                self.deadline = now + limits.timeout
            elif self.requests:
                self.deadline = now + limits.keep_alive_timeout
            else:
                self.deadline = now + limits.timeout
        elif state is State.BODY:
            self.deadline = now + limits.timeout
        else:
            self.deadline = now + limits.linger_timeout
        self.server.park(self)

    def close_gracefully(self) -> None:
        """Close after a final response without risking a reset that eats it."""
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self.buf = b""
        self.park(State.LINGER)

    def sendall(self, data: bytes) -> None:
        """Send everything, waiting for a slow reader at most ``timeout`` per stall."""
        sock = self.socket
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        timeout_ms = int(self.server.limits.timeout * 1000)
        while view:
            if not poller.poll(timeout_ms):
                raise ClientGone("client did not read the response in time")
            try:
                sent = sock.send(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            view = view[sent:]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.forget(self)
        with contextlib.suppress(OSError):
            self.socket.close()
        if self.pending is not None:
            self.pending.body.close()
            self.pending = None
