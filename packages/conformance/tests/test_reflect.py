from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from treadle_conformance.reflect import app


def call(path: str, body: bytes = b"", **extra: str) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "wsgi.input": io.BytesIO(body), **extra}
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    chunks = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], chunks


def test_echo_describes_the_request() -> None:
    status, _, body = call("/x/y", b"hello", QUERY_STRING="a=1", HTTP_X_TEST="v")
    data = json.loads(body)
    assert status == "200 OK"
    assert data["path"] == "/x/y" and data["query"] == "a=1" and data["body"] == "hello"
    assert ["x-test", "v"] in data["headers"]
    assert data["reflect"] == "treadle-conformance"


def test_stream_and_big_routes() -> None:
    _, headers, body = call("/_/stream", QUERY_STRING="n=3&size=4")
    assert body == b"0000\n0000\n0000\n"
    assert not any(n == "Content-Length" for n, _ in headers)
    _, headers, body = call("/_/big", QUERY_STRING="size=70000")
    assert len(body) == 70000 and ("Content-Length", "70000") in headers


def test_chosen_status() -> None:
    assert call("/_/status", QUERY_STRING="code=204")[0].startswith("204")


def test_misbehaving_routes_misbehave() -> None:
    _, headers, _ = call("/_/bad/header-crlf")
    assert any("\r\n" in v for _, v in headers)
    with pytest.raises(RuntimeError):
        call("/_/bad/raise-before")
    with pytest.raises(RuntimeError):
        call("/_/bad/raise-after")


class Recording(io.BytesIO):
    """A wsgi.input that records the sizes the app asks for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


def test_a_huge_declared_length_is_read_in_bounded_pieces() -> None:
    # A server that passes a 1 TB Content-Length through (and a short body): the app never
    # asks for more than 64 KiB at once, so no reader allocates the declared size.
    stream = Recording(b"x" * 100_000)
    environ: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": str(10**12)}
    setup_testing_defaults(environ)
    data = json.loads(b"".join(app(environ, lambda status, headers, exc_info=None: None)))
    assert data["body_length"] == 100_000
    assert stream.asked and max(stream.asked) <= 65536
