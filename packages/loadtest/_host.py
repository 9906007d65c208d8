"""Host a WSGI app on a free loopback port with treadle or a peer, and say where.

    python packages/loadtest/_host.py SERVER [--threads 5] [--app treadle.demo:app]

SERVER is treadle, waitress, gunicorn (one gthread worker) or cheroot, each with its defaults
except the thread count (and treadle's stats endpoint, which the load test samples). Every one
binds port 0 and prints the same startup line as treadle, ``SERVER listening on
http://127.0.0.1:PORT``, so `scripts/with-server --server` can start any of them and learn the
port back; SIGTERM stops them all. The peers come from PyPI into the tox env
that runs them (`loadtest-peers`); this module imports each, untyped, only when asked for it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

SERVERS = ("treadle", "waitress", "gunicorn", "cheroot")


def load_app(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "app")


def announce(server: str, host: str, port: int) -> None:
    print(f"{server} listening on http://{host}:{port}", file=sys.stderr, flush=True)


def run_treadle(args: argparse.Namespace) -> None:
    argv = [sys.executable, "-m", "treadle", "--bind", f"{args.host}:0"]
    argv += ["--threads", str(args.threads), "--stats-path", "/_treadle/stats", args.app]
    os.execv(sys.executable, argv)


def run_waitress(args: argparse.Namespace) -> None:
    waitress = importlib.import_module("waitress")
    server = waitress.create_server(
        load_app(args.app), host=args.host, port=0, threads=args.threads
    )
    announce("waitress", args.host, int(server.effective_port))
    server.run()


def run_cheroot(args: argparse.Namespace) -> None:
    wsgi = importlib.import_module("cheroot.wsgi")
    server = wsgi.Server((args.host, 0), load_app(args.app), numthreads=args.threads)
    server.prepare()
    announce("cheroot", args.host, int(server.bind_addr[1]))
    server.serve()


def run_gunicorn(args: argparse.Namespace) -> None:
    base_application: Any = importlib.import_module("gunicorn.app.base").BaseApplication

    def when_ready(arbiter: Any) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        announce("gunicorn", host, int(port))

    class Hosted(base_application):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{args.host}:0",
                "worker_class": "gthread",
                "workers": 1,
                "threads": args.threads,
                "when_ready": when_ready,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return load_app(args.app)

    Hosted().run()


RUNNERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "treadle": run_treadle,
    "waitress": run_waitress,
    "gunicorn": run_gunicorn,
    "cheroot": run_cheroot,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("server", choices=SERVERS)
    parser.add_argument("--threads", type=int, default=5, help="worker threads (default 5)")
    parser.add_argument("--app", default="treadle.demo:app", help="MODULE:APP to host")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    args = parser.parse_args(argv)
    RUNNERS[args.server](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
