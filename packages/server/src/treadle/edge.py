"""What happens on a connection before HTTP: the PROXY protocol header, then the TLS handshake.

Both run in the acceptor's poller, on bytes that have arrived, like a request head: neither
ever holds a worker thread, and both are bounded by the connection's first deadline. Each step
returns what the acceptor does next (``Ready``), and moves the connection on to the next state
when it is done:

    PROXY --header read--> HANDSHAKE (TLS listeners) or HEAD
    HANDSHAKE --done--> HEAD

The PROXY header is read with ``MSG_PEEK`` and then taken off the socket to its last byte and
no further, because what follows belongs to the TLS handshake (which reads the socket itself)
or to the request. ``tls_pending()`` gives what OpenSSL has decrypted and holds, which no poller
event announces.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import TYPE_CHECKING

from . import connection  # the module: its Ready and State are read at call time
from .proxyproto import MAX_HEADER_SIZE, ProxyProtocolError, parse_proxy_header
from .request import plain_response
from .tls import HANDSHAKE_RECORD, PLAIN_HTTP_ON_TLS_PORT, connection_environ

if TYPE_CHECKING:
    from .connection import HttpConnection

error_log = logging.getLogger("treadle.error")


def proxy_header(conn: HttpConnection) -> connection.Ready:
    """Read the PROXY protocol header, and not one byte more: what follows belongs to the
    TLS handshake or the request, which read it from the socket themselves."""
    if not conn.buf and not conn.server.proxy.trusts_peer(conn.remote_addr):
        error_log.debug("PROXY header expected from untrusted peer %s", conn.remote_addr)
        conn.close()
        return connection.Ready.CLOSED
    sock = conn.socket
    try:
        peeked = sock.recv(MAX_HEADER_SIZE, socket.MSG_PEEK)
    except BlockingIOError:
        return connection.Ready.WAIT
    except OSError:
        peeked = b""
    data = conn.buf + peeked
    if not peeked:
        conn.close()
        return connection.Ready.CLOSED
    try:
        parsed = parse_proxy_header(data)
    except ProxyProtocolError as exc:
        error_log.debug("bad PROXY header from %s: %s", conn.remote_addr, exc)
        conn.close()
        return connection.Ready.CLOSED
    # All of an incomplete header is header: take it, so the poller reports new bytes only.
    take = len(peeked) if parsed is None else parsed[1] - len(conn.buf)
    try:
        sock.recv(take)
    except OSError:
        conn.close()
        return connection.Ready.CLOSED
    if parsed is None:
        conn.buf = data
        return connection.Ready.WAIT
    info, consumed = parsed
    conn.buf = b""
    if info.source is not None:
        conn.remote_addr, conn.remote_port = info.source[0], str(info.source[1])
    conn.state = connection.State.HANDSHAKE if conn.tls is not None else connection.State.HEAD
    return conn.on_readable() if len(data) > consumed else connection.Ready.WAIT


def handshake(conn: HttpConnection) -> connection.Ready:
    """Advance the TLS handshake as far as the bytes that have arrived allow."""
    sock = conn.socket
    if not isinstance(sock, ssl.SSLSocket):
        assert conn.tls is not None
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return connection.Ready.WAIT
        except OSError:
            first = b""
        if not first:
            conn.close()
            return connection.Ready.CLOSED
        if first[0] != HANDSHAKE_RECORD:
            # Plain HTTP on a TLS port: say so in plain HTTP, as nginx does.
            conn.try_send(
                plain_response(
                    400, "Bad Request", PLAIN_HTTP_ON_TLS_PORT + "\n", conn.server.software
                )
            )
            conn.close_gracefully()
            return connection.Ready.CLOSED
        try:
            sock = conn.socket = conn.tls.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            conn.close()
            return connection.Ready.CLOSED
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        conn.want_write = False
        return connection.Ready.WAIT
    except ssl.SSLWantWriteError:
        conn.want_write = True
        return connection.Ready.WAIT
    except OSError as exc:  # SSLError included: a bad hello, an unknown CA, a reset
        error_log.debug("TLS handshake with %s failed: %s", conn.remote_addr, exc)
        conn.close()
        return connection.Ready.CLOSED
    conn.want_write = False
    conn.state = connection.State.HEAD
    conn.tls_environ = connection_environ(sock)
    if sock.pending():
        return conn.on_readable()
    return connection.Ready.WAIT


def tls_pending(sock: socket.socket) -> bytes:
    """Bytes a TLS socket has decrypted and holds (b"" for a plain socket)."""
    if not isinstance(sock, ssl.SSLSocket):
        return b""
    data = b""
    try:
        while size := sock.pending():
            piece = sock.recv(size)
            if not piece:
                break
            data += piece
    except OSError:
        pass  # what was read is kept; the error shows again on the next read
    return data
