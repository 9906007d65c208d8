"""Run cheroot's WSGI server on 127.0.0.1:PORT with N threads, serving the bench app.

cheroot has no command line of its own for a WSGI app, hence this launcher:
``python -m treadle_bench.cheroot_launch PORT THREADS``. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import contextlib
import signal
import sys

from cheroot.wsgi import Server

from treadle_bench.app import app
from treadle_bench.servers import KEEP_ALIVE_SECONDS


def main() -> None:
    port, threads = int(sys.argv[1]), int(sys.argv[2])
    # cheroot's `timeout` is also its idle keep-alive timeout; raised like every other server's.
    server = Server(("127.0.0.1", port), app, numthreads=threads, timeout=KEEP_ALIVE_SECONDS)
    # cheroot closes idle keep-alive connections beyond 10 by default; raised like waitress's
    # connection limit and gunicorn's worker-connections, so scenario 6 can hold 1,000.
    server.keep_alive_conn_limit = 4000
    # SIGTERM behaves like Ctrl-C: safe_start() catches the KeyboardInterrupt and stops.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.safe_start()


if __name__ == "__main__":
    main()
