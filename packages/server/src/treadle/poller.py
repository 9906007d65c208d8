"""The acceptor's poller: listening sockets plus every parked connection.

``park(conn)`` may be called from any thread (a worker handing a connection back); ``poll()``
only from the acceptor. A connection is watched for readability, or for writability while its
``want_write`` is set (a TLS handshake that must send before it can read). A connection is
reported at most once per ``park()``: after that it belongs to whoever the acceptor gives it
to, until it is parked again.

On Linux, ``EpollPoller`` gets that from the kernel: EPOLLONESHOT disarms a connection when it
fires, and re-arming it is one thread-safe ``epoll_ctl``, so a worker hands a connection back
without waking the acceptor. Elsewhere, ``SelectorPoller`` keeps the same promise with a queue
of hand-backs and a wake-up socket pair.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import socket
import threading
from collections import deque
from typing import Protocol

from .connection import HttpConnection


class Poller(Protocol):
    def add_listener(self, sock: socket.socket) -> None: ...
    def remove_listener(self, sock: socket.socket) -> None: ...
    def park(self, conn: HttpConnection) -> None: ...
    def discard(self, conn: HttpConnection) -> None: ...
    def poll(self, timeout: float) -> list[int]: ...
    def wake(self) -> None: ...
    def close(self) -> None: ...


class _Waker:
    """A socket pair whose read end becomes readable when ``wake()`` is called."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full means already awake; closed means stopping
            self.writer.send(b"\0")

    def drain(self) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class EpollPoller:
    _ONESHOT_IN = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "epoll") else 0
    _ONESHOT_OUT = select.EPOLLOUT | select.EPOLLONESHOT if hasattr(select, "epoll") else 0

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._waker = _Waker()
        self._epoll.register(self._waker.reader.fileno(), select.EPOLLIN)

    def add_listener(self, sock: socket.socket) -> None:
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def remove_listener(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(sock.fileno())

    def park(self, conn: HttpConnection) -> None:
        events = self._ONESHOT_OUT if conn.want_write else self._ONESHOT_IN
        if conn.registered:
            self._epoll.modify(conn.fd, events)
        else:
            conn.registered = True
            self._epoll.register(conn.fd, events)

    def discard(self, conn: HttpConnection) -> None:
        """Disarm a parked connection (acceptor thread only): it reports nothing until parked
        again, so it can be read, dispatched or closed here."""
        if conn.registered:
            with contextlib.suppress(OSError):
                self._epoll.modify(conn.fd, 0)

    def poll(self, timeout: float) -> list[int]:
        try:
            events = self._epoll.poll(timeout, 1024)
        except InterruptedError:
            return []
        waker = self._waker.reader.fileno()
        fds = []
        for fd, _ in events:
            if fd == waker:
                self._waker.drain()
            else:
                fds.append(fd)
        return fds

    def wake(self) -> None:
        self._waker.wake()

    def close(self) -> None:
        self._epoll.close()
        self._waker.close()


class SelectorPoller:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._waker = _Waker()
        self._selector.register(self._waker.reader, selectors.EVENT_READ)
        self._handbacks: deque[HttpConnection] = deque()
        self._owner = threading.get_ident()

    def add_listener(self, sock: socket.socket) -> None:
        self._selector.register(sock, selectors.EVENT_READ)

    def remove_listener(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def park(self, conn: HttpConnection) -> None:
        self._handbacks.append(conn)
        if threading.get_ident() != self._owner:
            self._waker.wake()

    def discard(self, conn: HttpConnection) -> None:
        """Forget a parked connection about to be closed (acceptor thread only)."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.socket)

    def poll(self, timeout: float) -> list[int]:
        self._owner = threading.get_ident()
        self._register_handbacks()
        fds = []
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._waker.reader:
                self._waker.drain()
                continue
            fds.append(key.fd)
            if isinstance(key.data, HttpConnection):
                self._selector.unregister(key.fileobj)  # report it once per park()
        self._register_handbacks()
        return fds

    def _register_handbacks(self) -> None:
        while self._handbacks:
            conn = self._handbacks.popleft()
            if not conn.closed:
                events = selectors.EVENT_WRITE if conn.want_write else selectors.EVENT_READ
                self._selector.register(conn.socket, events, conn)

    def wake(self) -> None:
        self._waker.wake()

    def close(self) -> None:
        self._selector.close()
        self._waker.close()


def default_poller() -> Poller:
    if hasattr(select, "epoll") and os.name == "posix":
        return EpollPoller()
    return SelectorPoller()
