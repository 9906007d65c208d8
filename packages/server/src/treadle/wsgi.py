"""``WSGIGateway_10``: one request handed to a PEP 3333 application.

The environ is a copy of a per-server base dict plus what this request adds; header names are
mapped to ``HTTP_*`` keys through a cache, and names containing ``_`` are dropped so that
``X_Forwarded_For`` cannot pose as ``X-Forwarded-For`` (both would be ``HTTP_X_FORWARDED_FOR``).

``start_response`` checks what the app gives before anything reaches the wire: a status of three
digits and a reason, header names that are tokens, values without CR, LF, NUL or other controls,
no hop-by-hop fields. A refused response becomes a 500 (if nothing was sent yet).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from ._date import http_date

if TYPE_CHECKING:
    from .request import HttpRequest
    from .server import HttpServer

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_STATUS = re.compile(r"[1-5][0-9]{2} [\t \x21-\x7e\x80-\xff]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\n-\x1f\x7f]|[^\x00-\xff]")
# RFC 9110 §7.6.1: connection-specific fields are the server's business, not the app's.
_HOP_BY_HOP = frozenset(
    ("keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade")
)

_header_keys: dict[bytes, str | None] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}


def _environ_key(name: bytes) -> str | None:
    key = _header_keys.get(name)
    if key is None and name not in _header_keys:
        lowered = name.lower()
        if lowered in (b"content-type", b"content-length"):
            key = _header_keys[lowered]
        elif b"_" in name:
            key = None
        else:
            key = "HTTP_" + name.decode("ascii").upper().replace("-", "_")
        if len(_header_keys) < 4096:  # bounded: names are client-chosen
            _header_keys[name] = key
    return key


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like in blocks; close it when done."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(self.blksize):
            yield block


def base_environ(server: HttpServer) -> Environ:
    """What every request's environ starts from."""
    name, port = server.server_name_and_port()
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": server.software,
        "SERVER_NAME": name,
        "SERVER_PORT": port,
        "SCRIPT_NAME": server.root_path,
    }


def check_root_path(root_path: str) -> str:
    """A ``SCRIPT_NAME`` prefix as the environ wants it: ``"/app"`` (from ``"/app/"``, say),
    or ``""`` for none."""
    root = root_path.rstrip("/")
    if root and not root.startswith("/"):
        raise ValueError(f"root path {root_path!r} must start with '/'")
    if any(ch in root for ch in "?#") or not root.isprintable():
        raise ValueError(f"root path {root_path!r} must be a plain path")
    return root


class AppError(Exception):
    """The application broke the WSGI contract."""


# (name, value) pairs from apps already found valid, with the lower-case name: most responses
# repeat the same few, so they are checked once. Bounded, since values can vary without end.
_checked_headers: dict[tuple[str, str], str] = {}


def _check_header(item: tuple[str, str]) -> str:
    """Validate an app's header; return its lower-case name."""
    if type(item) is not tuple or len(item) != 2:
        raise AppError(f"a header must be a (name, value) tuple: {item!r}")
    name, value = item
    if type(name) is not str or type(value) is not str:
        raise AppError(f"header name and value must be str: {item!r}")
    if not _TOKEN.fullmatch(name):
        raise AppError(f"invalid header name from application: {name!r}")
    if _BAD_VALUE.search(value):
        raise AppError(f"invalid character in header {name} from application")
    lname = name.lower()
    if len(_checked_headers) < 1024:
        _checked_headers[item] = lname
    return lname


class WSGIGateway_10:
    """The WSGI 1.0 (PEP 3333) gateway for one request."""

    __slots__ = ("req", "started")

    def __init__(self, req: HttpRequest) -> None:
        self.req = req
        self.started = False

    def get_environ(self) -> Environ:
        req = self.req
        conn = req.conn
        server = conn.server
        env = server.environ_base.copy()
        path = req.path
        env["REQUEST_METHOD"] = req.method
        path_info = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        root = server.root_path
        if root and path_info.startswith(root):
            # SCRIPT_NAME is root (waitress's url_prefix); it is stripped as whole segments:
            # "/app" from "/app/x" and "/app", not from "/apple".
            rest = path_info[len(root) :]
            if not rest or rest[0] == "/":
                path_info = rest
        env["PATH_INFO"] = path_info
        env["QUERY_STRING"] = req.qs.decode("latin-1")
        env["REQUEST_URI"] = env["RAW_URI"] = req.uri.decode("latin-1")
        env["SERVER_PROTOCOL"] = req.request_protocol
        env["REMOTE_ADDR"] = conn.remote_addr
        env["REMOTE_PORT"] = conn.remote_port
        env["wsgi.input"] = req.body
        if conn.tls_environ is not None:
            env.update(conn.tls_environ)
        for name, value in req.inheaders:
            key = _header_keys.get(name) or _environ_key(name)
            if key is None:
                continue
            text = value.decode("latin-1")
            if key in env:
                sep = "; " if key == "HTTP_COOKIE" else ", "
                text = env[key] + sep + text
            env[key] = text
        host = req.head.host
        if host is not None and req.head.scheme is not None:
            # RFC 9112 §3.2.2: the target's authority wins over Host. Its scheme does not
            # change wsgi.url_scheme, which tells the app what the connection really is: a
            # client must not be able to claim TLS by writing "https://".
            env["HTTP_HOST"] = host.decode("latin-1")
        if server.forwarded is not None:
            server.forwarded.apply(env)
            req.remote_addr = env["REMOTE_ADDR"]  # for the access log
        body = req.body
        if req.head.chunked:
            env["CONTENT_LENGTH"] = str(body.size)
            trailers = getattr(body, "trailers", [])
            env["treadle.trailers"] = [
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in trailers
            ]
        return env

    def respond(self) -> None:
        req = self.req
        response = req.server.wsgi_app(self.get_environ(), self.start_response)
        try:
            if type(response) is list and len(response) == 1 and not req.sent_headers:
                if not self.started:
                    raise AppError("application returned without calling start_response")
                chunk = response[0]
                if type(chunk) is not bytes:
                    raise AppError(f"application yielded {type(chunk).__name__}, not bytes")
                req.send_headers(len(chunk), chunk)
                return
            for chunk in response:
                if type(chunk) is not bytes:
                    raise AppError(f"application yielded {type(chunk).__name__}, not bytes")
                if chunk or not self.started:
                    self.write(chunk)
            if not self.started:
                raise AppError("application returned without calling start_response")
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        req = self.req
        if exc_info is not None:
            try:
                if req.sent_headers:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle
        elif self.started:
            raise AppError("start_response called a second time without exc_info")
        if type(status) is not str or not _STATUS.fullmatch(status):
            raise AppError(f"invalid status line from application: {status!r}")
        code = int(status[:3])
        if code < 200:
            raise AppError("informational (1xx) final status from application")
        out: list[tuple[str, str]] = []
        remaining: int | None = None
        has_date = has_server = False
        close = req.close_connection
        for item in headers:
            lname = _checked_headers.get(item) if type(item) is tuple else None
            if lname is None:
                lname = _check_header(item)
            name, value = item
            if lname == "content-length":
                if not value.isdigit() or remaining is not None:
                    raise AppError(f"invalid Content-Length from application: {value!r}")
                if code == 204:
                    continue  # RFC 9110 §8.6: never in a 204
                remaining = int(value)
            elif lname == "connection":
                if "close" in value.lower():
                    close = True
                continue
            elif lname in _HOP_BY_HOP:
                raise AppError(f"hop-by-hop header {name} from application")
            elif lname == "date":
                has_date = True
            elif lname == "server":
                has_server = True
            out.append(item)
        if not has_date:
            out.append(("Date", http_date()))
        if not has_server:
            out.append(("Server", req.server.software))
        req.status = status
        req.outheaders = out
        req.remaining = remaining
        req.close_connection = close
        self.started = True
        return self.write

    def write(self, chunk: bytes) -> None:
        if not self.started:
            raise AppError("write() before start_response")
        if type(chunk) is not bytes:
            raise AppError(f"write() takes bytes, not {type(chunk).__name__}")
        self.req.write(chunk)
