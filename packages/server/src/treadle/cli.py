"""``treadle MODULE:APP`` / ``python -m treadle``: a thin layer over ``HttpServer``.

A bad argument, or an app that cannot be imported, gives one line on stderr and exit status 2.
SIGTERM stops gracefully (in-flight requests get ``--graceful-timeout`` seconds); SIGINT quickly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from . import __version__, limits, tls
from .limits import Limits
from .server import HttpServer, bind_scheme, parse_bind_addr
from .wsgi import WSGIApp


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"treadle: error: {message} (see treadle --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _bind(text: str) -> str:
    try:
        parse_bind_addr(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="treadle", description="Serve a WSGI application with treadle.")
    p.add_argument(
        "app", metavar="MODULE:APP", help="the WSGI application, e.g. myproject.wsgi:app"
    )
    p.add_argument("--version", action="version", version=f"treadle {__version__}")
    p.add_argument(
        "-b",
        "--bind",
        action="append",
        type=_bind,
        metavar="ADDR",
        help="HOST:PORT, [IPv6]:PORT, a Unix socket path, or http:// or https:// before "
        "HOST:PORT; repeatable (default 127.0.0.1:8000)",
    )
    p.add_argument("--threads", type=_positive_int, default=5, help="worker threads (default 5)")
    p.add_argument("--max-threads", type=_positive_int, help="grow the pool up to this many")
    p.add_argument("--backlog", type=_positive_int, default=4096, help="listen backlog")
    p.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="open connections at most; at the limit the oldest idle ones are closed, then "
        "accepting pauses (default: the open-file limit less 64)",
    )
    p.add_argument(
        "--queue-size",
        type=_positive_int,
        default=1024,
        help="requests waiting for a thread before 503 (default 1024)",
    )
    p.add_argument(
        "--keep-alive",
        type=_positive_float,
        default=limits.KEEP_ALIVE_TIMEOUT,
        metavar="SECONDS",
        help="idle keep-alive timeout (default 5)",
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=limits.TIMEOUT,
        metavar="SECONDS",
        help="deadline for a request head, a body stall or a send stall (default 10)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=_non_negative_float,
        default=10.0,
        metavar="SECONDS",
        help="how long SIGTERM lets requests finish (default 10)",
    )
    p.add_argument("--max-request-line", type=_positive_int, default=limits.MAX_REQUEST_LINE)
    p.add_argument("--max-header-count", type=_positive_int, default=limits.MAX_HEADER_COUNT)
    p.add_argument("--max-field-line", type=_positive_int, default=limits.MAX_FIELD_LINE)
    p.add_argument("--max-head-size", type=_positive_int, default=limits.MAX_HEAD_SIZE)
    p.add_argument("--max-body-size", type=_positive_int, default=limits.MAX_BODY_SIZE)
    p.add_argument(
        "--stats-path",
        metavar="PATH",
        help="answer GET PATH with server stats (JSON; ?format=prometheus)",
    )
    p.add_argument("--access-log", metavar="FILE|-", help="Combined Log Format to FILE or stdout")
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"]
    )
    p.add_argument("--factory", action="store_true", help="APP is a factory: call it for the app")
    tls = p.add_argument_group(
        "TLS", "with --certfile, every --bind is TLS unless written http://HOST:PORT"
    )
    tls.add_argument("--certfile", metavar="FILE", help="the server's certificate chain (PEM)")
    tls.add_argument("--keyfile", metavar="FILE", help="its private key (default: in --certfile)")
    tls.add_argument("--keyfile-password", metavar="TEXT", help="the private key's password")
    tls.add_argument(
        "--keyfile-password-file", metavar="FILE", help="read the key's password from FILE"
    )
    tls.add_argument("--ca-certs", metavar="FILE", help="CA certificates for client certificates")
    tls.add_argument(
        "--client-cert",
        choices=["none", "optional", "required"],
        default="none",
        help="ask clients for a certificate signed by --ca-certs (default none)",
    )
    tls.add_argument("--ssl-ciphers", metavar="LIST", help="OpenSSL cipher list (TLS 1.2)")
    return p


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's TLS context from the options, or None; one clear line when it fails."""
    tls_options = (args.keyfile, args.keyfile_password, args.keyfile_password_file, args.ca_certs)
    if args.certfile is None:
        if any(tls_options) or args.client_cert != "none" or args.ssl_ciphers:
            _fail("TLS options need --certfile")
        if any(bind_scheme(addr) == "https" for addr in args.bind or []):
            _fail("an https:// --bind needs --certfile")
        return None
    password = args.keyfile_password
    if args.keyfile_password_file:
        try:
            with open(args.keyfile_password_file, encoding="utf-8") as file:
                password = file.read().rstrip("\r\n")
        except OSError as exc:
            _fail(f"cannot read --keyfile-password-file: {exc}")
    try:
        return tls.server_context(
            args.certfile,
            args.keyfile,
            password,
            args.ca_certs,
            args.client_cert,
            args.ssl_ciphers,
        )
    except ssl.SSLError as exc:
        _fail(f"cannot set up TLS: the certificate or key does not load ({exc.reason or exc})")
    except (OSError, ValueError) as exc:
        _fail(f"cannot set up TLS: {exc}")


class AppImportError(Exception):
    pass


def load_app(spec: str, factory: bool = False) -> WSGIApp:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppImportError(f"{spec!r} is not MODULE:APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppImportError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(f"module {module_name!r} has no attribute {attr!r}") from None
    if factory:
        try:
            obj = obj()
        except Exception as exc:
            raise AppImportError(f"factory {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise AppImportError(f"{spec!r} is not callable")
    app: WSGIApp = obj
    return app


def _configure_logging(level: str, access_log: str | None) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s [%(name)s] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    access = logging.getLogger("treadle.access")
    access.propagate = False
    if access_log is None:
        access.setLevel(logging.WARNING)  # no per-request logging work at all
        return
    handler: logging.Handler
    if access_log == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(access_log)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_threads is not None and args.max_threads < args.threads:
        _fail("--max-threads must be at least --threads")
    try:
        app = load_app(args.app, args.factory)
    except AppImportError as exc:
        _fail(str(exc))
    ssl_context = _ssl_context(args)
    try:
        _configure_logging(args.log_level, args.access_log)
    except OSError as exc:
        _fail(f"cannot open access log: {exc}")
    server = HttpServer(
        args.bind or ["127.0.0.1:8000"],
        app,
        threads=args.threads,
        max_threads=args.max_threads,
        limits=Limits(
            max_request_line=args.max_request_line,
            max_field_line=args.max_field_line,
            max_header_count=args.max_header_count,
            max_head_size=args.max_head_size,
            max_body_size=args.max_body_size,
            keep_alive_timeout=args.keep_alive,
            timeout=args.timeout,
        ),
        backlog=args.backlog,
        queue_size=args.queue_size,
        stats_path=args.stats_path,
        max_connections=args.max_connections,
        ssl_context=ssl_context,
    )
    stop_timeout = args.graceful_timeout

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_timeout, stopping
        if signum == signal.SIGINT or stopping:
            stop_timeout = 0.0  # SIGINT, or a second signal: stop at once
        logging.getLogger("treadle.error").info(
            "%s: stopping%s",
            signal.Signals(signum).name,
            f" (up to {stop_timeout:g} s for in-flight requests)" if stop_timeout else " now",
        )
        if stopping or not stop_timeout:
            server.hurry()
        else:
            server.interrupt()
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.prepare()
    except OSError as exc:
        print(f"treadle: error: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        server.start()
    finally:
        server.stop(stop_timeout)
    return 0


def _fail(message: str) -> NoReturn:
    print(f"treadle: error: {message}", file=sys.stderr)
    raise SystemExit(2)
