"""Start the reflection app under a server that has no command line of its own.

    python -m treadle_conformance.peer_hosts werkzeug PORT
    python -m treadle_conformance.peer_hosts wsgiref PORT

Werkzeug's development server (its threaded server, a thread per connection) and the standard
library's `wsgiref.simple_server` are only reachable from Python. wsgiref has no pool and, as
shipped, serves one connection at a time with no timeout, so one slow client stalls it for as
long as the client likes; it runs here with `socketserver.ThreadingMixIn` (a thread per
connection, the usual way to host it), which keeps its parser and lets the run finish. Each
prints `listening on http://127.0.0.1:PORT` once it is bound, for `target.started`.
"""

from __future__ import annotations

import importlib
import sys
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from treadle_conformance.reflect import app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _wsgiref(port: int) -> None:
    server = make_server(
        "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_Quiet
    )
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def _werkzeug(port: int) -> None:
    serving: Any = importlib.import_module("werkzeug.serving")
    server = serving.make_server("127.0.0.1", port, app, threaded=True)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def main(argv: list[str]) -> int:
    hosts = {"wsgiref": _wsgiref, "werkzeug": _werkzeug}
    if len(argv) != 2 or argv[0] not in hosts:
        print(f"usage: peer_hosts {{{','.join(hosts)}}} PORT", file=sys.stderr)
        return 2
    hosts[argv[0]](int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
