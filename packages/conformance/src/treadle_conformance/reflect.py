"""The reflection WSGI app: any WSGI server can host it, and it tells the harness what it saw.

Every path answers JSON describing the request as the app received it (method, decoded path,
raw query, protocol, headers, body length and SHA-256), so a scenario can check that the server
delivered exactly what the client wrote, and that smuggled bytes never became a request. Paths
under `/_/` are behaviours instead: sleeping, streaming, big bodies, chosen statuses, and apps
that misbehave on purpose, to see what the server puts on the wire for them.
Standard library only, so it runs under any server.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Callable[[bytes], object]]
Environ = dict[str, Any]

MARK = "treadle-conformance"
MAX_ECHO = 4096


def _read_body(environ: Environ) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        return bytes(stream.read(int(length)))
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower().find("chunked") >= 0 or environ.get(
        "wsgi.input_terminated"
    ):
        chunks = []
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    return b""


def _headers(environ: Environ) -> list[list[str]]:
    seen = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            seen.append([key[5:].replace("_", "-").lower(), value])
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            seen.append([key.replace("_", "-").lower(), value])
    return sorted(seen)


def describe(environ: Environ, body: bytes) -> dict[str, Any]:
    return {
        "reflect": MARK,
        "method": environ.get("REQUEST_METHOD", ""),
        "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "protocol": environ.get("SERVER_PROTOCOL", ""),
        "headers": _headers(environ),
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body": body.decode("latin-1") if len(body) <= MAX_ECHO else None,
    }


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [str(default)])[0])
    except ValueError:
        return default


def _stream(n: int, size: int) -> Iterator[bytes]:
    for i in range(n):
        yield (b"%06d" % i + b"." * size)[:size] + b"\n"


def _raise_after() -> Iterator[bytes]:
    yield b"partial body"
    raise RuntimeError("the app failed half-way through its body (on purpose)")


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if not path.startswith("/_/"):
        payload = json.dumps(describe(environ, _read_body(environ))).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]
    plain = [("Content-Type", "text/plain")]
    route = path[3:]
    if route == "sleep":
        ms = _int(query, "ms", 100)
        time.sleep(min(ms, 30_000) / 1000)
        body = b"slept %d ms" % ms
        start_response("200 OK", [*plain, ("Content-Length", str(len(body)))])
        return [body]
    if route == "stream":
        start_response("200 OK", plain)
        return _stream(_int(query, "n", 10), _int(query, "size", 32))
    if route == "big":
        size = _int(query, "size", 1 << 20)
        start_response("200 OK", [*plain, ("Content-Length", str(size))])
        block = b"x" * 65536
        return (block[: min(65536, size - i)] for i in range(0, size, 65536))
    if route == "status":
        code = _int(query, "code", 200)
        start_response(f"{code} Chosen", plain)
        return [b"body the app wrote for status %d" % code]
    if route == "ignore-body":
        start_response("200 OK", [*plain, ("Content-Length", "7")])
        return [b"ignored"]
    if route == "read-some":
        environ["wsgi.input"].read(3)
        start_response("200 OK", [*plain, ("Content-Length", "4")])
        return [b"read"]
    if route == "write":
        write = start_response("200 OK", [*plain, ("Content-Length", "11")])
        write(b"hello ")
        return [b"world"]
    return _misbehave(route, start_response, plain)


def _misbehave(
    route: str, start_response: StartResponse, plain: list[tuple[str, str]]
) -> Iterable[bytes]:
    if route == "bad/header-crlf":
        start_response("200 OK", [*plain, ("X-Bad", "a\r\nX-Injected: yes")])
        return [b"ok"]
    if route == "bad/header-lf":
        start_response("200 OK", [*plain, ("X-Bad", "a\nX-Injected: yes")])
        return [b"ok"]
    if route == "bad/header-name":
        start_response("200 OK", [*plain, ("X-Injected: yes\r\nX-Bad", "a")])
        return [b"ok"]
    if route == "bad/status-crlf":
        start_response("200 OK\r\nX-Injected: yes", plain)
        return [b"ok"]
    if route == "bad/raise-before":
        raise RuntimeError("the app failed before start_response (on purpose)")
    if route == "bad/raise-after":
        start_response("200 OK", plain)
        return _raise_after()
    if route == "bad/cl-long":
        start_response("200 OK", [*plain, ("Content-Length", "5")])
        return [b"0123456789"]
    if route == "bad/cl-short":
        start_response("200 OK", [*plain, ("Content-Length", "10")])
        return [b"01234"]
    if route == "bad/no-start":
        return [b"a body without start_response"]
    if route == "bad/double-start":
        start_response("200 OK", plain)
        start_response("201 Created", plain)
        return [b"twice"]
    body = b"no such route"
    start_response("404 Not Found", [*plain, ("Content-Length", str(len(body)))])
    return [body]
