"""The head parser, one test per RFC clause it enforces, plus fragmentation properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.errors import HttpError
from treadle.limits import Limits
from treadle.parser import RequestHead, parse_head

LIMITS = Limits()


def parse(data: bytes, limits: Limits = LIMITS) -> RequestHead:
    result = parse_head(data, limits)
    assert result is not None, "head should be complete"
    return result[0]


def refused(data: bytes, limits: Limits = LIMITS) -> int:
    with pytest.raises(HttpError) as info:
        parse_head(data, limits)
    return info.value.status


def test_simple_get() -> None:
    head = parse(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")
    assert (head.method, head.path, head.query, head.protocol) == (
        "GET",
        b"/a/b",
        b"x=1&y=2",
        "HTTP/1.1",
    )
    assert head.headers == [(b"Host", b"example.com"), (b"Accept", b"*/*")]
    assert head.keep_alive and head.content_length is None and not head.chunked


def test_consumed_stops_at_head_end() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next"
    result = parse_head(data, LIMITS)
    assert result is not None
    assert data[result[1] :] == b"GET /next"


def test_incomplete_head_needs_more() -> None:
    assert parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n", LIMITS) is None
    assert parse_head(b"", LIMITS) is None


def test_rfc9112_2_2_leading_empty_lines_ignored() -> None:
    assert parse(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").path == b"/"


def test_rfc9112_2_2_bare_lf_refused() -> None:
    assert refused(b"GET / HTTP/1.1\nHost: a\n\n") == 400
    assert refused(b"GET / HTTP/1.1\r\nHost: a\n\r\n") == 400


def test_rfc9112_2_2_bare_cr_refused() -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == 400


@pytest.mark.parametrize(
    "line",
    [b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b"GET /", b" GET / HTTP/1.1", b"GET\t/ HTTP/1.1"],
)
def test_rfc9112_3_request_line_single_spaces(line: bytes) -> None:
    assert refused(line + b"\r\nHost: a\r\n\r\n") == 400


@pytest.mark.parametrize("method", [b"G(T", b"GE\x00T", b"G@T", b"\xffGET"])
def test_rfc9110_9_1_method_is_a_token(method: bytes) -> None:
    assert refused(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n") == 400


def test_rfc9110_9_1_unknown_methods_are_passed_on() -> None:
    assert parse(b"PURGE / HTTP/1.1\r\nHost: a\r\n\r\n").method == "PURGE"


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9"])
def test_rfc9110_15_6_6_other_major_versions_505(version: bytes) -> None:
    assert refused(b"GET / " + version + b"\r\nHost: a\r\n\r\n") == 505


@pytest.mark.parametrize(
    "version", [b"HTTP/1", b"http/1.1", b"HTTP/1.1.1", b"HTTP/11", b"HTTP/1.10"]
)
def test_rfc9112_2_3_malformed_version_400(version: bytes) -> None:
    assert refused(b"GET / " + version + b"\r\nHost: a\r\n\r\n") == 400


def test_rfc9112_2_3_higher_minor_is_served_as_1_1() -> None:
    head = parse(b"GET / HTTP/1.9\r\nHost: a\r\n\r\n")
    assert head.minor == 1 and head.protocol == "HTTP/1.9"


@pytest.mark.parametrize(
    "target",
    [b"/a b", b'/a"b', b"/a<b", b"/%zz", b"/%4", b"/a#frag", b"/\xc3\xa9", b"/a\\b", b"/{x}"],
)
def test_rfc9112_3_2_invalid_origin_form_400(target: bytes) -> None:
    assert refused(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n") == 400


def test_rfc9112_3_2_1_origin_form_allows_pchars() -> None:
    head = parse(b"GET /a:b@c!$&'()*+,;=/%41?q=/?x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert head.path == b"/a:b@c!$&'()*+,;=/%41" and head.query == b"q=/?x"


def test_rfc9112_3_2_2_absolute_form_authority_wins_over_host() -> None:
    head = parse(b"GET http://Example.org:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (head.scheme, head.host, head.path, head.query) == (
        "http",
        b"Example.org:8080",
        b"/p",
        b"q=1",
    )


def test_rfc9112_3_2_2_absolute_form_empty_path_is_root() -> None:
    assert parse(b"GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n").path == b"/"


@pytest.mark.parametrize(
    "target", [b"http://user@host/", b"http:///p", b"ftp://host/", b"http//host/", b"host/p"]
)
def test_rfc9110_4_2_bad_absolute_form_400(target: bytes) -> None:
    assert refused(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n") == 400


def test_rfc9112_3_2_4_asterisk_form_only_for_options() -> None:
    assert parse(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").path == b"*"
    assert refused(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400


def test_rfc9112_3_2_3_connect_not_implemented() -> None:
    assert refused(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n") == 501


def test_rfc9112_3_2_missing_host_on_1_1_400() -> None:
    assert refused(b"GET / HTTP/1.1\r\n\r\n") == 400


def test_rfc9112_3_2_host_optional_on_1_0() -> None:
    assert parse(b"GET / HTTP/1.0\r\n\r\n").host is None


def test_rfc9112_3_2_duplicate_host_400() -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == 400


@pytest.mark.parametrize("host", [b"a b", b"a/b", b"a@b", b"[::1", b"a:b:c", b"a:8x"])
def test_rfc9112_3_2_invalid_host_400(host: bytes) -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n") == 400


def test_rfc9110_7_2_empty_host_is_valid() -> None:
    assert parse(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host == b""


def test_rfc9112_5_1_whitespace_before_colon_400() -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n") == 400


def test_rfc9112_5_1_ows_around_value_stripped() -> None:
    head = parse(b"GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v a l \t \r\n\r\n")
    assert head.headers == [(b"Host", b"a"), (b"X-A", b"v a l")]


def test_rfc9112_5_2_obs_fold_400() -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n") == 400


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x7fb", b"a\x01b", b"a\x1bb"])
def test_rfc9110_5_5_control_characters_in_value_400(value: bytes) -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + value + b"\r\n\r\n") == 400


def test_rfc9110_5_5_obs_text_in_value_allowed() -> None:
    assert parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n").headers[1] == (
        b"X",
        b"caf\xe9",
    )


@pytest.mark.parametrize("line", [b": empty", b"No colon", b"Bad[name]: x", b"\xffname: x"])
def test_rfc9110_5_1_field_name_is_a_token(line: bytes) -> None:
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n") == 400


def test_rfc9112_6_3_content_length() -> None:
    head = parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0012\r\n\r\n")
    assert head.content_length == 12 and not head.chunked


@pytest.mark.parametrize("value", [b"-1", b"1.5", b"0x10", b"1 2", b"+5", b"", b"\xd9\xa1"])
def test_rfc9112_6_3_invalid_content_length_400(value: bytes) -> None:
    assert refused(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value + b"\r\n\r\n") == 400


def test_rfc9112_6_3_duplicate_content_length_400() -> None:
    assert (
        refused(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
        == 400
    )
    assert refused(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n") == 400


def test_rfc9112_6_3_transfer_encoding_with_content_length_400() -> None:
    data = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert refused(data) == 400


def test_rfc9112_6_1_transfer_encoding_on_1_0_400() -> None:
    assert refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"gzip", 400),  # chunked not final: length unknowable
        (b"chunked, gzip", 400),
        (b"chunked, chunked", 400),
        (b"chunked;x=1", 400),
        (b"gzip, chunked", 501),
        (b"identity, chunked", 501),
        (b"", 400),
    ],
)
def test_rfc9112_6_1_transfer_codings(value: bytes, status: int) -> None:
    assert (
        refused(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + value + b"\r\n\r\n")
        == status
    )


def test_rfc9112_6_1_chunked_is_case_insensitive_and_split_across_fields() -> None:
    assert parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n").chunked
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\n"
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert refused(data) == 501


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"close", False),
        (b"1.1", b"keep-alive, close", False),
        (b"1.1", b"Keep-Alive, CLOSE", False),
        (b"1.0", b"", False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"keep-alive, close", False),
    ],
)
def test_rfc9112_9_3_persistence(version: bytes, connection: bytes, keep_alive: bool) -> None:
    field = b"Connection: " + connection + b"\r\n" if connection else b""
    head = parse(b"GET / HTTP/" + version + b"\r\nHost: a\r\n" + field + b"\r\n")
    assert head.keep_alive is keep_alive


def test_rfc9110_10_1_1_expect_100_continue() -> None:
    assert parse(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n").expect_continue
    assert not parse(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue


def test_rfc9110_10_1_1_other_expectation_417() -> None:
    assert refused(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n") == 417


def test_limit_request_line_414() -> None:
    limits = Limits(max_request_line=100)
    assert refused(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", limits) == 414
    assert refused(b"GET /" + b"a" * 200, limits) == 414  # refused before the line ends


def test_limit_field_line_431() -> None:
    limits = Limits(max_field_line=50)
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 60 + b"\r\n\r\n", limits) == 431


def test_limit_header_count_431() -> None:
    limits = Limits(max_header_count=3)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(3))
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", limits) == 431


def test_limit_head_size_431() -> None:
    limits = Limits(max_head_size=200)
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: v\r\n" * 50 + b"\r\n", limits) == 431
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: v\r\n" * 50, limits) == 431


# -- properties ----------------------------------------------------------------------------------

VALID = [
    b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    b"\r\nPUT http://h:1/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]


def _parse_incrementally(pieces: list[bytes]) -> tuple[RequestHead, int] | None:
    buf = b""
    for piece in pieces:
        buf += piece
        result = parse_head(buf, LIMITS)
        if result is not None:
            return result
    return None


@given(st.sampled_from(VALID), st.data())
def test_property_head_split_anywhere_parses_the_same(request: bytes, data: st.DataObject) -> None:
    whole = parse_head(request, LIMITS)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(request) - 1), max_size=len(request))))
    bounds = [0, *cuts, len(request)]
    pieces = [request[a:b] for a, b in itertools.pairwise(bounds)]
    assert _parse_incrementally(pieces) == whole


@pytest.mark.parametrize("request_bytes", VALID)
def test_head_byte_by_byte_parses_the_same(request_bytes: bytes) -> None:
    pieces = [request_bytes[i : i + 1] for i in range(len(request_bytes))]
    assert _parse_incrementally(pieces) == parse_head(request_bytes, LIMITS)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_property_random_bytes_never_crash_or_500(data: bytes) -> None:
    try:
        parse_head(data, LIMITS)
    except HttpError as exc:
        assert 400 <= exc.status < 500 or exc.status in (501, 505)


_token = st.text("abcdefghijklmnopqrstuvwxyz-ABC0123456789", min_size=1, max_size=12)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(_token, st.text("abc xyz/;=,0123", max_size=20)), max_size=8),
    st.data(),
)
def test_property_valid_fields_round_trip(
    fields: list[tuple[str, str]], data: st.DataObject
) -> None:
    lines = [f"{n}: {v}" for n, v in fields if n.lower() not in _FRAMING]
    head = (
        "GET /p HTTP/1.1\r\nHost: h\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"
    ).encode()
    parsed = parse(head)
    assert [(n, v) for n, v in parsed.headers[1:]] == [
        (n.encode(), v.strip(" ").encode()) for n, v in (line.split(": ", 1) for line in lines)
    ]


_FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect"}
