"""treadle: a strict, fast, pure-Python thread-pool HTTP/1.1 WSGI server.

    from treadle import HttpServer, serve
    serve(app, ("127.0.0.1", 8000), threads=5)

See ``treadle.server`` for the theory of operation.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .limits import Limits
from .server import HttpServer, serve

__all__ = ["HttpServer", "Limits", "__version__", "serve"]
