"""The ASGI reflection app answers as the WSGI one does: same JSON, same `/_/` behaviours.

Both faces are called directly (no server) with the same request, and what each puts out is
compared: the JSON field by field (only `interface` differs), each route's status, headers and
body. A route added to one face only, or a JSON field built differently, fails here.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote
from wsgiref.util import setup_testing_defaults

import pytest

from treadle_conformance import reflect, reflect_asgi
from treadle_conformance.reflection import MISBEHAVIOURS, UNSUPPORTED, AppFailure
from treadle_conformance.scenarios import CATALOGUE

Answer = tuple[int, list[tuple[str, str]], bytes]


def wsgi(
    path: str, query: str = "", body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST" if body else "GET",
        # A WSGI server hands the app the path percent-decoded, as Latin-1 (PEP 3333).
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}
    out: list[bytes] = []

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = status, response_headers
        return out.append

    out += list(reflect.app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], b"".join(out)


def messages(
    path: str, query: str = "", body: bytes = b"", headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """What the ASGI app sends for this request."""
    fields = [(n.lower().encode(), v.encode()) for n, v in (headers or {}).items()]
    if body:
        fields.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "http_version": "1.0",
        "method": "POST" if body else "GET",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "root_path": "",
        "query_string": query.encode(),
        "headers": fields,
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(reflect_asgi.app(scope, receive, send))
    return sent


def asgi(
    path: str, query: str = "", body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    sent = messages(path, query, body, headers)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, starts
    status = starts[0]["status"]
    heads = [(n.decode(), v.decode()) for n, v in starts[0]["headers"]]
    body_out = b"".join(m["body"] for m in sent if m["type"] == "http.response.body")
    return status, heads, body_out


def test_the_json_is_the_same_but_for_the_interface() -> None:
    request = ("/a%20b/c", "x=1&y", b"hello", {"X-Test": "v", "Host": "h.test"})
    from_wsgi = json.loads(wsgi(*request)[2])
    from_asgi = json.loads(asgi(*request)[2])
    assert (from_wsgi.pop("interface"), from_asgi.pop("interface")) == ("wsgi", "asgi")
    assert from_asgi == from_wsgi
    assert from_asgi["path"] == "/a b/c" and from_asgi["body"] == "hello"


def test_the_path_is_raw_path_decoded_as_latin_1_like_pep_3333() -> None:
    data = json.loads(asgi("/caf%C3%A9")[2])
    assert data["path"] == "/caf\u00c3\u00a9"


def test_a_repeated_field_is_one_entry_joined_like_a_wsgi_environ() -> None:
    scope_headers = [(b"x-multi", b"a"), (b"x-multi", b"b")]
    assert reflect_asgi._headers({"headers": scope_headers}) == [("x-multi", "a, b")]


ROUTES = [
    ("/_/sleep", "ms=1"),
    ("/_/stream", "n=3&size=4"),
    ("/_/big", "size=70000"),
    ("/_/status", "code=418"),
    ("/_/ignore-body", ""),
    ("/_/read-some", ""),
    ("/_/write", ""),
    ("/_/bad/header-crlf", ""),
    ("/_/bad/header-lf", ""),
    ("/_/bad/header-name", ""),
    ("/_/bad/cl-long", ""),
    ("/_/bad/cl-short", ""),
    ("/_/no-such-route", ""),
]


@pytest.mark.parametrize(("path", "query"), ROUTES)
def test_each_route_answers_the_same(path: str, query: str) -> None:
    assert asgi(path, query) == wsgi(path, query)


def test_every_route_the_catalogue_asks_for_is_answered_by_both() -> None:
    asked = {
        data.split(b" ", 2)[1].split(b"?")[0].decode()
        for s in CATALOGUE
        for data in s.send
        if b" /_/" in data
    }
    covered = {path for path, _ in ROUTES} | {"/_/" + r for r in MISBEHAVIOURS}
    assert asked - covered == set()


@pytest.mark.parametrize("route", ["bad/raise-before", "bad/raise-after"])
def test_failing_routes_fail_in_both(route: str) -> None:
    with pytest.raises(AppFailure):
        wsgi("/_/" + route)
    with pytest.raises(AppFailure):
        asgi("/_/" + route)


def test_no_start_and_double_start_are_the_same_mistakes_in_asgi() -> None:
    def starts(path: str) -> int:
        return sum(m["type"] == "http.response.start" for m in messages(path))

    assert starts("/_/bad/no-start") == 0
    assert starts("/_/bad/double-start") == 2


def test_a_reason_phrase_is_wsgi_only_and_such_scenarios_skip_on_asgi() -> None:
    assert asgi("/_/bad/status-crlf")[0] == UNSUPPORTED
    wsgi_only = [s.id for s in CATALOGUE if s.wsgi_only]
    assert wsgi_only == ["RESP-APP-STATUS-CRLF"]
