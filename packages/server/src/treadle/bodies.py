"""Request bodies: receivers fed from the wire that then serve as ``wsgi.input``.

A body is buffered whole before the app runs, so a slow upload never holds a worker thread:
the connection waits in the acceptor's selector while ``feed()`` takes what arrives. Small
bodies stay in memory; past ``body_spool_size`` they are spooled to a temporary file (the way
waitress does), and so is any body once all bodies in memory together pass the server's
``MemoryBudget``. A body that cannot be stored (no file descriptor, a full disk, a file-size
limit) fails its own request with 503, never the thread that was storing it. ``feed()``
returns how many bytes belonged to the body, so whatever follows (a pipelined request) stays
in the connection's buffer.

The framing is chosen from a table, not an if-ladder: ``body_for(head, limits)``.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

from . import _abnf
from .errors import BadRequest, ContentTooLarge, FieldsTooLarge, ServiceUnavailable
from .limits import Limits
from .parser import Headers, RequestHead

# A chunk-size line with extensions longer than this is refused (cheroot and waitress bound
# it too; real clients send a few hex digits).
MAX_CHUNK_LINE = 4096
# More hex digits than this cannot be a size anybody means: 2**64 and beyond.
MAX_CHUNK_SIZE_DIGITS = 16


class MemoryBudget:
    """Bytes that request bodies may hold in memory, all connections together."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self.used + size > self.total:
                return False
            self.used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.used -= size


class _BufferedBody:
    """The readable half: a file-like over the buffered body, as PEP 3333 asks of wsgi.input."""

    complete = False

    def __init__(self, limits: Limits, budget: MemoryBudget | None) -> None:
        self._spool_size = limits.body_spool_size
        self._budget = budget
        self._file: IO[bytes] = io.BytesIO()
        self._size = 0
        self._in_memory = 0  # bytes taken from the budget

    def _store(self, data: bytes | memoryview) -> None:
        size = len(data)
        try:
            in_memory = self._in_memory >= 0
            if in_memory and (self._size + size > self._spool_size or not self._take(size)):
                self._spool()
            self._file.write(data)
        except OSError as exc:
            # EMFILE, ENOSPC, EFBIG, "no usable temporary directory": this request fails alone.
            raise ServiceUnavailable(f"cannot store the request body ({exc})") from None
        self._size += size

    def _spool(self) -> None:
        memory = self._file
        assert isinstance(memory, io.BytesIO)
        spooled = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by close()
        try:
            spooled.write(memory.getbuffer())
        except BaseException:
            spooled.close()
            raise
        self._release()
        self._in_memory = -1  # spooled: nothing more is taken from the budget
        self._file = spooled

    def _take(self, size: int) -> bool:
        if self._budget is None:
            return True
        if not self._budget.take(size):
            return False
        self._in_memory += size
        return True

    def _release(self) -> None:
        if self._budget is not None and self._in_memory > 0:
            self._budget.give_back(self._in_memory)
        self._in_memory = 0

    def _finish(self) -> None:
        self.complete = True
        self._file.seek(0)

    @property
    def size(self) -> int:
        return self._size

    def read(self, size: int | None = -1) -> bytes:
        return self._file.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._file.readline(-1 if size is None else size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._file.readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._file.readline, b"")

    def close(self) -> None:
        self._release()
        self._file.close()


class KnownLengthRFile(_BufferedBody):
    """A body framed by Content-Length (RFC 9112 §6.2)."""

    def __init__(self, length: int, limits: Limits, budget: MemoryBudget | None = None) -> None:
        if length > limits.max_body_size:
            raise ContentTooLarge("Content-Length over the body size limit")
        super().__init__(limits, budget)
        self.remaining = length
        if length == 0:
            self._finish()

    def feed(self, data: bytes | memoryview) -> int:
        take = min(len(data), self.remaining)
        if take:
            self._store(data[:take])
            self.remaining -= take
            if self.remaining == 0:
                self._finish()
        return take


class ChunkedRFile(_BufferedBody):
    """A body in the chunked transfer coding, with extensions and trailers (RFC 9112 §7.1)."""

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self, limits: Limits, budget: MemoryBudget | None = None) -> None:
        super().__init__(limits, budget)
        self._limits = limits
        self._state = self._SIZE
        self._line = b""  # a size or trailer line received in part
        self._left = 0  # bytes of chunk data still to come
        self._trailer_bytes = 0
        self.trailers: Headers = []

    def feed(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        pos = 0
        while pos < len(view) and not self.complete:
            if self._state == self._DATA:
                take = min(len(view) - pos, self._left)
                self._store(view[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = self._DATA_END
                continue
            line, pos = self._take_line(view, pos)
            if line is None:
                break
            if self._state == self._SIZE:
                self._on_size_line(line)
            elif self._state == self._DATA_END:
                if line:
                    raise BadRequest("chunk data not followed by CRLF")
                self._state = self._SIZE
            else:
                self._on_trailer_line(line)
        return pos

    def _take_line(self, view: memoryview, pos: int) -> tuple[bytes | None, int]:
        """A whole CRLF-terminated line (without it), or None while it is still arriving."""
        if self._state == self._DATA_END:
            # Exactly CRLF must follow chunk data; look at no more than two bytes.
            need = 2 - len(self._line)
            piece = bytes(view[pos : pos + need])
            self._line += piece
            pos += len(piece)
            if len(self._line) < 2:
                return None, pos
            line, self._line = self._line, b""
            return (b"" if line == b"\r\n" else line), pos
        limit = self._limits.max_field_line if self._state == self._TRAILER else MAX_CHUNK_LINE
        chunk = bytes(view[pos : pos + limit + 2])
        end = chunk.find(b"\n")
        if end < 0:
            self._line += chunk
            if len(self._line) > limit:
                raise BadRequest("chunk size or trailer line too long")
            return None, pos + len(chunk)
        line = self._line + chunk[: end + 1]
        self._line = b""
        if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            raise BadRequest("chunk line not terminated by CRLF")
        return line[:-2], pos + end + 1

    def _on_size_line(self, line: bytes) -> None:
        match = _abnf.CHUNK_LINE.fullmatch(line)
        if match is None:
            raise BadRequest("invalid chunk size line")
        digits = match[1].lstrip(b"0")
        if len(digits) > MAX_CHUNK_SIZE_DIGITS:
            raise BadRequest("chunk size overflow")
        size = int(digits or b"0", 16)
        if self._size + size > self._limits.max_body_size:
            raise ContentTooLarge("chunked body over the body size limit")
        if size == 0:
            self._state = self._TRAILER
        else:
            self._left = size
            self._state = self._DATA

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            self._finish()
            return
        self._trailer_bytes += len(line) + 2
        if (
            self._trailer_bytes > self._limits.max_head_size
            or len(self.trailers) >= self._limits.max_header_count
        ):
            raise FieldsTooLarge("trailer section too large")
        match = _abnf.FIELD_LINE.fullmatch(line)
        if match is None:
            raise BadRequest("invalid trailer field line")
        self.trailers.append((match[1], match[2].strip(b" \t")))


Body = KnownLengthRFile | ChunkedRFile


def body_for(head: RequestHead, limits: Limits, budget: MemoryBudget | None = None) -> Body:
    """The receiver for a request's body, chosen by its framing (RFC 9112 §6.3)."""
    if head.chunked:
        return ChunkedRFile(limits, budget)
    return KnownLengthRFile(head.content_length or 0, limits, budget)
