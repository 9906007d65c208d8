"""Body receivers: Content-Length and chunked framing (RFC 9112 §6.2, §7.1)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treadle.bodies import ChunkedRFile, KnownLengthRFile
from treadle.errors import HttpError
from treadle.limits import Limits

LIMITS = Limits()


def feed_all(body: ChunkedRFile | KnownLengthRFile, pieces: list[bytes]) -> bytes:
    """Feed pieces; return the bytes that were left over (not part of the body)."""
    rest = b""
    for piece in pieces:
        data = rest + piece if body.complete else piece
        if body.complete:
            rest = data
            continue
        taken = body.feed(data)
        rest = data[taken:]
    return rest


def test_known_length_takes_exactly_its_length() -> None:
    body = KnownLengthRFile(5, LIMITS)
    assert body.feed(b"hel") == 3 and not body.complete
    assert body.feed(b"loGET /") == 2 and body.complete
    assert body.read() == b"hello"


def test_known_length_zero_is_complete_at_once() -> None:
    body = KnownLengthRFile(0, LIMITS)
    assert body.complete and body.read() == b""


def test_known_length_over_limit_413() -> None:
    with pytest.raises(HttpError) as info:
        KnownLengthRFile(11, Limits(max_body_size=10))
    assert info.value.status == 413


def test_known_length_spools_large_bodies_to_a_file() -> None:
    body = KnownLengthRFile(3000, Limits(body_spool_size=1000))
    body.feed(b"x" * 3000)
    assert body.complete and not hasattr(body._file, "getbuffer")
    assert body.read(10) == b"x" * 10 and len(body.read()) == 2990
    body.close()


def test_file_like_methods() -> None:
    body = KnownLengthRFile(12, LIMITS)
    body.feed(b"one\ntwo\nthree")
    assert body.readline() == b"one\n"
    assert body.readline(2) == b"tw"
    assert list(body) == [b"o\n", b"thre"]
    body = KnownLengthRFile(8, LIMITS)
    body.feed(b"a\nb\nc\nd\n")
    assert body.readlines() == [b"a\n", b"b\n", b"c\n", b"d\n"]


def test_rfc9112_7_1_chunked_with_extensions_and_trailers() -> None:
    body = ChunkedRFile(LIMITS)
    data = (
        b'5;name=val;q="a \\" b"\r\nhello\r\n6 ; ext\r\n world\r\n'
        b"0\r\nX-Sum: 1\r\nX-B:2\r\n\r\nNEXT"
    )
    taken = body.feed(data)
    assert data[taken:] == b"NEXT"
    assert body.complete and body.read() == b"hello world"
    assert body.trailers == [(b"X-Sum", b"1"), (b"X-B", b"2")]
    assert body.size == 11


def test_rfc9112_7_1_uppercase_hex_and_leading_zeros() -> None:
    body = ChunkedRFile(LIMITS)
    body.feed(b"000A\r\n0123456789\r\n0\r\n\r\n")
    assert body.read() == b"0123456789"


@pytest.mark.parametrize(
    "data",
    [
        b"x\r\n",  # not hex
        b"\r\n",  # empty size
        b"5 5\r\n",  # junk after size
        b"5;\r\n",  # extension without a name
        b"5;a=\r\n",  # extension without a value
        b'5;a="x\r\n',  # unterminated quoted string
        b"5\nhello\r\n0\r\n\r\n",  # bare LF after size
        b"5\r\nhelloXX0\r\n\r\n",  # data not followed by CRLF
        b"5\r\nhello\n0\r\n\r\n",  # bare LF after data
        b"-5\r\n",
        b"0x5\r\n",
        b"0\r\nbad trailer\r\n\r\n",
        b"0\r\nX : v\r\n\r\n",
        b"0\r\n folded\r\n\r\n",
        b"11111111111111111\r\n",  # 17 hex digits: overflow
    ],
)
def test_rfc9112_7_1_malformed_chunked_400(data: bytes) -> None:
    body = ChunkedRFile(LIMITS)
    with pytest.raises(HttpError) as info:
        body.feed(data)
    assert info.value.status == 400


def test_chunked_over_limit_413() -> None:
    body = ChunkedRFile(Limits(max_body_size=10))
    with pytest.raises(HttpError) as info:
        body.feed(b"5\r\nhello\r\n6\r\n")
    assert info.value.status == 413


def test_chunked_size_line_too_long_400() -> None:
    body = ChunkedRFile(LIMITS)
    with pytest.raises(HttpError) as info:
        body.feed(b"5;" + b"a" * 10_000)
    assert info.value.status == 400


def test_chunked_trailer_section_too_large_431() -> None:
    body = ChunkedRFile(Limits(max_header_count=2))
    with pytest.raises(HttpError) as info:
        body.feed(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    assert info.value.status == 431


CHUNKED = b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n"


@given(st.data())
def test_property_chunked_split_anywhere_decodes_the_same(data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, len(CHUNKED) - 1), max_size=40)))
    bounds = [0, *cuts, len(CHUNKED)]
    body = ChunkedRFile(LIMITS)
    rest = feed_all(body, [CHUNKED[a:b] for a, b in itertools.pairwise(bounds)])
    assert body.complete and rest == b"GET / HTTP/1.1\r\n"
    assert body.read() == b"abc0123456789abcdef" and body.trailers == [(b"T", b"v")]


def test_chunked_byte_by_byte() -> None:
    body = ChunkedRFile(LIMITS)
    rest = feed_all(body, [CHUNKED[i : i + 1] for i in range(len(CHUNKED))])
    assert body.complete and rest == b"GET / HTTP/1.1\r\n"
    assert body.read() == b"abc0123456789abcdef"


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=10))
def test_property_chunked_round_trip(chunks: list[bytes]) -> None:
    encoded = b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    body = ChunkedRFile(LIMITS)
    assert body.feed(encoded) == len(encoded)
    assert body.complete and body.read() == b"".join(chunks)
