"""Socket chores shared by the attacks: open many connections, send without blocking, close."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from ..harness import Target
from ..servers import THREADS
from ..wire import WireError, exchange, request


def open_many(
    address: tuple[str, int],
    count: int,
    *,
    timeout: float = 1.0,
    budget: float = 15.0,
    rcvbuf: int | None = None,
) -> tuple[list[socket.socket], int]:
    """Up to ``count`` connections, within ``budget`` seconds in all; (sockets, failures).
    A server that stops accepting still gets connections into its listen backlog: the kernel
    completes those handshakes for it, so the attack lands either way."""
    socks: list[socket.socket] = []
    failures = 0
    deadline = time.monotonic() + budget
    for _ in range(count):
        if time.monotonic() >= deadline:
            failures += count - len(socks) - failures
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            failures += 1
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)  # a timeout would make every send wait for room first
        socks.append(sock)
    return socks, failures


def send_some(sock: socket.socket, data: bytes) -> int | None:
    """Send what the socket takes right now; None when the peer has closed or reset. (The
    socket must be non-blocking: with a timeout, Python waits for room before sending.)"""
    try:
        return sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return 0
    except OSError:
        return None


def peer_closed(sock: socket.socket) -> bool:
    """True when the peer has closed or reset (anything it sent first is read and dropped).
    Never waits, whatever the socket's timeout."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while poller.poll(0):
        try:
            if not sock.recv(65536):
                return True
        except OSError:
            return True
    return False


def close_all(socks: Iterable[socket.socket], reset: bool = False) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            if reset:  # SO_LINGER 0: an RST now, no FIN_WAIT left on our side
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


def warm_up(target: Target) -> None:
    """Make the server start every thread it will ever start (gunicorn's pool grows on demand)
    and finish starting up, so that a baseline of threads and fds taken next is a fair one."""
    data = request("GET", "/sleep?ms=50", close=True)

    def ask(_: int) -> None:
        with contextlib.suppress(WireError):
            exchange(target.address, data, 5.0)

    with ThreadPoolExecutor(THREADS * 2) as pool:
        list(pool.map(ask, range(THREADS * 2)))
