"""The PROXY protocol parser, rule by rule (HAProxy's doc/proxy-protocol.txt), and its
behaviour on headers split anywhere."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.proxyproto import (
    MAX_HEADER_SIZE,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_SSL,
    V1_MAX_SIZE,
    V2_SIGNATURE,
    Command,
    Family,
    ProxyInfo,
    ProxyProtocolError,
    crc32c,
    parse_proxy_header,
)

from . import _proxy_headers as pp

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def parse(buf: bytes) -> tuple[ProxyInfo, int]:
    result = parse_proxy_header(buf)
    assert result is not None
    return result


def rejects(buf: bytes, match: str = "") -> None:
    with pytest.raises(ProxyProtocolError, match=match):
        parse_proxy_header(buf)


# -- version 1 (§2.1) --------------------------------------------------------------------------


def test_v1_tcp4_gives_source_and_dest_and_leaves_the_request() -> None:
    header = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n"
    info, consumed = parse(header + REQUEST)
    assert consumed == len(header)
    assert info == ProxyInfo(
        1, Command.PROXY, Family.INET, ("192.0.2.10", 56324), ("198.51.100.1", 443)
    )
    assert not info.local


def test_v1_tcp6_addresses_are_normalised() -> None:
    info, _ = parse(b"PROXY TCP6 2001:DB8:0:0::1 ::1 1 65535\r\n")
    assert info.family is Family.INET6
    assert info.source == ("2001:db8::1", 1)
    assert info.dest == ("::1", 65535)


def test_v1_tcp6_ipv4_mapped_address_as_inet_ntop_writes_it() -> None:
    """A dual-stack proxy names an IPv4 client as ::ffff:a.b.c.d (found by the split property:
    ``str(IPv6Address)`` writes it so, and so does inet_ntop)."""
    info, _ = parse(b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n")
    assert info.source == (str(ipaddress.IPv6Address("::ffff:192.0.2.1")), 1)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n",
        b"PROXY UNKNOWN whatever the sender put here\r\n",
    ],
)
def test_v1_unknown_keeps_the_socket_addresses_and_ignores_the_rest(line: bytes) -> None:
    info, consumed = parse(line + REQUEST)
    assert consumed == len(line)
    assert info.local and info.source is None and info.family is Family.UNSPEC


def test_v1_longest_line_of_107_bytes_is_accepted() -> None:
    v6 = "ffff:" * 7 + "ffff"
    line = f"PROXY UNKNOWN {v6} {v6} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX_SIZE
    assert parse(line + REQUEST)[1] == V1_MAX_SIZE


def test_v1_without_crlf_in_107_bytes_is_refused() -> None:
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX_SIZE - 14)
    assert parse_proxy_header(line[:-1]) is None
    rejects(line, "CRLF")
    rejects(line[:-1] + b"\r\n", "CRLF")  # the CRLF would end at byte 108


@pytest.mark.parametrize(
    "line, why",
    [
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bare LF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF"),
        (b"PROXY UNKNOWN\n\r\n", "bare LF"),
        (b"PROXY TCP4 192.168.001.1 5.6.7.8 1 2\r\n", "canonical"),  # no leading zeros
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "port"),
        (b"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "canonical"),
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", "canonical"),  # the family dictates the format
        (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "canonical"),
        (b"PROXY TCP6 ::ffff:1.2.3.400 ::1 1 2\r\n", "canonical"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "canonical"),
        (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "canonical"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "2 addresses"),  # exactly one space
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "2 addresses"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "2 addresses"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol"),
        (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol"),
        (b"PROXY UNKNOWNX\r\n", "protocol"),
        (b"PROXY \r\n", "protocol"),
        (b"PROXY\r\n", "not a PROXY"),
        (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not start"),
    ],
)
def test_v1_anything_not_exactly_the_protocol_is_refused(line: bytes, why: str) -> None:
    rejects(line + REQUEST, why)


@pytest.mark.parametrize(
    "start",
    [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00", b"PRI * HTTP/2.0", b"POST /", b" PROXY"],
)
def test_other_protocols_are_refused_at_the_first_wrong_byte(start: bytes) -> None:
    """§2.2: the receiver must not guess: an HTTP request line, a TLS ClientHello or an HTTP/2
    preface is refused as soon as it differs, without waiting for more bytes."""
    wrong = next(i for i in range(len(start)) if parse_attempt(start[: i + 1]) == "error")
    assert wrong <= 3


def parse_attempt(buf: bytes) -> str:
    try:
        return "need more" if parse_proxy_header(buf) is None else "parsed"
    except ProxyProtocolError:
        return "error"


def test_nothing_received_needs_more() -> None:
    assert parse_proxy_header(b"") is None


# -- version 2 (§2.2) --------------------------------------------------------------------------


def test_v2_tcp4() -> None:
    header = pp.v2("192.0.2.10", "198.51.100.1", 56324, 443)
    info, consumed = parse(header + REQUEST)
    assert consumed == len(header) == 16 + 12
    assert info == ProxyInfo(
        2, Command.PROXY, Family.INET, ("192.0.2.10", 56324), ("198.51.100.1", 443)
    )


def test_v2_tcp6() -> None:
    header = pp.v2("2001:db8::7", "2001:db8::1", 1, 8443)
    info, consumed = parse(header + REQUEST)
    assert consumed == 16 + 36
    assert info.family is Family.INET6
    assert (info.source, info.dest) == (("2001:db8::7", 1), ("2001:db8::1", 8443))


def test_v2_local_keeps_the_socket_addresses_and_skips_the_announced_length() -> None:
    """§2.2: LOCAL (a health check) must be accepted; the receiver must skip the length it
    announces, never assume zero, and ignore the family."""
    for header in (
        pp.v2(command=0),
        pp.v2(command=0, family_byte=0x11, block=b"x" * 12),
        pp.v2(command=0, family_byte=0xFF, block=b"any"),
    ):
        info, consumed = parse(header + REQUEST)
        assert consumed == len(header)
        assert info.command is Command.LOCAL and info.local


@pytest.mark.parametrize(
    "family_byte, size",
    [(0x00, 0), (0x00, 12), (0x01, 5), (0x10, 0), (0x12, 12), (0x22, 36), (0x31, 216), (0x32, 216)],
)
def test_v2_unspec_udp_and_unix_fall_back_to_the_socket_addresses(
    family_byte: int, size: int
) -> None:
    """§2.2: a receiver need not implement these, provided it falls back to the connection's
    own endpoints; treadle serves TCP clients only."""
    header = pp.v2(family_byte=family_byte, block=b"\x01" * size)
    info, consumed = parse(header + REQUEST)
    assert consumed == len(header)
    assert info.command is Command.PROXY and info.local


@pytest.mark.parametrize(
    "ver_cmd, why",
    [(0x11, "version 1"), (0x31, "version 3"), (0x22, "command 2"), (0x2F, "command 15")],
)
def test_v2_version_other_than_2_or_unknown_command_is_refused(ver_cmd: int, why: str) -> None:
    header = pp.v2("1.2.3.4", "5.6.7.8", 1, 2)
    rejects(header[:12] + bytes([ver_cmd]), why)  # at once, without waiting for the rest


@pytest.mark.parametrize("family_byte", [0x41, 0x13, 0xF1, 0x1F])
def test_v2_unknown_family_or_transport_is_refused(family_byte: int) -> None:
    header = pp.v2(family_byte=family_byte, block=b"\0" * 12)
    rejects(header[:14], "family")


@pytest.mark.parametrize("family_byte, size", [(0x11, 11), (0x21, 35), (0x31, 215), (0x11, 0)])
def test_v2_length_shorter_than_the_family_addresses_is_refused(
    family_byte: int, size: int
) -> None:
    header = pp.v2(family_byte=family_byte, block=b"\0" * size)
    rejects(header[:16], "too short")  # known from the fixed part alone


def test_v2_over_the_size_limit_is_refused_from_the_fixed_part() -> None:
    def sized(total: int) -> bytes:
        return pp.v2("1.2.3.4", "5.6.7.8", 1, 2, tlvs=[(0xE0, b"x" * (total - 16 - 12 - 3))])

    assert len(sized(MAX_HEADER_SIZE)) == MAX_HEADER_SIZE
    assert parse(sized(MAX_HEADER_SIZE))[1] == MAX_HEADER_SIZE
    rejects(sized(MAX_HEADER_SIZE + 1)[:16], "4097 bytes is over the 4096")
    with pytest.raises(ProxyProtocolError, match="over the 27"):
        parse_proxy_header(pp.v2("1.2.3.4", "5.6.7.8", 1, 2)[:16], max_size=16 + 11)


def test_v2_signature_mismatch_is_refused_at_the_first_wrong_byte() -> None:
    for i in range(len(V2_SIGNATURE)):
        if i == 0:
            continue  # a different first byte is "not a PROXY header" too, tested above
        wrong = V2_SIGNATURE[:i] + bytes([V2_SIGNATURE[i] ^ 0x01])
        rejects(wrong, "not a PROXY")
        assert parse_proxy_header(V2_SIGNATURE[:i]) is None


def test_v2_tlvs_are_kept_in_order_and_interpreted() -> None:
    ssl = bytes([0x01]) + b"\0\0\0\0" + bytes([0x21]) + b"\0\x07TLSv1.3"
    header = pp.v2(
        "1.2.3.4",
        "5.6.7.8",
        1,
        2,
        tlvs=[(PP2_TYPE_AUTHORITY, b"example.com"), (0x04, b""), (PP2_TYPE_SSL, ssl)],
    )
    info, _ = parse(header)
    assert info.tlvs == ((PP2_TYPE_AUTHORITY, b"example.com"), (0x04, b""), (PP2_TYPE_SSL, ssl))
    assert info.authority == "example.com"
    assert info.client_ssl
    assert info.tlv(0x05) is None


def test_v2_ssl_tlv_without_the_client_ssl_flag_is_not_tls() -> None:
    info, _ = parse(pp.v2("1.2.3.4", "5.6.7.8", 1, 2, tlvs=[(PP2_TYPE_SSL, b"\x02\0\0\0\0")]))
    assert not info.client_ssl
    assert not parse(pp.v2("1.2.3.4", "5.6.7.8", 1, 2))[0].client_ssl


@pytest.mark.parametrize(
    "extra, why",
    [
        (b"\x04", "inside a TLV"),
        (b"\x04\0", "inside a TLV"),
        (b"\x04\0\x05abcd", "past the header"),
    ],
)
def test_v2_tlvs_must_tile_the_header_exactly(extra: bytes, why: str) -> None:
    block = bytes(12) + extra
    rejects(pp.v2(family_byte=0x11, block=block), why)


def test_v2_crc32c_is_checked() -> None:
    """§2.2.3: a receiver that supports the checksum must refuse a header that fails it."""
    good = pp.v2("1.2.3.4", "5.6.7.8", 1, 2, tlvs=[(0x04, b"pad")], with_crc=True)
    assert parse(good)[0].source == ("1.2.3.4", 1)
    corrupted = good[:17] + bytes([good[17] ^ 0x40]) + good[18:]  # one bit of the source
    rejects(corrupted, "CRC32C")
    short = pp.v2("1.2.3.4", "5.6.7.8", 1, 2, tlvs=[(0x03, b"\0\0\0")])
    rejects(short, "4 bytes")


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4 / the usual check value
    assert crc32c(b"") == 0


def test_proxy_info_validates_itself() -> None:
    with pytest.raises(ValueError):
        ProxyInfo(3, Command.PROXY, Family.INET)
    with pytest.raises(ValueError):
        ProxyInfo(1, Command.PROXY, Family.INET, ("1.2.3.4", 1), None)
    with pytest.raises(ValueError):
        ProxyInfo(2, Command.LOCAL, Family.INET, ("1.2.3.4", 1), ("1.2.3.4", 2))


# -- properties ----------------------------------------------------------------------------------

ports = st.integers(0, 65535)
tcp4 = st.tuples(st.ip_addresses(v=4).map(str), st.ip_addresses(v=4).map(str), ports, ports)
tcp6 = st.tuples(st.ip_addresses(v=6).map(str), st.ip_addresses(v=6).map(str), ports, ports)
tlv_lists = st.lists(
    st.tuples(st.integers(0, 255).filter(lambda t: t != 0x03), st.binary(max_size=40)),
    max_size=4,
)


@st.composite
def valid_headers(draw: st.DrawFn) -> tuple[bytes, ProxyInfo]:
    src, dst, sport, dport = draw(st.one_of(tcp4, tcp6))
    family = Family.INET6 if ":" in src else Family.INET
    if draw(st.booleans()):
        return pp.v1(src, dst, sport, dport), ProxyInfo(
            1, Command.PROXY, family, (src, sport), (dst, dport)
        )
    tlvs = draw(tlv_lists)
    with_crc = draw(st.booleans())
    header = pp.v2(src, dst, sport, dport, tlvs=tlvs, with_crc=with_crc)
    parsed_tlvs = tuple(tlvs) + (((0x03, header[-4:]),) if with_crc else ())
    return header, ProxyInfo(2, Command.PROXY, family, (src, sport), (dst, dport), parsed_tlvs)


@settings(max_examples=300)
@given(valid_headers(), st.binary(max_size=30), st.data())
def test_a_header_split_anywhere_parses_the_same(
    case: tuple[bytes, ProxyInfo], after: bytes, data: st.DataObject
) -> None:
    """Fed as the receive path feeds it (a growing buffer), a valid header needs more at
    every cut before its end, then parses whole, whatever follows it."""
    header, expected = case
    cuts = sorted(data.draw(st.sets(st.integers(0, len(header) - 1), max_size=6)))
    for cut in cuts:
        assert parse_proxy_header(header[:cut]) is None
    assert parse_proxy_header(header + after) == (expected, len(header))


def _outcome(buf: bytes) -> object:
    try:
        return parse_proxy_header(buf)
    except ProxyProtocolError:
        return "error"


@st.composite
def noisy_streams(draw: st.DrawFn) -> bytes:
    """A valid header, mutated: a byte changed, bytes cut out or added."""
    header, _ = draw(valid_headers())
    buf = bytearray(header + draw(st.binary(max_size=10)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(buf)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and i < len(buf):
            buf[i] = draw(st.integers(0, 255))
        elif action == "cut":
            del buf[i : i + draw(st.integers(1, 4))]
        else:
            buf[i:i] = draw(st.binary(min_size=1, max_size=4))
    return bytes(buf)


@settings(max_examples=500)
@given(st.one_of(noisy_streams(), st.binary(max_size=120)), st.data())
def test_the_outcome_of_a_prefix_stands(buf: bytes, data: st.DataObject) -> None:
    """Any bytes: only ProxyProtocolError is raised, and once a prefix gives a result or an
    error, the whole buffer gives the same one (monotonic, so splits cannot matter)."""
    whole = _outcome(buf)
    if isinstance(whole, tuple):
        assert 0 < whole[1] <= len(buf)
    cut = data.draw(st.integers(0, len(buf)))
    prefix = _outcome(buf[:cut])
    assert prefix is None or prefix == whole
