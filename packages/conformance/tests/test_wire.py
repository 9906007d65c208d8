from __future__ import annotations

import pytest

from tests._canned import canned
from treadle_conformance.wire import Incomplete, Response, ResponseError, Wire, fragments

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def read(reply: bytes, *, head: bool = False, close: bool = True) -> tuple[Response | None, Wire]:
    with canned(reply, close=close) as (host, port), Wire(host, port, timeout=2) as wire:
        wire.send(REQUEST)
        response = wire.read_response(head=head)
        return response, wire


def test_content_length_body() -> None:
    response, _ = read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert response is not None
    assert (response.status, response.body, response.framing) == (200, b"hello", "length")
    assert response.header("content-length") == "5"


def test_chunked_body_with_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    )
    response, _ = read(raw)
    assert response is not None
    assert response.body == b"hello"
    assert response.trailers == (("X-T", "1"),)


def test_close_delimited_body() -> None:
    response, wire = read(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    assert response is not None
    assert (response.body, response.framing, wire.eof) == (b"until the end", "close", True)


def test_head_response_has_no_body_and_leaves_the_rest() -> None:
    response, wire = read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", head=True)
    assert response is not None and response.body == b""
    assert bytes(wire.buf) == b"hello"


def test_interim_responses_are_recorded() -> None:
    response, _ = read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert response is not None
    assert (response.interim, response.status) == ((100,), 204)


def test_content_length_on_204_is_a_violation() -> None:
    response, _ = read(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    assert response is not None and response.violations


def test_clean_close_before_a_response_is_none() -> None:
    response, wire = read(b"")
    assert response is None and wire.eof


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", id="bare-lf"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", id="obs-fold"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n", id="space-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n", id="bare-cr"),
        pytest.param(b"HTTP/2 200 OK\r\n\r\n", id="version"),
        pytest.param(b"HTTP/1.1 20 OK\r\n\r\n", id="status"),
        pytest.param(b"{json}HTTP/1.1 200 OK\r\n\r\n", id="junk-before"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", id="two-cl"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na", id="bad-cl"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", id="chunk-size"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            id="chunk-data",
        ),
    ],
)
def test_invalid_responses_raise(raw: bytes) -> None:
    with pytest.raises(ResponseError):
        read(raw)


def test_truncated_body_is_incomplete() -> None:
    with pytest.raises(Incomplete):
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")


def test_unterminated_chunked_body_is_incomplete() -> None:
    with pytest.raises(Incomplete):
        read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")


def test_fragments_rebuild_the_bytes() -> None:
    import random

    data = bytes(range(256)) * 3
    for mode in ("whole", "bytes", "random"):
        pieces = fragments(data, mode, random.Random(1))
        assert b"".join(pieces) == data
    assert len(fragments(data, "bytes", random.Random(1))) == len(data)
    assert len(fragments(data, "random", random.Random(1))) > 1
