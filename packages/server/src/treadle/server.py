"""``HttpServer``: bind, accept, park idle connections, dispatch ready ones, stop in bounded time.

The acceptor thread runs ``start()`` -> ``tick()`` in a loop. Each tick polls the listening
sockets and every parked connection at once: a readable listener is accepted from until it runs
dry; a readable connection receives, and once a request is complete it is ``put()`` on the
``ThreadPool`` (or answered 503 when the queue is full). Deadlines are swept about every quarter
second: an idle keep-alive connection is closed, a half-sent head or body gets 408.

The acceptor must outlive anything a client does. At ``max_connections`` (by default the fd
limit less a reserve) it first closes the oldest idle connections, then stops polling the
listeners for ``ACCEPT_BACKOFF`` (the kernel's backlog holds new clients meanwhile); when
``accept()`` fails for want of descriptors or memory it backs off the same way instead of
spinning on a listener that stays readable. Both are logged at most once a second.

``stop(timeout)`` is graceful: it accepts what already waits in the listen backlog and closes
the listeners, closes idle keep-alive connections, gives a connection whose first request has
not arrived yet ``FIRST_REQUEST_GRACE`` for it, serves every request that has arrived (with
``Connection: close``) and lets in-flight ones finish, and buffered responses leave (state
SEND: a connection still sending is busy, never idle), until the deadline, which ``hurry()``
(a second signal) brings forward to now. What it cuts at the deadline it names in the log,
and a last line says how the server stopped. With ``shared_listeners`` (other processes accept
on the same sockets: treadle's supervisor, gunicorn) the backlog is left to them.

Process managers get a few small hooks: ``heartbeat`` (called by the acceptor about every
``SWEEP_INTERVAL``), ``on_request_limit`` (once ``request_limit`` requests are in),
``stats_source`` (the stats path answers for every worker process) and ``shared_listeners``;
``open_listener()`` binds a socket the way the server does, for a supervisor that binds once
for all its workers.

With ``stats_path`` set, requests for that path are answered here, by the acceptor, so the
numbers stay readable when every worker is busy.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import __version__
from .accesslog import log_refusal
from .bodies import MemoryBudget
from .connection import HttpConnection, Ready, State
from .errors import ServiceUnavailable
from .forwarded import ProxyTrust
from .limits import Limits
from .poller import Poller, default_poller
from .workers import IDLE_TIMEOUT, ThreadPool
from .wsgi import Environ, WSGIApp, WSGIGateway_10, base_environ, check_root_path

error_log = logging.getLogger("treadle.error")
access_log = logging.getLogger("treadle.access")

# (host, port), "host:port", "[v6]:port", a Unix socket path, "fd://N" (an inherited listening
# socket, e.g. from systemd or treadle's supervisor), or a socket object already bound.
BindAddr = tuple[str, int] | str | socket.socket
# Linux's default SOMAXCONN since 5.4; the kernel caps it at net.core.somaxconn anyway.
BACKLOG = 4096
QUEUE_SIZE = 1024
SWEEP_INTERVAL = 0.25
# After accept() fails for want of descriptors or memory, or at the connection limit, the
# listeners rest this long before the acceptor tries again.
ACCEPT_BACKOFF = 0.1
# At most one note about refused accepts per this many seconds.
ACCEPT_NOTE_INTERVAL = 1.0
# File descriptors kept back from the default connection limit for what serving needs besides
# client sockets: spooled bodies, log files, the application's own files and sockets.
FD_RESERVE = 64
# How often a stopping server looks at its deadline.
DRAIN_TICK = 0.05

# A connection accepted before a stop began whose first request has not arrived yet gets this
# long (within the graceful timeout) for it: its client was told "connected" and may be
# sending it right now.
FIRST_REQUEST_GRACE = 1.0

Stats = dict[str, int | float]
StatsSource = Callable[[Stats], list[Stats]]

SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nConnection: close\r\n\r\nserver is saturated\n"
)


def default_max_connections() -> int:
    """The soft limit on open files, less ``FD_RESERVE`` (or 10,000 where it cannot be read)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 10_000
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, soft - FD_RESERVE)


def bind_scheme(bind_addr: BindAddr) -> str | None:
    """``"https"`` or ``"http"`` when the address says so (``https://HOST:PORT``), else None."""
    if isinstance(bind_addr, str):
        for scheme in ("http", "https"):
            if bind_addr.startswith(scheme + "://"):
                return scheme
    return None


def parse_bind_addr(bind_addr: BindAddr) -> tuple[int, Any]:
    """(family, address) for ``(host, port)``, ``"host:port"``, ``"[v6]:port"`` or a path;
    ``(AF_UNSPEC, fd)`` for ``"fd://N"`` and ``(AF_UNSPEC, sock)`` for a socket object; a
    string may start with ``http://`` or ``https://`` (see ``bind_scheme``), an inherited socket
    too (``https://fd://4``: the socket's scheme when the server has a TLS context)."""
    if isinstance(bind_addr, socket.socket):
        return socket.AF_UNSPEC, bind_addr
    if isinstance(bind_addr, tuple):
        host, number = bind_addr
        return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, int(number))
    text = bind_addr
    scheme = bind_scheme(text)
    if scheme is not None:
        text = text[len(scheme) + 3 :]
    if text.startswith("fd://"):
        if not text[5:].isdigit():
            raise ValueError(f"bind address {text!r}: expected fd://N, N a file descriptor number")
        return socket.AF_UNSPEC, int(text[5:])
    if scheme is not None and "/" in text:
        raise ValueError(f"bind address {bind_addr!r}: expected {scheme}://HOST:PORT")
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


def open_listener(
    bind_addr: BindAddr, backlog: int = BACKLOG, unix_socket_mode: int | None = None
) -> socket.socket:
    """A listening, non-blocking socket for ``bind_addr``. ``fd://N`` and socket objects are
    adopted as they are (their owner made them). A Unix socket file made here is the caller's
    to remove when done (``file_identity`` now, ``remove_unix_socket`` then)."""
    family, addr = parse_bind_addr(bind_addr)
    if family == socket.AF_UNSPEC:
        return _adopt(addr, backlog)
    if family == socket.AF_UNIX:
        _remove_stale_unix_socket(addr)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        try:
            # Before listen(), so no client connects while the mode is still the umask's.
            if unix_socket_mode is not None:
                os.chmod(addr, unix_socket_mode)
            sock.listen(backlog)
        except OSError:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(addr)
            raise
    else:
        infos = socket.getaddrinfo(
            addr[0], addr[1], family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        af, socktype, proto, _, sockaddr = infos[0]
        sock = socket.socket(af, socktype, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
    sock.setblocking(False)
    return sock


def describe_socket(sock: socket.socket, scheme: str = "http") -> str:
    """``http://127.0.0.1:8000``, ``https://[::1]:8443``, ``unix:/run/app.sock``..."""
    addr = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{addr}" if scheme == "http" else f"https+unix:{addr}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{addr[0]}]:{addr[1]}"
    return f"{scheme}://{addr[0]}:{addr[1]}"


def _adopt(sock_or_fd: socket.socket | int, backlog: int) -> socket.socket:
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
        sock.listen(backlog)
    sock.setblocking(False)
    return sock


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
        max_connections: int | None = None,
        unix_socket_mode: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyTrust | None = None,
        root_path: str = "",
        proxy_protocol: bool = False,
        shared_listeners: bool = False,
        heartbeat: Callable[[], None] | None = None,
        request_limit: int | None = None,
        on_request_limit: Callable[[], None] | None = None,
        stats_source: StatsSource | None = None,
    ) -> None:
        if isinstance(bind_addr, (str, tuple, socket.socket)):
            self.bind_addrs: list[BindAddr] = [bind_addr]
        else:
            self.bind_addrs = list(bind_addr)
        if not self.bind_addrs:
            raise ValueError("no address to bind")
        for addr in self.bind_addrs:
            parse_bind_addr(addr)
            if bind_scheme(addr) == "https" and ssl_context is None:
                raise ValueError(f"bind address {addr!r} is https:// but no ssl_context is given")
        # A bind address without a scheme is TLS when the server has a context.
        self.ssl_context = ssl_context
        self._tls: dict[int, ssl.SSLContext] = {}  # listener fd -> its context
        self.wsgi_app = wsgi_app
        # Which peers are trusted proxies (for forwarded headers and PROXY protocol headers);
        # without one, only the loopback addresses, and no headers are read.
        self.proxy = proxy if proxy is not None else ProxyTrust(headers="none")
        self.forwarded = self.proxy if self.proxy.reads_headers else None
        self.root_path = check_root_path(root_path)
        self.proxy_protocol = proxy_protocol
        # Other processes accept on the same listening sockets (treadle's supervisor, gunicorn):
        # a stop leaves the connections waiting in the backlog to them.
        self.shared_listeners = shared_listeners
        # Called by the acceptor about every SWEEP_INTERVAL while it serves: a process manager's
        # liveness signal comes from the loop that must be alive.
        self.heartbeat = heartbeat
        # Called by the acceptor once this many requests have been handed to the workers (a
        # process manager's --max-requests); if it interrupt()s, nothing more is accepted, so
        # the count is met to the request. Requests a client pipelined behind another count
        # as one.
        self.request_limit = request_limit
        self.on_request_limit = on_request_limit
        self._dispatched = 0
        # Given this server's stats(), every worker process's (each with its "pid"): the stats
        # path then answers them all and their total.
        self.stats_source = stats_source
        self.limits = limits or Limits()
        self.body_budget = MemoryBudget(self.limits.body_memory_budget)
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections or default_max_connections()
        self.backlog = backlog
        self.requests = ThreadPool(self, threads, max_threads, queue_size, thread_idle_timeout)
        self.stats_path = stats_path.encode("ascii") if stats_path else None
        self._poller = poller
        self.sockets: list[socket.socket] = []
        self.ready = False
        self.stopping = False
        self._interrupted = False  # by a signal, perhaps before ready was ever set
        self._stop_deadline = 0.0
        self._hurried = False
        self._accept_paused = False
        self._accept_resume_at = 0.0
        self._accept_note_at = -ACCEPT_NOTE_INTERVAL
        self._accept_quiet = 0
        self._evicted = 0
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
                sock = self._bind(addr)
                self.sockets.append(sock)
                if (bind_scheme(addr) or ("https" if self.ssl_context else "http")) == "https":
                    assert self.ssl_context is not None
                    self._tls[sock.fileno()] = self.ssl_context
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
        sock = open_listener(bind_addr, self.backlog, self.unix_socket_mode)
        family, addr = parse_bind_addr(bind_addr)
        if family == socket.AF_UNIX:
            self._unix_paths[addr] = file_identity(addr)
        return sock

    def describe(self, sock: socket.socket) -> str:
        return describe_socket(sock, "https" if sock.fileno() in self._tls else "http")

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
        if self.stopping or self._interrupted:
            return
        self.prepare()
        self._acceptor = threading.current_thread()
        self._stopped.clear()
        next_sweep = time.monotonic() + SWEEP_INTERVAL
        try:
            while self.ready and not self._interrupted:
                self.tick(ACCEPT_BACKOFF if self._accept_paused else SWEEP_INTERVAL)
                now = time.monotonic()
                if self._accept_paused and now >= self._accept_resume_at:
                    self._resume_accepting()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + SWEEP_INTERVAL
                    self._beat()
        finally:
            self._stopped.set()

    def _beat(self) -> None:
        if self.heartbeat is None:
            return
        try:
            self.heartbeat()
        except Exception:  # the acceptor outlives its hooks too
            error_log.exception("heartbeat hook failed")

    def tick(self, timeout: float = SWEEP_INTERVAL) -> None:
        """One round: accept what waits, receive from readable parked connections."""
        assert self._poller is not None
        for fd in self._poller.poll(timeout):
            listener = self._listeners.get(fd)
            if listener is not None:
                self._accept(listener)
                continue
            conn = self._conns.get(fd)
            if conn is not None:
                self._on_ready(conn)

    def _on_ready(self, conn: HttpConnection) -> None:
        try:
            self._advance(conn)
        except Exception:  # the acceptor outlives whatever one connection does
            error_log.exception("unexpected error on a connection from %s", conn.remote_addr)
            conn.close()

    def _advance(self, conn: HttpConnection) -> None:
        assert self._poller is not None
        conn.parked_at = 0.0  # fired: it is ours until parked again
        outcome = conn.on_readable()
        if outcome is Ready.DISPATCH:
            self._dispatch(conn)
        elif outcome is Ready.WAIT:
            conn.parked_at = time.monotonic()
            self._poller.park(conn)

    def _accept(self, listener: socket.socket) -> None:
        assert self._poller is not None
        accepted = False
        while True:
            if self._interrupted and not self.stopping:
                return  # told to stop (a hook, a signal): the accept loop ends next
            if accepted and self.shared_listeners:
                # One at a time: the other processes polling this socket take the rest, so a
                # burst of connections is spread over them instead of landing on whoever woke
                # first. The listener stays readable while more wait.
                return
            if len(self._conns) >= self.max_connections:
                # Room is made only for a client known to wait: the listener fired and none
                # was taken yet. A level-triggered listener fires again if more wait.
                if accepted:
                    return
                if not self._make_room():
                    self._pause_accepting(f"connection limit ({self.max_connections}) reached")
                    return
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(f"cannot accept: {exc}")
                    return
                if exc.errno == errno.EBADF:  # the listener was closed by stop()
                    return
                continue  # ECONNABORTED and kin: that client is gone
            try:
                sock.setblocking(False)
                if sock.family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                sock.close()
                continue
            conn = HttpConnection(self, sock, addr, self._tls.get(listener.fileno()))
            accepted = True
            self._accepted += 1
            self._conns[conn.fd] = conn
            conn.parked_at = time.monotonic()
            conn.deadline = conn.parked_at + self.limits.timeout
            self._poller.park(conn)

    def _make_room(self) -> bool:
        """At the connection limit, close connections that hold nothing (silent since
        accepted first, then idle keep-alive, longest idle first), a sixteenth of the limit at
        a time so that the search is paid for rarely. False when none could be closed."""
        assert self._poller is not None
        idle = [conn for conn in self._conns.values() if conn.parked_at and conn.idle]
        if not idle:
            return False
        # Connections that never sent a request go first (a client that connects and waits
        # is the cheapest way to hold a slot), then idle keep-alive ones, longest idle first.
        idle.sort(key=lambda conn: (conn.requests > 0, conn.parked_at))
        for conn in idle[: max(1, self.max_connections // 16)]:
            self._poller.discard(conn)
            conn.close()
            self._evicted += 1
        return True

    def _pause_accepting(self, why: str) -> None:
        assert self._poller is not None
        now = time.monotonic()
        if not self._accept_paused:
            for sock in self.sockets:
                self._poller.remove_listener(sock)
            self._accept_paused = True
        self._accept_resume_at = now + ACCEPT_BACKOFF
        if now - self._accept_note_at < ACCEPT_NOTE_INTERVAL:
            self._accept_quiet += 1
            return
        quiet, self._accept_quiet, self._accept_note_at = self._accept_quiet, 0, now
        error_log.warning(
            "%s; not accepting for %g s (%d open connections)%s",
            why,
            ACCEPT_BACKOFF,
            len(self._conns),
            f"; {quiet} more such pauses since the last note" if quiet else "",
        )

    def _resume_accepting(self) -> None:
        assert self._poller is not None
        self._accept_paused = False
        for sock in self.sockets:
            self._poller.add_listener(sock)

    def _dispatch(self, conn: HttpConnection) -> None:
        if self.stats_path is not None and self._is_stats_request(conn.buf):
            self._answer_stats(conn)
            return
        self._dispatched += 1
        if self._dispatched == self.request_limit and self.on_request_limit is not None:
            try:
                self.on_request_limit()
            except Exception:
                error_log.exception("request limit hook failed")
        if not self.requests.put(conn):
            self._shed += 1
            with contextlib.suppress(OSError):
                conn.socket.send(SHED_RESPONSE)
            log_refusal(conn, ServiceUnavailable("server is saturated"), len(SHED_RESPONSE))
            conn.buf = b""
            conn.close_gracefully()

    def _sweep(self, now: float) -> None:
        assert self._poller is not None
        # parked_at is set just before a connection is parked and cleared when it fires, so
        # only connections in the poller (this thread's own) are expired here.
        for conn in list(self._conns.values()):
            if conn.parked_at and conn.deadline <= now:
                self._poller.discard(conn)
                if conn.out is not None:
                    self._on_ready(conn)  # a send is tried whatever the poller said (output.py)
                else:
                    conn.expire(now)

    def interrupt(self) -> None:
        """Make ``start()`` return soon (safe from a signal handler, even one that arrives
        before ``start()``); then call ``stop()``."""
        self._interrupted = True
        self.ready = False
        if self._poller is not None:
            self._poller.wake()

    def hurry(self) -> None:
        """Bring a graceful stop's deadline forward to now (safe from a signal handler)."""
        self._hurried = True
        self._stop_deadline = time.monotonic()
        self.interrupt()

    def park(self, conn: HttpConnection) -> None:
        """Hand a connection back to the poller (any thread)."""
        assert self._poller is not None
        if self.stopping and conn.idle and not _readable(conn.socket):
            conn.close()  # idle while stopping; a request already on its way is still served
            return
        self._poller.park(conn)

    def forget(self, conn: HttpConnection) -> None:
        self._conns.pop(conn.fd, None)

    # -- counters and stats ----------------------------------------------------------------------

    @property
    def access_logging(self) -> bool:
        return access_log.isEnabledFor(logging.INFO)

    def stats(self) -> Stats:
        pool = self.requests
        busy = pool.busy
        conns = list(self._conns.values())
        return {
            "threads": pool.threads,
            "min_threads": pool.min,
            "max_threads": pool.max,
            "busy_threads": busy,
            "stalled_threads": pool.stalled,
            "idle_threads": pool.threads - busy,
            "queue_depth": pool.qsize,
            "queue_size": pool.queue_size,
            "parked_connections": sum(1 for c in conns if c.parked_at),
            "receiving_connections": sum(1 for c in conns if c.parked_at and c.receiving),
            "sending_connections": sum(1 for c in conns if c.out is not None),
            "send_buffer_bytes": sum(len(out) for c in conns if (out := c.out) is not None),
            "open_connections": len(self._conns),
            "max_connections": self.max_connections,
            "evicted_idle_connections": self._evicted,
            "accepted_connections": self._accepted,
            "requests_served": pool.served,
            "shed_503": self._shed,
            "body_memory_bytes": self.body_budget.used,
            "uptime_seconds": round(time.monotonic() - self._started_at, 3),
        }

    def _is_stats_request(self, buf: bytes) -> bool:
        assert self.stats_path is not None
        prefix = b"GET " + self.stats_path
        return buf.startswith(prefix) and buf[len(prefix) : len(prefix) + 1] in (b" ", b"?")

    def _answer_stats(self, conn: HttpConnection) -> None:
        stats = self.stats()
        workers = self.stats_source(stats) if self.stats_source is not None else []
        line = conn.buf.split(b"\r\n", 1)[0]
        if b"format=prometheus" in line:
            body = prometheus_stats(stats, workers).encode()
            ctype = b"text/plain; version=0.0.4"
        else:
            doc = {**total_stats(workers), "workers": workers} if workers else stats
            body = json.dumps(doc).encode()
            ctype = b"application/json"
        conn.buf = b""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: %b\r\nContent-Length: %d\r\n" % (ctype, len(body))
        with contextlib.suppress(OSError):
            conn.socket.send(head + b"Connection: close\r\n\r\n" + body)
        conn.close_gracefully()

    # -- stopping -----------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting now, serve what has arrived and let in-flight requests finish
        within ``timeout``, then close the rest. Always returns, even when an app is stuck."""
        deadline = time.monotonic() + (0.0 if self._hurried else max(timeout, 0.0))
        self._stop_deadline = min(self._stop_deadline, deadline) if self.stopping else deadline
        self.stopping = True
        self.interrupt()
        served_before = self.requests.served
        acceptor = self._acceptor
        if acceptor is not None and acceptor is not threading.current_thread():
            self._stopped.wait(max(0.0, self._stop_deadline - time.monotonic()))
        if self._poller is not None and (acceptor is None or self._stopped.is_set()):
            self._drain()  # the poller is this thread's now
        else:
            self._close_listeners()
        stuck = self.requests.stop(lambda: self._stop_deadline)
        cut = [conn.request_line() for conn in list(self._conns.values()) if conn.has_request]
        for conn in stuck:
            with contextlib.suppress(OSError):
                conn.socket.shutdown(socket.SHUT_RDWR)
        for conn in list(self._conns.values()):
            conn.close()
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        self._prepared = False
        served = self.requests.served - served_before
        if cut:
            error_log.warning(
                "stopped at the graceful deadline: %d requests served while stopping, %d cut: %s",
                served,
                len(cut),
                ", ".join(repr(line[:100].decode("latin-1")) for line in cut[:20]),
            )
        else:
            error_log.info("stopped: %d requests served while stopping, none cut", served)

    def _close_listeners(self) -> None:
        for sock in self.sockets:
            if self._poller is not None:
                self._poller.remove_listener(sock)
            sock.close()
        self.sockets = []
        self._listeners = {}
        self._tls = {}
        self._unlink_unix_paths()

    def _unfinished(self) -> bool:
        """Any connection that is not lingering: a request may arrive, wait or be answered."""
        return any(
            not (conn.parked_at and conn.state is State.LINGER)
            for conn in list(self._conns.values())
        )

    def _drain(self) -> None:
        """The graceful part of ``stop()``, run by the thread that stops the server once the
        accept loop has returned: nothing a client has already sent is lost."""
        assert self._poller is not None
        # Clients in the listen backlog have been told "connected" and may have sent their
        # request: take them before the listeners close, or the kernel resets them. Unless
        # other processes accept on the same sockets: then the backlog is theirs to serve.
        if not self.shared_listeners:
            if self._accept_paused:
                self._resume_accepting()
            for listener in list(self._listeners.values()):
                self._accept(listener)
        self._close_listeners()
        grace = min(self._stop_deadline, time.monotonic() + FIRST_REQUEST_GRACE)
        for conn in list(self._conns.values()):
            if conn.parked_at and conn.idle:
                self._poller.discard(conn)
                self._on_ready(conn)  # reads what has arrived, if anything
                if conn.parked_at and not conn.buf:
                    if conn.requests:
                        conn.close()  # idle keep-alive: nothing was on its way
                    else:  # its first request may be on its way
                        conn.deadline = min(conn.deadline, grace)
        while self._unfinished() and time.monotonic() < self._stop_deadline:
            self.tick(min(DRAIN_TICK, max(0.0, self._stop_deadline - time.monotonic())))
            self._sweep(time.monotonic())

    def _unlink_unix_paths(self) -> None:
        for path, identity in self._unix_paths.items():
            remove_unix_socket(path, identity)
        self._unix_paths = {}


def _readable(sock: socket.socket) -> bool:
    """Bytes (or an EOF) wait to be read; without waiting."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return False


def file_identity(path: str) -> tuple[int, int, int]:
    """Device, inode and creation time: an inode number alone may be reused at once."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns


def remove_unix_socket(path: str, identity: tuple[int, int, int]) -> None:
    """Unlink ``path`` if it is still the file ``identity`` names, not one another server
    put there since."""
    with contextlib.suppress(OSError):
        if file_identity(path) == identity:
            os.unlink(path)


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


def total_stats(workers: list[Stats]) -> Stats:
    """The sum of several processes' stats (the longest uptime, not the sum)."""
    total: Stats = {}
    for stats in workers:
        for key, value in stats.items():
            if key == "pid":
                continue
            if key == "uptime_seconds":
                total[key] = max(total.get(key, 0), value)
            else:
                total[key] = total.get(key, 0) + value
    if "uptime_seconds" in total:
        total["uptime_seconds"] = round(total["uptime_seconds"], 3)
    return total


def prometheus_stats(stats: Stats, workers: list[Stats]) -> str:
    """Prometheus text format: one gauge per number; with worker processes, the unlabelled
    sample is their total and each worker's has a ``pid`` label."""
    total = total_stats(workers) if workers else stats
    lines = []
    for key, value in total.items():
        lines.append(f"# TYPE treadle_{key} gauge\ntreadle_{key} {value}\n")
        for worker in workers:
            lines.append(f'treadle_{key}{{pid="{worker["pid"]}"}} {worker.get(key, 0)}\n')
    return "".join(lines)


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
