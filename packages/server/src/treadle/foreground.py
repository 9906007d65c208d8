"""Run an ``HttpServer`` as the process's main job: signals, systemd readiness, default logging.

``treadle`` (the CLI), ``serve()`` and the PasteDeploy runner all end here, so they stop the
same way: SIGTERM lets in-flight requests finish within the graceful timeout; SIGINT (Ctrl-C)
or a second signal stops at once. With ``NOTIFY_SOCKET`` set, systemd hears ``READY=1`` once
every socket listens and ``STOPPING=1`` as soon as a stop begins.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from . import systemd
from .server import HttpServer

error_log = logging.getLogger("treadle.error")

LOG_FORMAT = "%(asctime)s [%(name)s] %(levelname)s %(message)s"
# Where several processes write to one log (--workers): each line names its process.
LOG_FORMAT_PID = "%(asctime)s [%(process)d] [%(name)s] %(levelname)s %(message)s"

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def basic_logging() -> None:
    """Show treadle's startup line and errors on stderr, unless logging is already set up
    (by the application, or by PasteDeploy's ``[loggers]``): then leave it alone."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(format=LOG_FORMAT, stream=sys.stderr)
    if error_log.level == logging.NOTSET:
        error_log.setLevel(logging.INFO)


def run(
    server: HttpServer, graceful_timeout: float = 10.0, on_ready: Callable[[], None] | None = None
) -> None:
    """Bind, call ``on_ready`` (e.g. to write a pid file), serve until a signal, then stop.

    ``OSError`` if an address cannot be had, or from ``on_ready`` (the server is stopped first).
    SIGTERM stops gracefully, SIGINT or a second signal at once. Handlers are installed before
    binding (a signal as soon as the startup line is out is a clean stop), only from the main
    thread (the only one Python delivers signals to), and are restored on return.
    """
    stop_timeout = graceful_timeout
    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Flags and a wake-up only: no logging here. A signal can land while the main thread
        # is inside a write to stderr (the startup line, say); logging from the handler then
        # raises a reentrant-write error before the stop is even asked for.
        nonlocal stop_timeout
        first = not received
        received.append(signal.Signals(signum).name)
        if signum == signal.SIGINT or not first:
            stop_timeout = 0.0
        if not first or not stop_timeout:
            server.hurry()
        else:
            server.interrupt()

    with _signals_to(on_signal):
        server.prepare()
        try:
            if on_ready is not None:
                on_ready()
            where = ", ".join(server.describe(sock) for sock in server.sockets)
            systemd.notify(f"READY=1\nSTATUS=listening on {where}")
            server.start()
        finally:
            systemd.notify("STOPPING=1")
            if received:
                error_log.info(
                    "%s: stopping%s",
                    " then ".join(received),
                    f" (up to {stop_timeout:g} s for in-flight requests)"
                    if stop_timeout
                    else " now",
                )
            server.stop(stop_timeout)
            if len(received) > 1:
                error_log.info("%s received while stopping", " then ".join(received[1:]))


@contextlib.contextmanager
def _signals_to(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, _Handler] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            if old is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, old)
