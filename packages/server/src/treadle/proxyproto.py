"""Sans-I/O parsing of HAProxy's PROXY protocol header, version 1 (text) and 2 (binary).

A load balancer in TCP mode (HAProxy ``send-proxy``/``send-proxy-v2``, AWS NLB, ...) opens its
own connection to treadle and writes, before any byte of the client's, one header naming the
client's address and port. ``parse_proxy_header(buf)`` looks at the bytes received so far:

    None                  the header is not complete yet: receive more and call again
    (ProxyInfo, consumed)  buf[:consumed] was the header; HTTP (or TLS) starts at buf[consumed:]
    ProxyProtocolError    not a valid header: close the connection (the specification says
                          a receiver must not guess whether a header is there)

It rejects as early as the bytes allow: a first byte that starts neither version, a v1 line
with no CRLF in its first 107 bytes, a v2 header announcing more than ``max_size`` bytes. And
it is monotonic: once a prefix of the stream gives a result or an error, every longer prefix
gives the same, so a header split across packets anywhere parses as if it came whole.

``ProxyInfo.source`` is the client's ``(address, port)``, or None where the socket's own
addresses are to be kept: v1 ``UNKNOWN``, v2 ``LOCAL`` (a health check by the proxy itself),
and v2 families or transports treadle does not use (AF_UNIX, UDP, unspecified), for which the
specification lets a receiver fall back to the connection's endpoints.

Reference: HAProxy's doc/proxy-protocol.txt (§2.1 v1, §2.2 v2, §2.2.3 CRC32c, §2.2.6 SSL).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum

# §2.1: the longest v1 line, "PROXY UNKNOWN <v6> <v6> 65535 65535\r\n", is 107 bytes.
V1_MAX_SIZE = 107
V1_PREFIX = b"PROXY "
# §2.2: the v2 signature; its NUL and bare CR LF make it invalid as a start of HTTP or TLS.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED_SIZE = 16  # signature, version/command, family/transport, length
# A v2 header may announce up to 64 KiB of addresses and TLVs; nginx accepts 4096 bytes in
# all (NGX_PROXY_PROTOCOL_MAX_HEADER), enough for addresses, SNI, ALPN and a client's CN.
MAX_HEADER_SIZE = 4096

# v2 TLV types (§2.2) that ProxyInfo interprets.
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01

_V1_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")
_V1_IPV4 = re.compile(rb"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
# Hex groups and colons, and no zone index (which ipaddress would take). inet_ntop, which
# proxies use to write the line, gives IPv4-mapped addresses a dotted tail (::ffff:192.0.2.1),
# so that is allowed too; ipaddress checks the whole once this grammar lets it through.
_V1_IPV6 = re.compile(rb"[0-9A-Fa-f:]{2,39}|[0-9A-Fa-f:]{2,30}[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


class ProxyProtocolError(ValueError):
    """The bytes are not a valid PROXY protocol header: close the connection."""


class Command(Enum):
    LOCAL = 0  # v2: the proxy's own connection (health check): keep the socket's addresses
    PROXY = 1  # relayed on behalf of a client (every v1 header)


class Family(Enum):
    UNSPEC = 0
    INET = 1
    INET6 = 2
    UNIX = 3


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """One parsed header. ``source`` and ``dest`` are both None when the socket's own
    addresses stand (see the module docstring)."""

    version: int
    command: Command
    family: Family
    source: tuple[str, int] | None = None
    dest: tuple[str, int] | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()  # v2 type-length-value extensions, in order

    def __post_init__(self) -> None:
        if self.version not in (1, 2):
            raise ValueError(f"PROXY protocol version {self.version}")
        if (self.source is None) != (self.dest is None):
            raise ValueError("source and dest are given together or not at all")
        if self.source is not None and self.command is not Command.PROXY:
            raise ValueError("only a PROXY command carries addresses")

    @property
    def local(self) -> bool:
        """True when the connection's own addresses are to be kept."""
        return self.source is None

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of this type, or None."""
        for t, value in self.tlvs:
            if t == kind:
                return value
        return None

    @property
    def client_ssl(self) -> bool:
        """The proxy says the client connected to it over TLS (v2 PP2_TYPE_SSL, §2.2.6)."""
        value = self.tlv(PP2_TYPE_SSL)
        return value is not None and len(value) >= 5 and bool(value[0] & PP2_CLIENT_SSL)

    @property
    def authority(self) -> str | None:
        """The host name the client asked the proxy for (TLS SNI), when given (§2.2.2)."""
        value = self.tlv(PP2_TYPE_AUTHORITY)
        return None if value is None else value.decode("utf-8", "replace")


def parse_proxy_header(buf: bytes, max_size: int = MAX_HEADER_SIZE) -> tuple[ProxyInfo, int] | None:
    """Parse the PROXY header at the start of ``buf``: ``(info, consumed)``, None when more
    bytes are needed, or ``ProxyProtocolError``. ``max_size`` bounds a v2 header (a v1 line
    is at most 107 bytes)."""
    if not buf:
        return None
    if buf[0] == V1_PREFIX[0]:
        return _parse_v1(buf)
    if buf[0] == V2_SIGNATURE[0]:
        return _parse_v2(buf, max_size)
    raise ProxyProtocolError("the connection does not start with a PROXY protocol header")


# -- version 1 ---------------------------------------------------------------------------------


def _parse_v1(buf: bytes) -> tuple[ProxyInfo, int] | None:
    head = buf[:V1_MAX_SIZE]
    if head[: len(V1_PREFIX)] != V1_PREFIX[: len(head)]:
        raise ProxyProtocolError("not a PROXY protocol header")
    cr = head.find(b"\r")
    lf = head.find(b"\n")
    if lf >= 0 and (cr < 0 or lf < cr):
        raise ProxyProtocolError("v1 line ends with a bare LF")  # §2.1: only CRLF ends it
    if cr < 0 or cr + 1 == len(head):
        if len(buf) >= V1_MAX_SIZE:
            raise ProxyProtocolError(f"v1 line without CRLF in its first {V1_MAX_SIZE} bytes")
        return None
    if head[cr + 1] != 0x0A:
        raise ProxyProtocolError("v1 line has a CR without LF")
    return _v1_line(head[:cr]), cr + 2


def _v1_line(line: bytes) -> ProxyInfo:
    parts = line.split(b" ")
    protocol = parts[1]
    if protocol == b"UNKNOWN":
        # §2.1: the receiver must ignore whatever follows UNKNOWN up to the CRLF.
        return ProxyInfo(1, Command.PROXY, Family.UNSPEC)
    if protocol == b"TCP4":
        family, address = Family.INET, _V1_IPV4
    elif protocol == b"TCP6":
        family, address = Family.INET6, _V1_IPV6
    else:
        raise ProxyProtocolError(f"v1 protocol {protocol[:10]!r} is not TCP4, TCP6 or UNKNOWN")
    if len(parts) != 6:
        raise ProxyProtocolError("v1 line is not PROXY, protocol, 2 addresses, 2 ports")
    src, dst, sport, dport = parts[2:]
    return ProxyInfo(
        1,
        Command.PROXY,
        family,
        (_v1_address(src, address, family), _v1_port(sport)),
        (_v1_address(dst, address, family), _v1_port(dport)),
    )


def _v1_address(text: bytes, grammar: re.Pattern[bytes], family: Family) -> str:
    if grammar.fullmatch(text):
        try:
            if family is Family.INET:
                return str(ipaddress.IPv4Address(text.decode("ascii")))
            return str(ipaddress.IPv6Address(text.decode("ascii")))
        except ValueError:
            pass
    raise ProxyProtocolError(f"v1 address {text[:40]!r} is not a canonical {family.name} address")


def _v1_port(text: bytes) -> int:
    # §2.1: decimal, 0..65535, no leading zeros (which could be read as octal).
    if _V1_PORT.fullmatch(text) and int(text) <= 65535:
        return int(text)
    raise ProxyProtocolError(f"v1 port {text[:10]!r} is not a decimal in 0..65535")


# -- version 2 ---------------------------------------------------------------------------------

# (family, transport) -> bytes of addresses and ports, for the combinations §2.2 defines.
_V2_ADDRESS_SIZE = {
    (Family.INET, 1): 12,  # TCP over IPv4
    (Family.INET, 2): 12,  # UDP over IPv4
    (Family.INET6, 1): 36,
    (Family.INET6, 2): 36,
    (Family.UNIX, 1): 216,
    (Family.UNIX, 2): 216,
}


def _parse_v2(buf: bytes, max_size: int) -> tuple[ProxyInfo, int] | None:
    n = min(len(buf), len(V2_SIGNATURE))
    if buf[:n] != V2_SIGNATURE[:n]:
        raise ProxyProtocolError("not a PROXY protocol header")
    if len(buf) <= 12:
        return None
    version, command = buf[12] >> 4, buf[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f"v2 header with version {version}")
    if command > 1:
        raise ProxyProtocolError(f"v2 header with command {command}")
    if len(buf) > 13 and command == 1 and (buf[13] >> 4 > 3 or buf[13] & 0x0F > 2):
        # §2.2: other families and transports must be rejected (a LOCAL header's are ignored).
        raise ProxyProtocolError(f"v2 header with family/transport 0x{buf[13]:02x}")
    if len(buf) < V2_FIXED_SIZE:
        return None
    size = V2_FIXED_SIZE + int.from_bytes(buf[14:16], "big")
    if size > max_size:
        raise ProxyProtocolError(f"v2 header of {size} bytes is over the {max_size} allowed")
    if command == 0:
        # §2.2: LOCAL: skip the announced length whatever it is; the block is ignored.
        return None if len(buf) < size else (ProxyInfo(2, Command.LOCAL, Family.UNSPEC), size)
    family, transport = Family(buf[13] >> 4), buf[13] & 0x0F
    address_size = _V2_ADDRESS_SIZE.get((family, transport))
    if address_size is not None and size < V2_FIXED_SIZE + address_size:
        raise ProxyProtocolError(f"v2 {family.name} header too short for its addresses")
    if len(buf) < size:
        return None
    if address_size is None:
        # UNSPEC family or transport: the address information is to be ignored.
        return ProxyInfo(2, Command.PROXY, family), size
    header = buf[:size]
    tlvs = _v2_tlvs(header, V2_FIXED_SIZE + address_size)
    if transport != 1 or family is Family.UNIX:
        # Not a TCP client address: fall back to the socket's, as §2.2 allows.
        return ProxyInfo(2, Command.PROXY, family, tlvs=tlvs), size
    if family is Family.INET:
        src = str(ipaddress.IPv4Address(header[16:20]))
        dst = str(ipaddress.IPv4Address(header[20:24]))
        ports = header[24:28]
    else:
        src = str(ipaddress.IPv6Address(header[16:32]))
        dst = str(ipaddress.IPv6Address(header[32:48]))
        ports = header[48:52]
    sport, dport = int.from_bytes(ports[:2], "big"), int.from_bytes(ports[2:], "big")
    return ProxyInfo(2, Command.PROXY, family, (src, sport), (dst, dport), tlvs), size


def _v2_tlvs(header: bytes, pos: int) -> tuple[tuple[int, bytes], ...]:
    """The TLVs from ``pos`` on, which must tile the rest of the header exactly; a CRC32C
    among them is checked (§2.2.3)."""
    tlvs = []
    crc_at = -1
    while pos < len(header):
        if pos + 3 > len(header):
            raise ProxyProtocolError("v2 header ends inside a TLV's type and length")
        kind, length = header[pos], int.from_bytes(header[pos + 1 : pos + 3], "big")
        end = pos + 3 + length
        if end > len(header):
            raise ProxyProtocolError(f"v2 TLV 0x{kind:02x} runs past the header's end")
        if kind == PP2_TYPE_CRC32C:
            if crc_at >= 0 or length != 4:
                raise ProxyProtocolError("v2 CRC32C TLV must appear once, with 4 bytes")
            crc_at = pos + 3
        tlvs.append((kind, header[pos + 3 : end]))
        pos = end
    if crc_at >= 0:
        zeroed = header[:crc_at] + b"\0\0\0\0" + header[crc_at + 4 :]
        if crc32c(zeroed) != int.from_bytes(header[crc_at : crc_at + 4], "big"):
            raise ProxyProtocolError("v2 header fails its CRC32C check")
    return tuple(tlvs)


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, RFC 4960 appendix B), which zlib's crc32 is not."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
