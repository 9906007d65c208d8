"""Builders of PROXY protocol headers (HAProxy's doc/proxy-protocol.txt), for tests that play
the load balancer's part."""

from __future__ import annotations

import ipaddress

from treadle.proxyproto import PP2_TYPE_CRC32C, V2_SIGNATURE, crc32c


def v1(src: str, dst: str, sport: int, dport: int) -> bytes:
    """``PROXY TCP4|TCP6 src dst sport dport\\r\\n``."""
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode("ascii")


def v2(
    src: str | None = None,
    dst: str | None = None,
    sport: int = 0,
    dport: int = 0,
    *,
    command: int = 1,
    family_byte: int | None = None,
    block: bytes | None = None,
    tlvs: list[tuple[int, bytes]] | tuple[tuple[int, bytes], ...] = (),
    with_crc: bool = False,
) -> bytes:
    """A binary header. Addresses give a TCP family; ``family_byte``/``block`` override the
    family byte and the address block; ``with_crc`` appends a valid CRC32C TLV."""
    if block is None:
        if src is None or dst is None:
            block = b""
        else:
            block = (
                ipaddress.ip_address(src).packed
                + ipaddress.ip_address(dst).packed
                + sport.to_bytes(2, "big")
                + dport.to_bytes(2, "big")
            )
    if family_byte is None:
        family_byte = 0x00 if src is None else 0x21 if ":" in src else 0x11
    body = block + b"".join(bytes([t]) + len(v).to_bytes(2, "big") + v for t, v in tlvs)
    if with_crc:
        body += bytes([PP2_TYPE_CRC32C]) + b"\0\x04" + b"\0\0\0\0"
    head = V2_SIGNATURE + bytes([0x20 | command, family_byte]) + len(body).to_bytes(2, "big")
    header = head + body
    if with_crc:
        header = header[:-4] + crc32c(header).to_bytes(4, "big")
    return header
