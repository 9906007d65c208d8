"""Access log lines in the Combined Log Format, on the ``treadle.access`` logger."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import HttpRequest

access_log = logging.getLogger("treadle.access")


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
        req.conn.remote_addr or "-",
        stamp,
        line.replace('"', '\\"'),
        req.status[:3] or "-",
        req.bytes_sent or "-",
        _header(req, b"referer"),
        _header(req, b"user-agent"),
    )
