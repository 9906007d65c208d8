"""One HTTP request on a connection: parse it, hand it to the gateway, frame the response.

``parse_request()`` runs the sans-I/O parser over the connection's buffer; ``read_request_line()``
and ``read_request_headers()`` take the parsed parts into the request and choose the body's
framing. ``respond()`` runs the WSGI gateway; ``send_headers()`` and ``write()`` put the response
on the wire with the framing decided here:

    app declared Content-Length  -> exactly that many bytes; more is cut, less closes the connection
    one-piece body, no length    -> Content-Length computed (head and body leave in one send)
    unknown length, HTTP/1.1     -> chunked
    unknown length, HTTP/1.0     -> delimited by closing the connection
    HEAD, 1xx, 204, 304          -> no body, whatever the app yields

so a response can never run into the next one on a keep-alive connection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._date import http_date
from .bodies import Body, body_for
from .errors import ClientGone, HttpError
from .parser import Headers, RequestHead, parse_head

if TYPE_CHECKING:
    from .connection import HttpConnection
    from .server import HttpServer

error_log = logging.getLogger("treadle.error")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HttpRequest:
    __slots__ = (
        "body",
        "bytes_sent",
        "chunked_write",
        "close_connection",
        "conn",
        "head",
        "inheaders",
        "method",
        "minor",
        "no_body",
        "outheaders",
        "path",
        "qs",
        "remaining",
        "remote_addr",
        "request_protocol",
        "response_protocol",
        "sent_headers",
        "server",
        "status",
        "uri",
    )

    def __init__(self, server: HttpServer, conn: HttpConnection) -> None:
        self.server = server
        self.conn = conn
        self.remote_addr = conn.remote_addr  # the client's, once a trusted proxy has said
        self.close_connection = False
        self.sent_headers = False
        self.chunked_write = False
        self.no_body = False
        self.remaining: int | None = None  # bytes the app still owes its declared length
        self.bytes_sent = 0
        self.status = ""
        self.outheaders: list[tuple[str, str]] = []
        self.response_protocol = "HTTP/1.1"

    # -- reading ---------------------------------------------------------------------------------

    def parse_request(self) -> bool:
        """Parse the head from the connection's buffer; False while it is incomplete."""
        conn = self.conn
        parsed = parse_head(conn.buf, self.server.limits)
        if parsed is None:
            return False
        head, consumed = parsed
        conn.buf = conn.buf[consumed:]
        self.head = head
        self.read_request_line(head)
        self.read_request_headers(head)
        return True

    def read_request_line(self, head: RequestHead) -> None:
        self.method = head.method
        self.uri = head.target
        self.path = head.path
        self.qs = head.query
        self.request_protocol = head.protocol
        self.minor = head.minor

    def read_request_headers(self, head: RequestHead) -> None:
        self.inheaders: Headers = head.headers
        self.close_connection = not head.keep_alive or not self.server.limits.keep_alive_timeout
        self.body: Body = body_for(head, self.server.limits, self.server.body_budget)
        conn = self.conn
        if not self.body.complete:
            if conn.buf:
                taken = self.body.feed(conn.buf)
                conn.buf = conn.buf[taken:]
            if not self.body.complete and head.expect_continue:
                # RFC 9110 §10.1.1: the body is wanted, so ask for it now.
                conn.sendall(CONTINUE)

    # -- responding ------------------------------------------------------------------------------

    def respond(self) -> None:
        gateway = self.server.gateway(self)
        try:
            gateway.respond()
        except ClientGone:
            raise
        except BaseException:  # SystemExit from an app must not end a worker
            error_log.exception("error in WSGI application for %s %r", self.method, self.uri)
            if self.sent_headers:
                self.close_connection = True  # the client sees a truncated response
                return
            self.simple_response(500, "Internal Server Error")
            return
        if not self.sent_headers:
            self.send_headers(0)
        if self.chunked_write:
            self.conn.sendall(b"0\r\n\r\n")
        elif self.remaining and not self.no_body:
            error_log.error(
                "application sent %d bytes fewer than its Content-Length for %s %r",
                self.remaining,
                self.method,
                self.uri,
            )
            self.close_connection = True

    def send_headers(self, length: int | None = None, first: bytes = b"") -> None:
        """Frame the response (see the module docstring) and send its head, with ``first``
        (the start of the body) in the same send. ``length`` is the body's size when the app
        did not declare one but the whole body is already known."""
        code = int(self.status[:3])
        self.no_body = self.method == "HEAD" or code in (204, 304)
        headers = self.outheaders
        if self.remaining is None and code not in (204, 304) and length is not None:
            headers.append(("Content-Length", str(length)))
            self.remaining = length
        elif self.remaining is None and not self.no_body:
            if self.minor >= 1:
                headers.append(("Transfer-Encoding", "chunked"))
                self.chunked_write = True
            else:
                self.close_connection = True
        if self.server.stopping:
            self.close_connection = True
        if self.close_connection:
            headers.append(("Connection", "close"))
        elif self.minor == 0:
            headers.append(("Connection", "keep-alive"))
        lines = [f"{self.response_protocol} {self.status}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1")
        self.sent_headers = True
        if first:
            data += self._frame(first)
        self.conn.sendall(data)

    def write(self, chunk: bytes) -> None:
        """Send a piece of the body (sending the head first, in the same send, if needed)."""
        if not self.sent_headers:
            self.send_headers(None, chunk)
        elif chunk:
            data = self._frame(chunk)
            if data:
                self.conn.sendall(data)

    def _frame(self, chunk: bytes) -> bytes:
        if self.no_body:
            return b""
        remaining = self.remaining
        if remaining is not None:
            if len(chunk) > remaining:
                error_log.error(
                    "application sent more than its Content-Length for %s %r; cut short",
                    self.method,
                    self.uri,
                )
                chunk = chunk[:remaining]
                self.close_connection = True
            self.remaining = remaining - len(chunk)
        self.bytes_sent += len(chunk)
        if self.chunked_write:
            return b"%x\r\n%b\r\n" % (len(chunk), chunk)
        return chunk

    def simple_response(self, status: int, reason: str) -> None:
        """An error response written by the server itself; the connection closes after it."""
        text = f"{status} {reason}\n"
        self.close_connection = True
        self.status = f"{status} {reason}"
        self.sent_headers = True
        self.bytes_sent = len(text)
        self.conn.sendall(plain_response(status, reason, text, self.server.software))


def error_response(error: HttpError, software: str) -> bytes:
    """The bytes of the response to a request refused before it became an HttpRequest."""
    text = f"{error.status} {error.reason}: {error.detail}\n"
    return plain_response(error.status, error.reason, text, software, error.headers)


def plain_response(
    status: int,
    reason: str,
    text: str,
    software: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A whole text/plain response from the server itself, closing the connection."""
    body = text.encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Date: {http_date()}\r\n"
        f"Server: {software}\r\n"
        f"{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1") + body
