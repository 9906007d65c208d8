"""A reflection-app server that exits after N requests: `python _dying.py PORT N`."""

from __future__ import annotations

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from treadle_conformance.reflect import app


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port, n = int(sys.argv[1]), int(sys.argv[2])
    server = make_server("127.0.0.1", port, app, handler_class=Quiet)
    for _ in range(n):
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()
