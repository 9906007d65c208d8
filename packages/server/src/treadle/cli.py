"""``treadle MODULE:APP`` / ``python -m treadle``: a thin layer over ``HttpServer``.

A bad argument gives one line on stderr and exit status 2; so does an app that cannot be
imported, followed by the last frames of the traceback (file, line, source). An address that
cannot be had gives exit status 1. SIGTERM stops gracefully (in-flight requests get
``--graceful-timeout`` seconds); SIGINT quickly. Started by systemd with sockets of its own
(``LISTEN_FDS``) and no ``--bind``, treadle serves on those.

Habits from gunicorn and waitress are met halfway: ``MODULE`` alone means ``MODULE:application``,
``--access-logfile``/``--error-logfile`` are accepted as names, and an option treadle does not
have is named in the error, with treadle's equivalent when there is one, instead of argparse
taking its value for the app.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import ssl
import sys
import traceback
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NoReturn

from . import __version__, foreground, limits, systemd, tls
from .forwarded import DEFAULT_ALLOW_IPS, HEADER_MODES, ProxyTrust
from .limits import Limits
from .server import HttpServer, bind_scheme, parse_bind_addr
from .supervised import Supervised
from .supervisor import Supervisor
from .wsgi import WSGIApp, check_root_path

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_APP_NAME = "application"  # Django's, and gunicorn's default too

# Options of gunicorn and waitress that users bring along, with what to use instead.
_DAEMON = "treadle does not daemonize: run it under systemd (see docs/deployment.md)"
_WORKER_CLASS = (
    "treadle is its own worker: use --threads and --workers "
    "(or gunicorn -k treadle.gunicorn.Worker)"
)
FOREIGN_OPTIONS = {
    "--listen": "use --bind HOST:PORT (repeatable)",
    "--host": "use --bind HOST:PORT",
    "--port": "use --bind HOST:PORT",
    "--unix-socket": "use --bind PATH",
    "--unix-socket-perms": "use --socket-mode MODE",
    "--daemon": _DAEMON,
    "-D": _DAEMON,
    "--pidfile": "use --pid FILE",
    "--call": "use --factory",
    "--limit-request-line": "use --max-request-line",
    "--limit-request-fields": "use --max-header-count",
    "--limit-request-field_size": "use --max-field-line",
    "--max-request-header-size": "use --max-head-size",
    "--max-request-body-size": "use --max-body-size",
    "--channel-timeout": "use --timeout",
    "--keepalive": "use --keep-alive",
    "-k": _WORKER_CLASS,
    "--worker-class": _WORKER_CLASS,
    "--preload": "the app is imported in each worker process, never in the supervisor",
    "--worker-connections": "use --max-connections",
    "--ciphers": "use --ssl-ciphers",
    "--cert-reqs": "use --client-cert none|optional|required",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"treadle: error: {message} (see treadle --help)\n")


def _whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            bound = "must not be negative" if least == 0 else f"must be at least {least}"
            raise argparse.ArgumentTypeError(f"{text!r} {bound}")
        return value

    return check


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _octal_mode(text: str) -> int:
    digits = text.removeprefix("0o")
    try:
        value = int(digits, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mode like 660") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mode like 660")
    return value


def _bind(text: str) -> str:
    try:
        parse_bind_addr(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _allow_ips(text: str) -> str:
    try:
        ProxyTrust.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _root_path(text: str) -> str:
    try:
        return check_root_path(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="treadle",
        description="Serve a WSGI application with treadle.",
        allow_abbrev=False,  # an abbreviation would shadow options added later
    )
    p.add_argument(
        "app",
        metavar="MODULE:APP",
        help=f"the WSGI application, e.g. myproject.wsgi:app; MODULE alone means "
        f"MODULE:{DEFAULT_APP_NAME}",
    )
    p.add_argument("--version", action="version", version=f"treadle {__version__}")
    where = p.add_argument_group("where to listen")
    where.add_argument(
        "-b",
        "--bind",
        action="append",
        type=_bind,
        metavar="ADDR",
        help="HOST:PORT, [IPv6]:PORT, a Unix socket path, fd://N for an inherited listening "
        "socket, or http:// or https:// before HOST:PORT; repeatable (default: the sockets "
        "systemd passed, else 127.0.0.1:8000)",
    )
    where.add_argument("--backlog", type=_positive_int, default=4096, help="listen backlog")
    where.add_argument(
        "--socket-mode",
        type=_octal_mode,
        metavar="MODE",
        help="permissions of Unix socket files, in octal, e.g. 660 (default: from the umask)",
    )
    where.add_argument(
        "--umask",
        type=_octal_mode,
        metavar="MASK",
        help="the process's umask, in octal, e.g. 007 (applies to socket, pid and log files)",
    )
    where.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="open connections at most; at the limit the oldest idle ones are closed, then "
        "accepting pauses (default: the open-file limit less 64)",
    )
    pool = p.add_argument_group("threads")
    pool.add_argument("--threads", type=_positive_int, default=5, help="worker threads (default 5)")
    pool.add_argument("--max-threads", type=_positive_int, help="grow the pool up to this many")
    pool.add_argument(
        "--queue-size",
        type=_positive_int,
        default=1024,
        help="requests waiting for a thread before 503 (default 1024)",
    )
    procs = p.add_argument_group("processes", "see docs/deployment.md")
    procs.add_argument(
        "-w",
        "--workers",
        type=_positive_int,
        metavar="N",
        help="N worker processes, each with its own thread pool, on the same sockets, under a "
        "supervisor that restarts them (SIGHUP reloads the app, SIGTTIN/SIGTTOU add/remove "
        "one); default: one process, no supervisor",
    )
    procs.add_argument(
        "--max-requests",
        type=_positive_int,
        metavar="N",
        help="replace a worker process once it has served N requests (gracefully: its "
        "replacement is ready first); implies --workers 1 when not given",
    )
    procs.add_argument(
        "--max-requests-jitter",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="add 0 to N, at random, to each worker's --max-requests, so that they are not "
        "replaced all at once (default 0)",
    )
    procs.add_argument(
        "--reload",
        action="store_true",
        help="for development: when a *.py file under the current directory (or --pythonpath) "
        "changes, start a new worker with the new code, then stop the old one (uses watchfiles "
        "when installed); an app that no longer imports leaves the old one serving",
    )
    times = p.add_argument_group("timeouts (seconds; 1.5 and 1e1 are fine)")
    times.add_argument(
        "--keep-alive",
        type=_seconds,
        default=limits.KEEP_ALIVE_TIMEOUT,
        metavar="SECONDS",
        help=f"idle keep-alive timeout; 0: close after every response "
        f"(default {limits.KEEP_ALIVE_TIMEOUT:g})",
    )
    times.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=limits.TIMEOUT,
        metavar="SECONDS",
        help=f"deadline for a request head, a body stall or a send stall "
        f"(default {limits.TIMEOUT:g})",
    )
    times.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long SIGTERM lets in-flight requests finish (default 10)",
    )
    lims = p.add_argument_group("limits")
    for flag, default, what in (
        ("--max-request-line", limits.MAX_REQUEST_LINE, "bytes in the request line (else 414)"),
        ("--max-field-line", limits.MAX_FIELD_LINE, "bytes in one header field line (else 431)"),
        ("--max-header-count", limits.MAX_HEADER_COUNT, "header fields (else 431)"),
        ("--max-head-size", limits.MAX_HEAD_SIZE, "bytes in the whole request head (else 431)"),
        ("--max-body-size", limits.MAX_BODY_SIZE, "bytes in a request body (else 413)"),
    ):
        lims.add_argument(
            flag,
            type=_positive_int,
            default=default,
            metavar="N",
            help=f"{what}; default {default}",
        )
    logs = p.add_argument_group("logging and process")
    logs.add_argument(
        "--access-log",
        "--access-logfile",
        metavar="FILE|-",
        help="Combined Log Format to FILE or stdout (default: none)",
    )
    logs.add_argument(
        "--error-log",
        "--error-logfile",
        "--log-file",
        metavar="FILE|-",
        help="startup lines and errors to FILE (default -: stderr)",
    )
    logs.add_argument(
        "--log-level",
        type=str.lower,
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="any case (default info)",
    )
    logs.add_argument(
        "--stats-path",
        metavar="PATH",
        help="answer GET PATH with server stats (JSON; ?format=prometheus)",
    )
    logs.add_argument("--pid", metavar="FILE", help="write the process id to FILE while serving")
    app = p.add_argument_group("the application")
    app.add_argument("--factory", action="store_true", help="APP is a factory: call it for the app")
    app.add_argument("--chdir", metavar="DIR", help="change to DIR before importing the app")
    app.add_argument(
        "--pythonpath",
        action="append",
        metavar="DIRS",
        help="comma-separated directories to put first on sys.path; repeatable",
    )
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
    edge = p.add_argument_group("behind a proxy", "see docs/deployment.md")
    edge.add_argument(
        "--forwarded-allow-ips",
        type=_allow_ips,
        default=os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_ALLOW_IPS),
        metavar="LIST",
        help="peers trusted as proxies: addresses and networks (CIDR), '*' for any, 'unix:' "
        f"for Unix-socket peers (default $FORWARDED_ALLOW_IPS or {DEFAULT_ALLOW_IPS})",
    )
    edge.add_argument(
        "--proxy-headers",
        choices=HEADER_MODES,
        default="none",
        help="what a trusted proxy's headers tell: X-Forwarded-For/-Proto/-Host/-Port, or RFC "
        "7239 Forwarded; client address, scheme, host and port (default none)",
    )
    edge.add_argument(
        "--root-path",
        type=_root_path,
        default="",
        metavar="PATH",
        help="the app is mounted at PATH (SCRIPT_NAME), stripped from PATH_INFO when present",
    )
    edge.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="every connection starts with a PROXY protocol v1/v2 header (HAProxy's "
        "send-proxy), accepted from --forwarded-allow-ips peers only",
    )
    return p


def unknown_option(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The first option in ``argv`` that ``parser`` does not know, or None.

    Done before argparse, which would otherwise take the unknown option's value for the app
    (``treadle -w 4 app:app``: "unrecognized arguments: -w app:app").
    """
    known = parser._option_string_actions
    args = iter(argv)
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.partition("=")[0] if arg.startswith("--") else arg
        action = known.get(name)
        if action is None and not arg.startswith("--") and arg[:2] in known:
            continue  # a short option with its value attached: -b127.0.0.1:0
        if action is None:
            return name
        if action.nargs is None and "=" not in arg:
            next(args, None)  # its value, whatever it looks like
    return None


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
    if not sep:
        attr = DEFAULT_APP_NAME
    if not module_name or not attr:
        raise AppImportError(f"{spec!r} is not MODULE:APP")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _failure(f"cannot import {module_name!r}", exc) from exc
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
            raise _failure(f"factory {spec!r} failed", exc) from exc
    if not callable(obj):
        raise AppImportError(f"{spec!r} is not callable")
    app: WSGIApp = obj
    return app


def _failure(what: str, exc: Exception, frames: int = 3) -> AppImportError:
    """One summary line, then where it happened: the last frames outside the import machinery
    (and, for a SyntaxError, the offending line)."""
    lines = [f"{what}: {type(exc).__name__}: {exc}"]
    machinery = (os.path.dirname(importlib.__file__), os.path.abspath(__file__))
    user_frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen ")
        and not os.path.abspath(frame.filename).startswith(machinery)
    ]
    for frame in user_frames[-frames:]:
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line}")
    if isinstance(exc, SyntaxError) and exc.filename:
        lines.append(f'  File "{exc.filename}", line {exc.lineno}')
        if exc.text:
            lines.append(f"    {exc.text.strip()}")
    return AppImportError("\n".join(lines))


def _set_up_paths(chdir: str | None, pythonpath: list[str] | None) -> None:
    if chdir is not None:
        try:
            os.chdir(chdir)
        except OSError as exc:
            _fail(f"--chdir {chdir}: {exc.strerror}")
    dirs = [d for item in pythonpath or [] for d in item.split(",") if d]
    for path in reversed(dirs):
        sys.path.insert(0, os.path.abspath(path))


def _configure_logging(
    level: str, access_log: str | None, error_log: str | None, processes: bool = False
) -> None:
    """``processes``: several processes share the log, so each line names its process."""
    handler: logging.Handler
    if error_log is None or error_log == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(error_log)
    log_format = foreground.LOG_FORMAT_PID if processes else foreground.LOG_FORMAT
    logging.basicConfig(level=level.upper(), format=log_format, handlers=[handler])
    access = logging.getLogger("treadle.access")
    access.propagate = False
    if access_log is None:
        access.setLevel(logging.WARNING)  # no per-request logging work at all
        return
    if access_log == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(access_log)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)


def _binds(explicit: list[str] | None) -> list[str]:
    """``--bind`` as given; without it, the sockets systemd passed, else the default."""
    inherited = systemd.listen_fds()
    if not explicit:
        return [f"fd://{fd}" for fd in inherited] or [DEFAULT_BIND]
    unused = sorted(set(inherited) - {int(b[5:]) for b in explicit if b.startswith("fd://")})
    if unused:
        logging.getLogger("treadle.error").warning(
            "--bind given: not serving on the sockets systemd passed (fds %s)", unused
        )
    return explicit


class _PidFileError(Exception):
    pass


def _write_pid_file(path: str | None) -> None:
    """Written once listening (a failed start leaves a running server's file alone)."""
    if path is None:
        return
    pid = str(os.getpid())
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(pid + "\n")
        os.replace(tmp, path)  # whole or not at all, for whoever reads it
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _PidFileError from exc


def _remove_pid_file(path: str) -> None:
    with contextlib.suppress(OSError):
        with open(path) as f:
            ours = f.read().strip() == str(os.getpid())
        if ours:  # not a file a newer server wrote since
            os.unlink(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    unknown = unknown_option(parser, arguments)
    if unknown is not None:
        hint = FOREIGN_OPTIONS.get(unknown)
        parser.error(f"unrecognized option {unknown!r}" + (f": {hint}" if hint else ""))
    args = parser.parse_args(arguments)
    if args.max_threads is not None and args.max_threads < args.threads:
        _fail("--max-threads must be at least --threads")
    if args.max_requests_jitter and args.max_requests is None:
        _fail("--max-requests-jitter needs --max-requests")
    # A worker of a supervisor: the same command line, and the supervisor's sockets.
    supervised = Supervised.from_environ()
    if args.umask is not None:
        os.umask(args.umask)
    start_dir = os.getcwd()
    _set_up_paths(args.chdir, args.pythonpath)
    if supervised is None and (args.workers or args.max_requests or args.reload):
        return _supervise(args, arguments, start_dir)
    try:
        app = load_app(args.app, args.factory)
    except AppImportError as exc:
        _fail(str(exc))
    ssl_context = _ssl_context(args)
    try:
        _configure_logging(
            args.log_level, args.access_log, args.error_log, processes=supervised is not None
        )
    except OSError as exc:
        _fail(f"cannot open log file: {exc}")
    server = HttpServer(
        supervised.binds() if supervised is not None else _binds(args.bind),
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
        unix_socket_mode=args.socket_mode,
        ssl_context=ssl_context,
        proxy=ProxyTrust.parse(args.forwarded_allow_ips, args.proxy_headers),
        root_path=args.root_path,
        proxy_protocol=args.proxy_protocol,
    )
    if supervised is not None:
        supervised.attach(server)  # the supervisor writes the pid file
        foreground.run(server, args.graceful_timeout, on_ready=supervised.ready)
        return 0
    try:
        foreground.run(server, args.graceful_timeout, on_ready=partial(_write_pid_file, args.pid))
    except _PidFileError as exc:
        print(f"treadle: error: cannot write --pid {args.pid}: {exc.__cause__}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"treadle: error: cannot listen: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.pid is not None:
            _remove_pid_file(args.pid)
    return 0


def _supervise(args: argparse.Namespace, arguments: list[str], start_dir: str) -> int:
    """``--workers``, ``--max-requests``, ``--reload``: bind, and run workers with the same
    command line (started in ``start_dir``, so that ``--chdir`` means the same to them); the
    app is imported in the workers only."""
    ssl_context = _ssl_context(args)  # a certificate that does not load fails here, once
    try:
        _configure_logging(args.log_level, args.access_log, args.error_log, processes=True)
    except OSError as exc:
        _fail(f"cannot open log file: {exc}")
    watch = None
    if args.reload:
        watch = [os.getcwd()]
        watch += [d for item in args.pythonpath or [] for d in item.split(",") if d]

    def on_ready() -> None:
        try:
            _write_pid_file(args.pid)
        except _PidFileError as exc:
            print(
                f"treadle: error: cannot write --pid {args.pid}: {exc.__cause__}", file=sys.stderr
            )
            raise

    supervisor = Supervisor(
        arguments,
        _binds(args.bind),
        workers=args.workers or 1,
        graceful_timeout=args.graceful_timeout,
        tls=ssl_context is not None,
        backlog=args.backlog,
        unix_socket_mode=args.socket_mode,
        stats=args.stats_path is not None,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        watch=watch,
        cwd=start_dir,
    )
    try:
        return supervisor.run(on_ready=on_ready)
    except OSError as exc:
        print(f"treadle: error: cannot listen: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.pid is not None:
            _remove_pid_file(args.pid)


def _fail(message: str) -> NoReturn:
    print(f"treadle: error: {message}", file=sys.stderr)
    raise SystemExit(2)
