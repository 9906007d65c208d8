"""``HttpServer``: bind, accept, park idle connections, dispatch ready ones, stop in bounded time.

The acceptor thread runs ``start()`` -> ``tick()`` in a loop. Each tick polls the listening
sockets and every parked connection at once: a readable listener is accepted from until it runs
dry; a readable connection receives, and once a request is complete it is ``put()`` on the
``ThreadPool`` (or answered 503 when the queue is full). Deadlines are swept about every quarter
second: an idle keep-alive connection is closed, a half-sent head or body gets 408.

With ``stats_path`` set, requests for that path are answered here, by the acceptor, so the
numbers stay readable when every worker is busy.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterable
from typing import Any

from . import __version__
from .connection import HttpConnection, Ready, State
from .limits import Limits
from .poller import Poller, default_poller
from .workers import IDLE_TIMEOUT, ThreadPool
from .wsgi import Environ, WSGIApp, WSGIGateway_10, base_environ

error_log = logging.getLogger("treadle.error")
access_log = logging.getLogger("treadle.access")

# (host, port), "host:port", "[v6]:port", a Unix socket path, "fd://N" (an inherited listening
# socket, e.g. from systemd), or a socket object already bound.
BindAddr = tuple[str, int] | str | socket.socket
# Linux's default SOMAXCONN since 5.4; the kernel caps it at net.core.somaxconn anyway.
BACKLOG = 4096
QUEUE_SIZE = 1024
SWEEP_INTERVAL = 0.25

SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nConnection: close\r\n\r\nserver is saturated\n"
)


def parse_bind_addr(bind_addr: BindAddr) -> tuple[int, Any]:
    """(family, address) for ``(host, port)``, ``"host:port"``, ``"[v6]:port"`` or a path;
    ``(AF_UNSPEC, fd)`` for ``"fd://N"`` and ``(AF_UNSPEC, sock)`` for a socket object."""
    if isinstance(bind_addr, socket.socket):
        return socket.AF_UNSPEC, bind_addr
    if isinstance(bind_addr, tuple):
        host, number = bind_addr
        return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(number))
    text = bind_addr
    if text.startswith("fd://"):
        if not text[5:].isdigit():
            raise ValueError(f"bind address {text!r}: expected fd://N, N a file descriptor number")
        return socket.AF_UNSPEC, int(text[5:])
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    if "/" in text or text.startswith("."):
        return socket.AF_UNIX, text
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"bind address {text!r}: expected [IPv6]:PORT")
        family = socket.AF_INET6
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"bind address {text!r}: expected HOST:PORT or a socket path")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bind address {text!r}: invalid port")
    return family, (host or "0.0.0.0", int(port))


class HttpServer:
    gateway = WSGIGateway_10
    software = f"treadle/{__version__}"

    def __init__(
        self,
        bind_addr: BindAddr | Iterable[BindAddr],
        wsgi_app: WSGIApp,
        threads: int = 5,
        max_threads: int | None = None,
        *,
        limits: Limits | None = None,
        backlog: int = BACKLOG,
        queue_size: int = QUEUE_SIZE,
        stats_path: str | None = None,
        thread_idle_timeout: float = IDLE_TIMEOUT,
        poller: Poller | None = None,
        unix_socket_mode: int | None = None,
    ) -> None:
        if isinstance(bind_addr, (str, tuple, socket.socket)):
            self.bind_addrs: list[BindAddr] = [bind_addr]
        else:
            self.bind_addrs = list(bind_addr)
        if not self.bind_addrs:
            raise ValueError("no address to bind")
        for addr in self.bind_addrs:
            parse_bind_addr(addr)
        self.wsgi_app = wsgi_app
        self.limits = limits or Limits()
        self.backlog = backlog
        self.requests = ThreadPool(self, threads, max_threads, queue_size, thread_idle_timeout)
        self.stats_path = stats_path.encode("ascii") if stats_path else None
        self._poller = poller
        self.sockets: list[socket.socket] = []
        self.ready = False
        self.stopping = False
        self._stopped = threading.Event()
        self._prepared = False
        self._conns: dict[int, HttpConnection] = {}
        self._listeners: dict[int, socket.socket] = {}
        self._started_at = time.monotonic()
        self._acceptor: threading.Thread | None = None
        self._accepted = 0
        self._shed = 0
        self.unix_socket_mode = unix_socket_mode
        # path -> identity of the file we made: stop() unlinks it only if it is still that one
        self._unix_paths: dict[str, tuple[int, int, int]] = {}
        self.environ_base: Environ = {}

    # -- binding -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Bind and listen on every address and start the thread pool (``start()`` calls this)."""
        if self._prepared:
            return
        self._poller = self._poller or default_poller()
        try:
            for addr in self.bind_addrs:
                self.sockets.append(self._bind(addr))
        except OSError:
            for sock in self.sockets:
                sock.close()
            self.sockets = []
            self._unlink_unix_paths()
            self._poller.close()
            self._poller = None
            raise
        for sock in self.sockets:
            self._listeners[sock.fileno()] = sock
            self._poller.add_listener(sock)
            error_log.info("treadle %s listening on %s", __version__, self.describe(sock))
        self.environ_base = base_environ(self)
        self.requests.start()
        self._prepared = True
        self.ready = True

    def _bind(self, bind_addr: BindAddr) -> socket.socket:
        family, addr = parse_bind_addr(bind_addr)
        if family == socket.AF_UNSPEC:
            return self._adopt(addr)
        if family == socket.AF_UNIX:
            _remove_stale_unix_socket(addr)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(addr)
                # Before listen(), so no client connects while the mode is still the umask's.
                if self.unix_socket_mode is not None:
                    os.chmod(addr, self.unix_socket_mode)
            except OSError:
                sock.close()
                raise
            self._unix_paths[addr] = _identity(addr)
        else:
            infos = socket.getaddrinfo(
                addr[0], addr[1], family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )
            af, socktype, proto, _, sockaddr = infos[0]
            sock = socket.socket(af, socktype, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError:
                sock.close()
                raise
        sock.listen(self.backlog)
        sock.setblocking(False)
        return sock

    def _adopt(self, sock_or_fd: socket.socket | int) -> socket.socket:
        """An inherited or caller-made socket: serve on it as it is (its owner made it; the
        backlog is the owner's too, unless it is not listening yet)."""
        if isinstance(sock_or_fd, int):
            try:
                sock = socket.socket(fileno=sock_or_fd)
            except OSError as exc:
                raise OSError(exc.errno, f"fd://{sock_or_fd}: {exc.strerror}") from None
            if sock.type != socket.SOCK_STREAM:
                sock.detach()  # not ours to close
                raise OSError(errno.ENOTSUP, f"fd://{sock_or_fd} is not a stream socket")
        else:
            sock = sock_or_fd
        accepting = getattr(socket, "SO_ACCEPTCONN", None)
        if accepting is None or not sock.getsockopt(socket.SOL_SOCKET, accepting):
            sock.listen(self.backlog)
        sock.setblocking(False)
        return sock

    @staticmethod
    def describe(sock: socket.socket) -> str:
        addr = sock.getsockname()
        if sock.family == socket.AF_UNIX:
            return f"unix:{addr}"
        if sock.family == socket.AF_INET6:
            return f"http://[{addr[0]}]:{addr[1]}"
        return f"http://{addr[0]}:{addr[1]}"

    @property
    def bind_addr(self) -> Any:
        """The first real bound address (``(host, port)``; a path for Unix sockets)."""
        if not self.sockets:
            raise RuntimeError("the server is not bound yet; call prepare() or start()")
        return self.sockets[0].getsockname()

    def server_name_and_port(self) -> tuple[str, str]:
        addr = self.bind_addr
        if isinstance(addr, tuple):
            return str(addr[0]), str(addr[1])
        return "localhost", ""

    # -- the acceptor loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Bind (if needed) and serve until ``stop()`` is called or ``ready`` is cleared."""
        if self.stopping:
            return
        self.prepare()
        self._acceptor = threading.current_thread()
        self._stopped.clear()
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        try:
            while self.ready:
                self.tick(SWEEP_INTERVAL)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + SWEEP_INTERVAL
        finally:
            self._stopped.set()

    def tick(self, timeout: float = SWEEP_INTERVAL) -> None:
        """One round: accept what waits, receive from readable parked connections."""
        assert self._poller is not None
        for fd in self._poller.poll(timeout):
            listener = self._listeners.get(fd)
            if listener is not None:
                self._accept(listener)
                continue
            conn = self._conns.get(fd)
            if conn is None:
                continue
            conn.parked_at = 0.0  # fired: it is ours until parked again
            outcome = conn.on_readable()
            if outcome is Ready.DISPATCH:
                self._dispatch(conn)
            elif outcome is Ready.WAIT:
                conn.parked_at = time.monotonic()
                self._poller.park(conn)

    def _accept(self, listener: socket.socket) -> None:
        assert self._poller is not None
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    error_log.error("cannot accept: %s", exc)
                    return
                if exc.errno == errno.EBADF:  # the listener was closed by stop()
                    return
                continue  # ECONNABORTED and kin: that client is gone
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = HttpConnection(self, sock, addr)
            self._accepted += 1
            self._conns[conn.fd] = conn
            conn.parked_at = time.monotonic()
            conn.deadline = conn.parked_at + self.limits.timeout
            self._poller.park(conn)

    def _dispatch(self, conn: HttpConnection) -> None:
        if self.stats_path is not None and self._is_stats_request(conn.buf):
            self._answer_stats(conn)
            return
        if not self.requests.put(conn):
            self._shed += 1
            conn.buf = b""
            with contextlib.suppress(OSError):
                conn.socket.send(SHED_RESPONSE)
            conn.close_gracefully()

    def _sweep(self, now: float) -> None:
        assert self._poller is not None
        # parked_at is set just before a connection is parked and cleared when it fires, so
        # only connections in the poller (this thread's own) are expired here.
        for conn in list(self._conns.values()):
            if conn.parked_at and conn.deadline <= now:
                self._poller.discard(conn)
                conn.expire(now)

    def interrupt(self) -> None:
        """Make ``start()`` return soon (safe from a signal handler); then call ``stop()``."""
        self.ready = False
        if self._poller is not None:
            self._poller.wake()

    def park(self, conn: HttpConnection) -> None:
        """Hand a connection back to the poller (any thread)."""
        assert self._poller is not None
        if self.stopping and conn.state is State.HEAD and not conn.buf:
            conn.close()
            return
        self._poller.park(conn)

    def forget(self, conn: HttpConnection) -> None:
        self._conns.pop(conn.fd, None)

    # -- counters and stats ----------------------------------------------------------------------

    @property
    def access_logging(self) -> bool:
        return access_log.isEnabledFor(logging.INFO)

    def stats(self) -> dict[str, int | float]:
        pool = self.requests
        busy = pool.busy
        return {
            "threads": pool.threads,
            "min_threads": pool.min,
            "max_threads": pool.max,
            "busy_threads": busy,
            "idle_threads": pool.threads - busy,
            "queue_depth": pool.qsize,
            "queue_size": pool.queue_size,
            "parked_connections": sum(1 for c in list(self._conns.values()) if c.parked_at),
            "open_connections": len(self._conns),
            "accepted_connections": self._accepted,
            "requests_served": pool.served,
            "shed_503": self._shed,
            "uptime_seconds": round(time.monotonic() - self._started_at, 3),
        }

    def _is_stats_request(self, buf: bytes) -> bool:
        assert self.stats_path is not None
        prefix = b"GET " + self.stats_path
        return buf.startswith(prefix) and buf[len(prefix) : len(prefix) + 1] in (b" ", b"?")

    def _answer_stats(self, conn: HttpConnection) -> None:
        stats = self.stats()
        line = conn.buf.split(b"\r\n", 1)[0]
        if b"format=prometheus" in line:
            body = "".join(
                f"# TYPE treadle_{key} gauge\ntreadle_{key} {value}\n"
                for key, value in stats.items()
            ).encode()
            ctype = b"text/plain; version=0.0.4"
        else:
            body = json.dumps(stats).encode()
            ctype = b"application/json"
        conn.buf = b""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: %b\r\nContent-Length: %d\r\n" % (ctype, len(body))
        with contextlib.suppress(OSError):
            conn.socket.send(head + b"Connection: close\r\n\r\n" + body)
        conn.close_gracefully()

    # -- stopping -----------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting now, let in-flight requests finish within ``timeout``, close the rest.
        Always returns, even when an application is stuck."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self.ready = False
        self.stopping = True
        poller = self._poller
        if poller is not None:
            poller.wake()
        acceptor = self._acceptor
        if acceptor is not None and acceptor is not threading.current_thread():
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
        for sock in self.sockets:
            if poller is not None:
                poller.remove_listener(sock)
            sock.close()
        self.sockets = []
        self._unlink_unix_paths()
        for conn in list(self._conns.values()):
            if conn.parked_at:
                conn.close()
        stuck = self.requests.stop(max(0.0, deadline - time.monotonic()))
        for conn in stuck:
            with contextlib.suppress(OSError):
                conn.socket.shutdown(socket.SHUT_RDWR)
        for conn in list(self._conns.values()):
            conn.close()
        if poller is not None:
            poller.close()
            self._poller = None
        self._prepared = False

    def _unlink_unix_paths(self) -> None:
        for path, identity in self._unix_paths.items():
            with contextlib.suppress(OSError):
                if _identity(path) == identity:  # not a file another server put there since
                    os.unlink(path)
        self._unix_paths = {}


def _identity(path: str) -> tuple[int, int, int]:
    """Device, inode and creation time: an inode number alone may be reused at once."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _remove_stale_unix_socket(path: str) -> None:
    """Clear ``path`` for a new socket if it holds one nobody listens on; refuse otherwise."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # a live server with a full backlog does not answer at once
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # left by a server that is gone
            return
        except (TimeoutError, BlockingIOError):
            pass
        except OSError:
            return  # cannot tell (e.g. no permission); bind() reports EADDRINUSE
    raise OSError(errno.EADDRINUSE, f"another server is listening on {path}")


def serve(
    app: WSGIApp,
    bind: BindAddr | Iterable[BindAddr] = ("127.0.0.1", 8000),
    *,
    graceful_timeout: float = 10.0,
    **kwargs: Any,
) -> None:
    """Serve ``app`` in the foreground: SIGTERM stops gracefully, SIGINT (Ctrl-C) at once.
    Logs its listening line (setting up logging if nothing has) and tells systemd when ready."""
    from .foreground import basic_logging, run  # foreground imports this module

    basic_logging()
    run(HttpServer(bind, app, **kwargs), graceful_timeout)
