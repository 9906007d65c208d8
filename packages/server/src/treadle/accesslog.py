"""Access log lines in the Combined Log Format, on the ``treadle.access`` logger, for answered
requests and for those the server refused itself."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import HttpConnection
    from .errors import HttpError
    from .request import HttpRequest

access_log = logging.getLogger("treadle.access")
error_log = logging.getLogger("treadle.error")


def _header(req: HttpRequest, name: bytes) -> str:
    for key, value in req.inheaders:
        if key.lower() == name:
            return value.decode("latin-1").replace('"', '\\"')
    return "-"


def log_request(req: HttpRequest) -> None:
    """host ident authuser [date] "request line" status bytes "referer" "user-agent" """
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    line = f"{req.method} {req.uri.decode('latin-1')} {req.request_protocol}"
    access_log.info(
        '%s - - [%s] "%s" %s %s "%s" "%s"',
        req.remote_addr or "-",
        stamp,
        line.replace('"', '\\"'),
        req.status[:3] or "-",
        req.bytes_sent or "-",
        _header(req, b"referer"),
        _header(req, b"user-agent"),
    )


# At most one treadle.error note on refused requests per this many seconds (a flood of garbage
# must not become a flood of log lines); the note counts what it left out.
REFUSAL_NOTE_INTERVAL = 1.0
_refusals = {"last": 0.0, "quiet": 0}
_refusal_lock = threading.Lock()


def _printable(raw: bytes) -> str:
    """A client's bytes for a log line: printable ASCII as is, anything else as \\xHH."""
    text = raw.decode("ascii", "backslashreplace")
    if text.isprintable() and '"' not in text:
        return text
    return "".join(
        ch if " " <= ch <= "~" and ch not in '"\\' else f"\\x{ord(ch):02x}" for ch in text
    )


def log_refusal(conn: HttpConnection, error: HttpError, sent: int) -> None:
    """A request the server answered itself (400, 408, 413, 414, 431, 503, 505...): an access
    line like any response, and the reason at info level, rate-limited."""
    line = _printable(conn.request_line()[:1024])
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            '%s - - [%s] "%s" %d %d "-" "-"',
            conn.remote_addr or "-",
            time.strftime("%d/%b/%Y:%H:%M:%S %z"),
            line,
            error.status,
            sent,
        )
    if not error_log.isEnabledFor(logging.INFO):
        return
    now = time.monotonic()
    with _refusal_lock:
        if now - _refusals["last"] < REFUSAL_NOTE_INTERVAL:
            _refusals["quiet"] += 1
            return
        quiet, _refusals["quiet"], _refusals["last"] = _refusals["quiet"], 0, now
    error_log.info(
        "refused %s from %s: %d %s%s",
        f'"{line[:200]}"' if line else "a request",
        conn.remote_addr or "-",
        error.status,
        error.detail,
        f" ({quiet} more since the last note)" if quiet else "",
    )
