"""treadle as a gunicorn worker class: ``gunicorn -k treadle.gunicorn.Worker myapp.wsgi``.

gunicorn's arbiter binds the sockets, starts, watches, restarts and reloads the worker processes
(``-w``, ``--max-requests``, ``HUP``, ``TTIN``/``TTOU``, its hooks and its logging); each worker
runs one treadle ``HttpServer`` (acceptor, poller, thread pool) on the sockets the arbiter hands
it, shared with the other workers (``shared_listeners``). Needs ``pip install treadle[gunicorn]``.

What of gunicorn's settings applies, and how:

    --threads N                  the thread pool's size
    --worker-connections N       treadle's --max-connections (idle ones are closed first)
    --keep-alive S               idle keep-alive timeout; 0 closes after every response
    --timeout S                  the worker's heartbeat comes from the accept loop, so a
                                 worker whose acceptor is stuck is killed by the arbiter
    --graceful-timeout S         SIGTERM lets in-flight requests finish within it
    --max-requests N (+ jitter)  N requests in, it accepts no more, finishes them and stops
    --limit-request-line N       treadle's --max-request-line (0: no limit but the head size)
    --limit-request-fields N     --max-header-count (0: gunicorn's ceiling, 32768)
    --limit-request-field_size N --max-field-line (0: no limit but the head size)
    --certfile, --keyfile, --ca-certs, --cert-reqs, --ciphers   TLS, with gunicorn's context
    --proxy-protocol, --proxy-allow-from                         PROXY protocol v1/v2

treadle's access and error lines go to gunicorn's error log (``treadle.access`` only with
``--access-logfile``, in treadle's Combined Log Format: ``--access-logformat`` does not apply).
Forwarded headers are not read (gunicorn's ``--forwarded-allow-ips`` and
``secure_scheme_headers`` have no effect); use ``treadle --proxy-headers`` for that.
"""

from __future__ import annotations

import logging
import os
import ssl
from types import FrameType
from typing import Any

from gunicorn.workers.base import Worker as _GunicornWorker

from . import limits
from .forwarded import ProxyTrust
from .limits import Limits
from .server import HttpServer

# gunicorn's ceiling for --limit-request-fields, which 0 stands for.
MAX_REQUEST_FIELDS = 32768


def server_limits(cfg: Any) -> Limits:
    """treadle's limits from gunicorn's settings (0 means unlimited there)."""
    line = cfg.limit_request_line or limits.MAX_HEAD_SIZE
    field = cfg.limit_request_field_size or limits.MAX_HEAD_SIZE
    return Limits(
        max_request_line=line,
        max_field_line=field,
        max_header_count=cfg.limit_request_fields or MAX_REQUEST_FIELDS,
        max_head_size=max(limits.MAX_HEAD_SIZE, line + field),
        keep_alive_timeout=float(cfg.keepalive),
    )


def server_context(cfg: Any) -> ssl.SSLContext | None:
    if not cfg.is_ssl:
        return None
    from gunicorn.sock import ssl_context  # the context gunicorn itself would use

    context: ssl.SSLContext = ssl_context(cfg)
    return context


class Worker(_GunicornWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """A gunicorn worker that serves with treadle's ``HttpServer``."""

    server: HttpServer | None = None
    quick = False  # SIGINT or SIGQUIT: stop without the graceful timeout

    def run(self) -> None:
        cfg = self.cfg
        proxy_protocol = cfg.proxy_protocol not in (False, None, "off", "none")
        server = HttpServer(
            [listener.sock for listener in self.sockets],
            self.wsgi,
            threads=cfg.threads,
            limits=server_limits(cfg),
            backlog=cfg.backlog,
            max_connections=cfg.worker_connections,
            ssl_context=server_context(cfg),
            proxy=ProxyTrust.parse(cfg.proxy_allow_ips, "none") if proxy_protocol else None,
            proxy_protocol=proxy_protocol,
            shared_listeners=True,
            heartbeat=self.heartbeat,
            request_limit=self.max_requests,
            on_request_limit=self.request_limit_reached,
        )
        self._share_logging()
        self.server = server
        server.prepare()
        if self.alive:  # not told to stop while it was getting ready
            self.notify()
            server.start()
        server.stop(0.0 if self.quick else cfg.graceful_timeout)

    def heartbeat(self) -> None:
        """From the acceptor, about every quarter second: tell the arbiter all is well; stop
        when the arbiter is gone."""
        server = self.server
        assert server is not None
        self.notify()
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            self.alive = False
        if not self.alive:
            server.interrupt()

    def request_limit_reached(self) -> None:
        """``--max-requests`` are in: accept no more, finish them, and let the arbiter start
        the next worker."""
        self.log.info("Autorestarting worker after current request.")
        self.alive = False
        if self.server is not None:
            self.server.interrupt()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: stop gracefully (no logging in a signal handler)."""
        self.alive = False
        if self.server is not None:
            self.server.interrupt()

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        """SIGINT, SIGQUIT: stop now."""
        self.alive = False
        self.quick = True
        self.cfg.worker_int(self)
        if self.server is not None:
            self.server.hurry()

    def _share_logging(self) -> None:
        """treadle's loggers write where gunicorn's do."""
        error = logging.getLogger("treadle.error")
        error.handlers = list(self.log.error_log.handlers)
        error.setLevel(self.log.error_log.level)
        error.propagate = False
        access = logging.getLogger("treadle.access")
        access.propagate = False
        if self.cfg.accesslog:
            access.handlers = list(self.log.access_log.handlers)
            access.setLevel(logging.INFO)
        else:
            access.setLevel(logging.WARNING)
