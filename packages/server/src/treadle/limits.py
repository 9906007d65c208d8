"""Named limits, each with the precedent it follows. One table for the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

# Apache's LimitRequestLine default; a longer request line is answered 414.
MAX_REQUEST_LINE = 8190
# Apache's LimitRequestFieldSize default; a longer field line is answered 431.
MAX_FIELD_LINE = 8190
# Apache's and gunicorn's default field count; more fields are answered 431.
MAX_HEADER_COUNT = 100
# The whole head (request line + fields); nginx's large_client_header_buffers is 4 x 8 KiB.
MAX_HEAD_SIZE = 64 * 1024
# waitress's max_request_body_size; a larger body is answered 413.
MAX_BODY_SIZE = 1024 * 1024 * 1024
# waitress's inbuf_overflow: bodies above this are spooled to a temporary file while buffering.
BODY_SPOOL_SIZE = 512 * 1024
# All bodies still in memory together, across connections; past it, a body spools at once.
# 64 MiB is 128 bodies at the spool size: a thousand slow uploads cost disk, not RSS.
BODY_MEMORY_BUDGET = 64 * 1024 * 1024
# Apache mod_reqtimeout's MinRate: each 500 bytes of body received buy one more second, so a
# client trickling a body slower than this runs out of time however often it sends a byte.
MIN_UPLOAD_RATE = 500
# Apache's KeepAliveTimeout: an idle keep-alive connection is closed after this many seconds
# (0: no keep-alive, every connection closes after one response, as gunicorn's --keep-alive 0).
KEEP_ALIVE_TIMEOUT = 5.0
# cheroot's and waitress's socket timeout spirit: the deadline for a whole request head, for
# each gap in a body upload, and for each blocked send of a response.
TIMEOUT = 10.0
# How long a closing connection is drained after the final response (lingering close).
LINGER_TIMEOUT = 2.0
# Response bytes one connection may hold in memory for a client that is not reading, on top of
# the kernel's socket buffers: a response whose tail fits never holds a worker (see output.py).
# waitress spools pending output past 1 MiB (outbuf_overflow); a quarter of that keeps 1,000
# such clients under 256 MiB. 0: a worker waits for every byte to leave.
SEND_BUFFER_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_request_line: int = MAX_REQUEST_LINE
    max_field_line: int = MAX_FIELD_LINE
    max_header_count: int = MAX_HEADER_COUNT
    max_head_size: int = MAX_HEAD_SIZE
    max_body_size: int = MAX_BODY_SIZE
    body_spool_size: int = BODY_SPOOL_SIZE
    body_memory_budget: int = BODY_MEMORY_BUDGET
    min_upload_rate: float = MIN_UPLOAD_RATE
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT
    timeout: float = TIMEOUT
    linger_timeout: float = LINGER_TIMEOUT
    send_buffer_size: int = SEND_BUFFER_SIZE

    def __post_init__(self) -> None:
        for name in ("max_request_line", "max_field_line", "max_header_count", "max_head_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("max_body_size", "body_spool_size", "body_memory_budget", "send_buffer_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("timeout", "linger_timeout", "min_upload_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.keep_alive_timeout < 0:
            raise ValueError("keep_alive_timeout must not be negative")
