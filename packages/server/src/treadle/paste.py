"""PasteDeploy entry points, so a ``.ini`` file (Pyramid's ``pserve``, ``paster``) can name treadle:

    [server:main]
    use = egg:treadle
    listen = 127.0.0.1:8080 [::1]:8080
    threads = 8
    max_body_size = 10485760

``egg:treadle`` finds ``server_factory`` (group ``paste.server_factory``) or ``server_runner``
(``paste.server_runner``); both take the section's options as strings. Where to listen: ``listen``
(or ``bind``), a list of ``HOST:PORT``, ``[IPv6]:PORT``, Unix socket paths or ``fd://N``; or
``host`` and ``port`` (default 127.0.0.1:8000); ``unix_socket`` adds a Unix socket. The other
options are the command line's, with ``_`` for ``-`` (``max_threads``, ``graceful_timeout``,
``socket_mode``...), and a few of waitress's names for the same things. An unknown option is an
error, not ignored: a misspelt limit would otherwise silently not apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .limits import Limits
from .server import parse_bind_addr, serve
from .wsgi import WSGIApp

Options = Mapping[str, Any]


def _int(value: Any) -> int:
    number = int(str(value).strip())
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _seconds(value: Any) -> float:
    number = float(str(value).strip())
    if not number >= 0 or number == float("inf"):
        raise ValueError("must be a number of seconds")
    return number


def _octal(value: Any) -> int:
    return int(str(value).strip().removeprefix("0o"), 8)


def _text(value: Any) -> str:
    return str(value).strip()


# option -> (where it goes: a HttpServer keyword, "limits.<field>" or "run.<name>", parse)
_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "threads": ("threads", _int),
    "max_threads": ("max_threads", _int),
    "queue_size": ("queue_size", _int),
    "backlog": ("backlog", _int),
    "stats_path": ("stats_path", _text),
    "socket_mode": ("unix_socket_mode", _octal),
    "unix_socket_perms": ("unix_socket_mode", _octal),  # waitress
    "max_request_line": ("limits.max_request_line", _int),
    "max_field_line": ("limits.max_field_line", _int),
    "max_header_count": ("limits.max_header_count", _int),
    "max_head_size": ("limits.max_head_size", _int),
    "max_request_header_size": ("limits.max_head_size", _int),  # waitress
    "max_body_size": ("limits.max_body_size", _int),
    "max_request_body_size": ("limits.max_body_size", _int),  # waitress
    "keep_alive": ("limits.keep_alive_timeout", _seconds),
    "timeout": ("limits.timeout", _seconds),
    "channel_timeout": ("limits.timeout", _seconds),  # waitress
    "graceful_timeout": ("run.graceful_timeout", _seconds),
}
_WHERE = ("listen", "bind", "host", "port", "unix_socket")


def server_options(options: Options) -> tuple[list[str], dict[str, Any], float]:
    """(addresses, ``HttpServer`` keywords, graceful timeout) from a ``[server:...]`` section.
    ``ValueError`` names the option at fault."""
    unknown = sorted(set(options) - set(_OPTIONS) - set(_WHERE))
    if unknown:
        raise ValueError(f"treadle: unknown [server] option(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    limit_fields: dict[str, Any] = {}
    graceful_timeout = 10.0
    for name, raw in options.items():
        if name in _WHERE:
            continue
        target, parse = _OPTIONS[name]
        try:
            value = parse(raw)
        except ValueError as exc:
            raise ValueError(f"treadle: [server] {name} = {raw!r}: {exc}") from None
        if target.startswith("limits."):
            limit_fields[target.removeprefix("limits.")] = value
        elif target == "run.graceful_timeout":
            graceful_timeout = value
        else:
            kwargs[target] = value
    if limit_fields:
        kwargs["limits"] = dataclasses.replace(Limits(), **limit_fields)
    return _addresses(options), kwargs, graceful_timeout


def _addresses(options: Options) -> list[str]:
    listen = str(options.get("listen", "")) + " " + str(options.get("bind", ""))
    addrs = listen.replace(",", " ").split()
    if addrs and ("host" in options or "port" in options):
        raise ValueError("treadle: [server] give either listen (or bind) or host and port")
    if "host" in options or "port" in options or not (addrs or "unix_socket" in options):
        host = str(options.get("host", "127.0.0.1")).strip()
        port = str(options.get("port", "8000")).strip()
        addrs.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if "unix_socket" in options:
        addrs.append("unix:" + str(options["unix_socket"]).strip())
    addrs = ["0.0.0.0" + a[1:] if a.startswith("*:") else a for a in addrs]  # waitress's any
    for addr in addrs:
        try:
            parse_bind_addr(addr)
        except ValueError as exc:
            raise ValueError(f"treadle: [server] {exc}") from None
    return addrs


def server_runner(wsgi_app: WSGIApp, global_conf: Options, **options: Any) -> None:
    """``paste.server_runner``: serve ``wsgi_app`` until SIGTERM or Ctrl-C."""
    server_factory(global_conf, **options)(wsgi_app)


def server_factory(global_conf: Options, **options: Any) -> Callable[[WSGIApp], None]:
    """``paste.server_factory``: check the options now; the returned callable serves an app."""
    addrs, kwargs, graceful_timeout = server_options(options)

    def run(wsgi_app: WSGIApp) -> None:
        serve(wsgi_app, addrs, graceful_timeout=graceful_timeout, **kwargs)

    return run
