"""Run a treadle server on port 0 in a background thread, for tests.

with serving(app, threads=5) as url:
    httpx.get(url + "/")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .server import HttpServer
from .wsgi import WSGIApp


@contextmanager
def running(app: WSGIApp, host: str = "127.0.0.1", **kwargs: Any) -> Iterator[HttpServer]:
    """Yield a started server bound to ``host`` on a free port; stop it on exit."""
    stop_timeout = kwargs.pop("stop_timeout", 5.0)
    server = HttpServer((host, 0), app, **kwargs)
    server.prepare()  # bound and listening before the thread starts: no wait needed
    thread = threading.Thread(target=server.start, name="treadle-acceptor", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop(stop_timeout)
        thread.join(stop_timeout + 1.0)


@contextmanager
def serving(app: WSGIApp, host: str = "127.0.0.1", **kwargs: Any) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) of a server running ``app``."""
    with running(app, host, **kwargs) as server:
        sock = server.sockets[0]
        yield server.describe(sock)
