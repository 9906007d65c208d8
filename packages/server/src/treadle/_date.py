"""The Date header value, formatted once per second (RFC 9110 §6.6.1 IMF-fixdate)."""

from __future__ import annotations

import time
from email.utils import formatdate

_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _cache
    now = int(time.time())
    second, text = _cache
    if second != now:
        text = formatdate(now, usegmt=True)
        _cache = (now, text)
    return text
