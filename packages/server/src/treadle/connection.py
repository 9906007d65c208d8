"""``HttpConnection``: a client socket, its receive buffer, and where it is in its life.

A connection is owned by one thread at a time. While it waits for bytes it is *parked* in the
acceptor's poller, and ``on_readable()`` (acceptor thread) receives into its buffer; once a whole
request head (and any body) is there, it is queued for a worker, which runs ``communicate()``:
serve every complete request in the buffer (pipelining, in order), then park it again. So no
worker ever waits on a client, and idle keep-alive connections cost a poller entry, not a thread.

    state     parked until                       then
    PROXY     a PROXY protocol header is read    HANDSHAKE or HEAD (``proxy_protocol`` only)
    HANDSHAKE the TLS handshake is done          HEAD (TLS listeners only; see tls.py)
    HEAD      a blank line ends a head           dispatch to a worker
    BODY      the body receiver is complete      dispatch (the request is pending)
    SEND      the output buffer is sent          dispatch, HEAD, or LINGER after a final
                                                 response (a client that does not read; see
                                                 output.py: no worker waits for it)
    LINGER    the client closes, or a deadline   close (after a final response, drain what
                                                 the client still sends so it never sees RST)

On a TLS connection the poller cannot see bytes that OpenSSL has already decrypted and holds
(``pending()``): whoever reads (the acceptor) or is about to park (a worker) takes those first,
so a request that arrived with the one before it never waits for a packet that is not coming.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from enum import Enum
from typing import TYPE_CHECKING

from . import edge, output
from .accesslog import log_refusal, log_request
from .errors import ClientGone, HttpError, RequestTimeout
from .parser import check_partial_head, find_head_end, skip_empty_lines
from .request import HttpRequest, error_response

if TYPE_CHECKING:
    from .server import HttpServer

error_log = logging.getLogger("treadle.error")

RECV_SIZE = 65536
# A non-blocking send or receive that cannot go on now, on a plain or a TLS socket.
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class State(Enum):
    HEAD = 1
    BODY = 2
    LINGER = 3
    HANDSHAKE = 4
    PROXY = 5
    SEND = 6


_BEFORE_A_REQUEST = frozenset((State.HEAD, State.HANDSHAKE, State.PROXY))


class Ready(Enum):
    """What the acceptor does with a connection after ``on_readable()``."""

    WAIT = 1  # park it again
    DISPATCH = 2  # queue it for a worker
    CLOSED = 3  # it is gone (or it parked itself to linger)
    PARKED = 4  # it parked itself (its response is out: for its next request, or to linger)


class HttpConnection:
    # Slots: an idle keep-alive connection should cost little memory (thousands may be parked).
    __slots__ = (
        "active",
        "buf",
        "closed",
        "closing",
        "deadline",
        "error",
        "fd",
        "head_started",
        "out",
        "parked_at",
        "pending",
        "progress_at",
        "registered",
        "remote_addr",
        "remote_port",
        "requests",
        "retry_size",
        "scanned",
        "server",
        "socket",
        "state",
        "tls",
        "tls_environ",
        "want_write",
    )

    def __init__(
        self,
        server: HttpServer,
        sock: socket.socket,
        addr: object,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.socket = sock
        self.tls = tls
        self.tls_environ: dict[str, str] | None = None
        self.want_write = False  # parked for writability (a TLS handshake that must send)
        self.fd = sock.fileno()
        if isinstance(addr, tuple):
            self.remote_addr, self.remote_port = str(addr[0]), str(addr[1])
        else:
            self.remote_addr, self.remote_port = "", ""
        self.buf = b""
        self.scanned = 0  # buf[:scanned] holds no head end: never rescan it
        self.state = State.HANDSHAKE if tls is not None else State.HEAD
        if server.proxy_protocol:
            self.state = State.PROXY
        self.pending: HttpRequest | None = None
        self.active: HttpRequest | None = None  # the request a worker is answering
        self.error: HttpError | None = None
        self.requests = 0
        self.parked_at = 0.0
        self.deadline = 0.0
        self.head_started = 0.0
        self.closed = False
        self.registered = False  # in the poller (its business)
        self.out: bytearray | None = None  # response bytes the socket did not take yet
        self.closing = False  # close gracefully once ``out`` is sent
        self.progress_at = 0.0  # when the client last took bytes of ``out``
        self.retry_size = 0  # a TLS write of this many bytes of ``out`` would block

    @property
    def idle(self) -> bool:
        """Waiting for a request of which nothing has arrived (perhaps still shaking hands)."""
        return self.state in _BEFORE_A_REQUEST and not self.buf

    @property
    def has_request(self) -> bool:
        """A request is being answered (or its response sent), or some of one has arrived."""
        return (
            self.active is not None
            or self.pending is not None
            or self.out is not None
            or (self.state is State.HEAD and bool(self.buf))
        )

    @property
    def receiving(self) -> bool:
        """Part of a request has arrived, not all of it."""
        return self.state is State.BODY or (self.state is State.HEAD and bool(self.buf))

    # -- acceptor side ---------------------------------------------------------------------------

    def on_readable(self) -> Ready:
        if self.out is not None:
            return output.on_writable(self)  # parked for writability: the response goes first
        if self.state is State.HANDSHAKE:
            return edge.handshake(self)
        if self.state is State.PROXY:
            return edge.proxy_header(self)
        try:
            data = self.socket.recv(RECV_SIZE)
        except _WOULD_BLOCK:
            return Ready.WAIT
        except OSError:
            data = b""
        if not data:
            self.close()
            return Ready.CLOSED
        if self.tls is not None:
            data += self.take_pending()
        now = time.monotonic()
        if self.state is State.LINGER:
            return Ready.WAIT  # discard what a closing client still sends
        if self.state is State.BODY:
            return self._feed_body(data, now)
        if not self.buf:
            self.head_started = now  # the head's deadline runs from its first byte
        buf = self.buf = self.buf + data if self.buf else data
        limits = self.server.limits
        try:
            start = skip_empty_lines(buf)
            if find_head_end(buf, max(self.scanned, start)) >= 0:
                return Ready.DISPATCH
            check_partial_head(buf, limits)
        except HttpError as exc:
            self.error = exc  # a worker answers it
            return Ready.DISPATCH
        self.scanned = max(start, len(buf) - 3)
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
        # Each gap may last up to the timeout, but bytes buy time only at the minimum rate.
        limits = self.server.limits
        self.deadline = min(now + limits.timeout, self.deadline + taken / limits.min_upload_rate)
        return Ready.WAIT

    def take_pending(self) -> bytes:
        """Bytes TLS has decrypted and holds, which no poller event will announce."""
        return edge.tls_pending(self.socket)

    def expire(self, now: float) -> bool:
        """Close if parked past its deadline (acceptor side). True when closed."""
        if now < self.deadline:
            return False
        if (self.state is State.HEAD and self.buf) or self.state is State.BODY:
            # RFC 9110 §15.5.9: a head or body that did not arrive in time.
            error = RequestTimeout("timed out")
            data = error_response(error, self.server.software)
            self.try_send(data)
            log_refusal(self, error, len(data))
        self.close()
        return True

    def try_send(self, data: bytes) -> None:
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
                        if self.tls is not None and (more := self.take_pending()):
                            self.buf += more
                            continue
                        self.park(State.HEAD)
                        return served
                except HttpError as exc:
                    self.send_error(exc)
                    return served
                except ClientGone:
                    self.close()
                    return served
                if not req.body.complete and self.tls is not None:
                    try:
                        self._feed_pending(req)
                    except HttpError as exc:
                        self.send_error(exc)
                        return served
                if not req.body.complete:
                    self.pending = req
                    self.park(State.BODY)
                    return served
            else:
                self.pending = None
            self.active = req
            try:
                req.respond()
            except ClientGone as exc:
                error_log.debug("client %s went away: %s", self.remote_addr, exc)
                self.close()
                return served
            finally:
                self.active = None
                req.body.close()
            served += 1
            self.requests += 1
            if server.access_logging:
                log_request(req)
            if self.out is not None:
                self.active = req  # its response is still leaving (named if a stop cuts it)
            if req.close_connection:  # stopping made it so, if this response was sent after
                self.close_gracefully()
                return served
            if self.out is not None:  # the client is not reading: it gets nothing more now
                self.park(State.SEND)
                return served
            if self.tls is not None:
                self.buf += self.take_pending()
            if not self.buf or find_head_end(self.buf) < 0:
                self.park(State.HEAD)
                return served

    def _feed_pending(self, req: HttpRequest) -> None:
        while not req.body.complete and (more := self.take_pending()):
            taken = req.body.feed(more)
            self.buf += more[taken:]

    def send_error(self, exc: HttpError) -> None:
        self.error = None
        data = error_response(exc, self.server.software)
        try:
            self.sendall(data)
        except ClientGone:
            self.close()
            return
        finally:
            log_refusal(self, exc, len(data))
            if self.pending is not None:
                self.pending.body.close()
                self.pending = None
        self.close_gracefully()

    def request_line(self) -> bytes:
        """The request line of the request at hand, as received (for logs)."""
        req = self.active or self.pending
        if req is not None:
            return b"%b %b %b" % (req.method.encode(), req.uri, req.request_protocol.encode())
        return self.buf[:1024].lstrip(b"\r\n").split(b"\r\n", 1)[0]

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
        if self.out is not None:  # SEND, or BODY after a 100 Continue that has not left yet
            output.arm(self, now)
        self.server.park(self)

    def close_gracefully(self) -> None:
        """Close after a final response without risking a reset that eats it."""
        if self.out is not None:  # the response is not all out: the poller sends it first
            self.closing = True
            self.buf = b""
            self.park(State.SEND)
            return
        if isinstance(self.socket, ssl.SSLSocket):
            # close_notify, without waiting for the client's: then the TCP half-close.
            with contextlib.suppress(OSError):
                self.socket.unwrap()
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self.buf = b""
        self.park(State.LINGER)

    def sendall(self, data: bytes) -> None:
        """Send everything, or leave what the socket does not take now in the output buffer
        (bounded; see output.py). A response that leaves in one send costs one ``send``."""
        if self.out is not None:
            output.send_behind(self, data)
            return
        try:
            sent = self.socket.send(data)
        except _WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if sent != len(data):
            output.send_rest(self, memoryview(data)[sent:], len(data))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.out = None
        self.server.forget(self)
        with contextlib.suppress(OSError):
            self.socket.close()
        if self.pending is not None:
            self.pending.body.close()
            self.pending = None
