"""Proxy + origin mode: a real reverse proxy in front of a real server, both started here.

`fronted(proxy, origin_command)` starts the origin like `--server-cmd` (`{port}` becomes a free
port, or the command prints `listening on http://HOST:PORT`), then the proxy from `proxies`
(nginx with its upstream keep-alive pool, or HAProxy) forwarding to the origin's port, and
yields the proxy as the target, named `PROXY+ORIGIN` (`nginx+treadle`). There is no recording
backend: when the origin hosts the reflection app, preflight finds it through the proxy and the
run is in reflection mode, judging what the app saw after the proxy's rewriting. The target's
`origin` is the server behind it, so `alive()` notices an origin that died. `TREADLE` as the
origin command is shorthand for treadle hosting the reflection app (`TREADLE_ORIGIN`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from treadle_conformance import proxies
from treadle_conformance.target import Settings, Target, TargetError, started, treadle_command

TREADLE = "treadle"
# treadle with the reflection app, its idle and head timeouts those of the proxies (8 s).
TREADLE_ORIGIN = treadle_command(keep_alive=8, timeout=8)
MODE = "proxy + origin"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})


def origin_command(command: str) -> tuple[str, str]:
    """(command, name) for an --origin-cmd value; `treadle` is the shorthand."""
    if command.strip() == TREADLE:
        return TREADLE_ORIGIN, TREADLE
    return command, ""


def short_name(proxy: str) -> str:
    """The proxy's name as --proxy spells it (`nginx-proxy` is `nginx`)."""
    return next((cli for cli, key in proxies.NAMES.items() if key == proxy), proxy)


@contextlib.contextmanager
def fronted(
    proxy: str, command: str, settings: Settings | None = None, name: str = ""
) -> Iterator[Target]:
    """The origin started from command, then proxy (a key of `proxies.PROXIES`) in front of it;
    yield the proxy's Target (not yet pre-flighted) and end both afterwards. A missing proxy
    program raises `blackbox.Missing`; an origin that does not come up, `TargetError`."""
    settings = settings or Settings()
    origin_cmd, origin_name = origin_command(command)
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(started(origin_cmd, name=origin_name, settings=settings))
        if origin.scheme != "http" or origin.host not in LOOPBACK:
            raise TargetError(
                f"the origin listens on {origin.url}; the proxy forwards to http://127.0.0.1"
            )
        proxy_cmd, port = stack.enter_context(proxies.serving(proxy, origin.port))
        target = stack.enter_context(
            started(
                proxy_cmd,
                name=name or f"{short_name(proxy)}+{origin.name}",
                settings=settings,
                port=port,
            )
        )
        target.origin = origin
        yield target
