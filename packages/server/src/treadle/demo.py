"""The demo app that ``scripts/serve`` runs: ``treadle.demo:app``.

/            a small hello page
/hello       "Hello, world!" as text/plain: the cheapest route
/echo        JSON of what the app saw: method, path, query, headers, body
/stream?n=N  N lines streamed without a Content-Length (chunked on HTTP/1.1)
/sleep?ms=N  sleeps N milliseconds (at most 60 s), then answers
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs

from .wsgi import Environ, StartResponse

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>treadle</title></head>
<body><h1>Hello from treadle</h1>
<ul><li><a href="/hello">/hello</a></li><li><a href="/echo?x=1">/echo</a></li>
<li><a href="/stream?n=5">/stream?n=5</a></li>
<li><a href="/sleep?ms=100">/sleep?ms=100</a></li></ul>
</body></html>
"""


def _int_arg(environ: Environ, name: str, default: int, most: int) -> int:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    try:
        return max(0, min(most, int(values[0]))) if values else default
    except ValueError:
        return default


def _echo(environ: Environ) -> bytes:
    body = environ["wsgi.input"].read()
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    return json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "protocol": environ["SERVER_PROTOCOL"],
            "headers": headers,
            "body_length": len(body),
            "body": body.decode("utf-8", "replace"),
        },
        indent=2,
    ).encode()


def _stream(count: int) -> Iterator[bytes]:
    for i in range(count):
        yield f"line {i + 1} of {count}\n".encode()


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, world!"]
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [PAGE]
    if path == "/echo":
        body = _echo(environ)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream(_int_arg(environ, "n", 10, 100_000))
    if path == "/sleep":
        ms = _int_arg(environ, "ms", 100, 60_000)
        time.sleep(ms / 1000)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"slept {ms} ms\n".encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
