"""Sans-I/O parsing of a request head (RFC 9112 §2-§6).

``parse_head(buf, limits)`` looks at the bytes received so far and returns ``None`` when the head
is not complete yet, ``(RequestHead, consumed)`` when it is, or raises an ``HttpError`` carrying
the status to answer with. No sockets here: the I/O layer feeds bytes and acts on the result, so
every rule is a unit test on bytes, and a head split anywhere parses the same.

Strict by default: where RFC 9112 lets a recipient either reject or repair (bare LF line ends,
obs-fold, CR/LF/NUL in values, identical duplicate Content-Length), treadle rejects, because a
server that repairs what an upstream proxy passed through is where request smuggling lives.
"""

from __future__ import annotations

from typing import NamedTuple

from . import _abnf
from .errors import (
    BadRequest,
    ContentTooLarge,
    ExpectationFailed,
    FieldsTooLarge,
    NotImplementedHttp,
    UriTooLong,
    VersionNotSupported,
)
from .limits import Limits

Headers = list[tuple[bytes, bytes]]

# A Content-Length of more digits (leading zeros aside) is over 10**18 bytes: refused as too large.
MAX_LENGTH_DIGITS = 18


class RequestHead(NamedTuple):
    """A parsed request head: immutable (a tuple), and cheap to build on the hot path."""

    method: str
    target: bytes
    protocol: str  # as received, e.g. "HTTP/1.1"
    minor: int  # 0 for HTTP/1.0, 1 for HTTP/1.1 and later 1.x
    path: bytes  # still percent-encoded
    query: bytes
    scheme: str | None  # from an absolute-form target
    host: bytes | None  # the target's authority, else the Host field
    headers: Headers  # (name as received, value without OWS), in order
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool


def find_head_end(buf: bytes, start: int = 0) -> int:
    """Index just past the blank line ending a head, or -1. Also ends at a bare-LF blank line,
    so the parser sees (and refuses) such a head instead of waiting for a CRLF that never comes."""
    end = buf.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    end = buf.find(b"\n\n", start)
    if end >= 0:
        return end + 2
    end = buf.find(b"\n\r\n", start)
    return end + 3 if end >= 0 else -1


# RFC 9112 §2.2 asks a server to ignore "at least one" empty line before a request line (a
# client's stray CRLF after a POST body). More than this many is a flood, not a stray: 400.
MAX_EMPTY_LINES = 8


def skip_empty_lines(buf: bytes) -> int:
    """Where the request line starts: past at most ``MAX_EMPTY_LINES`` leading CRLFs."""
    if buf[:2] != b"\r\n":
        return 0
    start = 0
    while buf.startswith(b"\r\n", start):
        start += 2
        if start > 2 * MAX_EMPTY_LINES:
            raise BadRequest("too many empty lines before the request line")
    return start


def parse_head(buf: bytes, limits: Limits) -> tuple[RequestHead, int] | None:
    start = skip_empty_lines(buf)
    end = buf.find(b"\r\n\r\n", start)
    if end < 0:
        if find_head_end(buf, start) >= 0:
            raise BadRequest("line not terminated by CRLF (bare LF)")
        check_partial_head(buf, limits)
        return None
    # The empty lines count toward the head: they cost the same to receive.
    if end > limits.max_head_size:
        raise FieldsTooLarge("request head too large")
    line_end = buf.find(b"\r\n", start)
    if line_end - start > limits.max_request_line:
        raise UriTooLong("request line too long")
    method, target, protocol, minor = _parse_request_line(buf[start:line_end])
    headers = _parse_field_section(buf[line_end + 2 : end + 2], limits)
    return _interpret(method, target, protocol, minor, headers), end + 4


def check_partial_head(buf: bytes, limits: Limits) -> None:
    """Refuse early what can no longer become a valid head (bytes received so far, no end yet).

    Its cost is bounded by the request-line limit, whatever the buffer's size: the field lines
    of a partial head are only measured, never rescanned."""
    start = skip_empty_lines(buf)
    if len(buf) > limits.max_head_size:
        raise FieldsTooLarge("request head too large")
    line_end = buf.find(b"\n", start, start + limits.max_request_line + 2)
    if line_end < 0:
        if len(buf) - start > limits.max_request_line:
            raise UriTooLong("request line too long")
        line_end = len(buf)
    elif line_end == start or buf[line_end - 1] != 13:  # 13 is CR
        raise BadRequest("request line not terminated by CRLF (bare LF)")
    # A request line starts with a method (a token) and a space: a TLS ClientHello, an HTTP/2
    # frame or binary noise is refused at its first byte, not after the head deadline.
    space = buf.find(b" ", start, line_end)
    method = buf[start : line_end if space < 0 else space]
    if space < 0 and method.endswith(b"\r"):
        method = method[:-1]  # perhaps the first half of an empty line's CRLF
    if (method or space >= 0) and not _abnf.METHOD.fullmatch(method):
        raise BadRequest("invalid method")


# Methods and versions seen on nearly every request skip their regexes.
_COMMON_METHODS = {
    m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
}
_COMMON_VERSIONS = {b"HTTP/1.1": ("HTTP/1.1", 1), b"HTTP/1.0": ("HTTP/1.0", 0)}


def _parse_request_line(line: bytes) -> tuple[str, bytes, str, int]:
    # request-line = method SP request-target SP HTTP-version             ; RFC 9112 §3
    parts = line.split(b" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    name = _COMMON_METHODS.get(method)
    if name is None:
        if not _abnf.METHOD.fullmatch(method):
            raise BadRequest("invalid method")
        name = method.decode("ascii")
    known = _COMMON_VERSIONS.get(version)
    if known is not None and target:
        return name, target, known[0], known[1]
    match = _abnf.HTTP_VERSION.fullmatch(version)
    if match is None:
        raise BadRequest("invalid HTTP version")
    major, minor = int(match[1]), int(match[2])
    if major != 1:
        # RFC 9110 §15.6.6: 505 for a major version the server does not support.
        raise VersionNotSupported(f"HTTP/{major}.{minor} is not supported")
    if not target:
        raise BadRequest("empty request target")
    return name, target, version.decode("ascii"), min(minor, 1)


def _parse_field_section(section: bytes, limits: Limits) -> Headers:
    """Field lines, each ending in CRLF, checked in one regex pass and then split."""
    lines = section.split(b"\r\n")
    lines.pop()  # the empty string after the final CRLF
    if len(lines) > limits.max_header_count:
        raise FieldsTooLarge("too many header fields")
    max_line = limits.max_field_line
    if not _abnf.FIELD_SECTION.fullmatch(section) or max(map(len, lines), default=0) > max_line:
        for line in lines:
            if not _abnf.FIELD_LINE.fullmatch(line) or len(line) > max_line:
                _refuse_field_line(line, max_line)
    headers: Headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        headers.append((name, value.strip(b" \t")))
    return headers


def _refuse_field_line(line: bytes, max_field_line: int) -> None:
    """Say precisely why a field line was refused (the slow path: only for bad input)."""
    if len(line) > max_field_line:
        raise FieldsTooLarge("header field line too long")
    if line[:1] in (b" ", b"\t"):
        raise BadRequest("obsolete line folding (obs-fold) is not accepted")  # RFC 9112 §5.2
    name, colon, value = line.partition(b":")
    if not colon:
        raise BadRequest("header field line without a colon")
    if not name:
        raise BadRequest("empty header field name")
    if name.rstrip(b" \t") != name:
        raise BadRequest("whitespace between field name and colon")  # RFC 9112 §5.1
    if not _abnf.TOKEN.fullmatch(name):
        raise BadRequest("invalid character in header field name")
    if b"\n" in value or b"\r" in value:
        raise BadRequest("bare CR or LF in header section")
    raise BadRequest("invalid character in header field value")


def _split_list(value: bytes) -> list[bytes]:
    # #element = [ element ] *( OWS "," OWS [ element ] )                   ; RFC 9110 §5.6.1
    return [item.strip(b" \t").lower() for item in value.split(b",") if item.strip(b" \t")]


# The fields that decide framing and persistence, by lower-case name; a name whose length
# matches none of them cannot be one, so most fields cost a dict lookup and no lower().
_FRAMING = {
    name: name
    for name in (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect")
}
_FRAMING.update(
    {b"Host": b"host", b"Content-Length": b"content-length", b"Connection": b"connection"}
)
_FRAMING_LENGTHS = frozenset(len(name) for name in _FRAMING)
# Host values already found valid: a server sees the same few again and again.
_valid_hosts: set[bytes] = set()


def _interpret(
    method: str, target: bytes, protocol: str, minor: int, headers: Headers
) -> RequestHead:
    content_length: bytes | None = None
    transfer_codings: list[bytes] | None = None
    hosts: list[bytes] = []
    connection: list[bytes] = []
    expect: bytes | None = None
    for name, value in headers:
        lname = _FRAMING.get(name)
        if lname is None:
            if len(name) not in _FRAMING_LENGTHS:
                continue
            lname = name.lower()
        if lname == b"content-length":
            if content_length is not None:
                raise BadRequest("more than one Content-Length")  # RFC 9112 §6.3 (5)
            content_length = value
        elif lname == b"transfer-encoding":
            transfer_codings = (transfer_codings or []) + _split_list(value)
        elif lname == b"host":
            hosts.append(value)
        elif lname == b"connection":
            connection += _split_list(value)
        elif lname == b"expect":
            expect = value.lower() if expect is None else expect + b"," + value.lower()

    path, query, scheme, authority = _parse_target(method, target)

    # RFC 9110 §7.2 / RFC 9112 §3.2: exactly one valid Host on HTTP/1.1.
    if len(hosts) > 1:
        raise BadRequest("more than one Host header field")
    if hosts:
        if hosts[0] not in _valid_hosts:
            if _abnf.HOST.fullmatch(hosts[0]) is None:
                raise BadRequest("invalid Host header field")
            if len(_valid_hosts) < 256:  # bounded: the values are client-chosen
                _valid_hosts.add(hosts[0])
    elif minor >= 1:
        raise BadRequest("missing Host header field")
    host = authority if authority is not None else (hosts[0] if hosts else None)

    chunked = False
    length: int | None = None
    if transfer_codings is not None:
        chunked = _check_transfer_codings(transfer_codings, minor, content_length is not None)
    elif content_length is not None:
        if not content_length.isdigit() or not content_length.isascii():
            raise BadRequest("invalid Content-Length")  # RFC 9112 §6.3 (5)
        digits = content_length.lstrip(b"0")
        if len(digits) > MAX_LENGTH_DIGITS:
            # Far over any body limit; and int() refuses strings past 4,300 digits.
            raise ContentTooLarge("Content-Length over the body size limit")
        length = int(digits or b"0")

    close = b"close" in connection
    keep_alive = not close if minor >= 1 else (b"keep-alive" in connection and not close)

    expect_continue = False
    if expect is not None and minor >= 1:  # RFC 9110 §10.1.1: ignored on HTTP/1.0
        if expect != b"100-continue":
            raise ExpectationFailed("only 100-continue is supported")
        expect_continue = True

    return RequestHead(
        method,
        target,
        protocol,
        minor,
        path,
        query,
        scheme,
        host,
        headers,
        length,
        chunked,
        keep_alive,
        expect_continue,
    )


def _check_transfer_codings(codings: list[bytes], minor: int, has_length: bool) -> bool:
    if minor == 0:
        # RFC 9112 §6.1: Transfer-Encoding on HTTP/1.0 means the framing is faulty.
        raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
    if has_length:
        raise BadRequest("both Transfer-Encoding and Content-Length")  # RFC 9112 §6.3 (3)
    names = [coding.split(b";", 1)[0].strip(b" \t") for coding in codings]
    if not names or names[-1] != b"chunked":
        raise BadRequest("chunked is not the final transfer coding")  # RFC 9112 §6.3 (4)
    if names.count(b"chunked") > 1 or codings[-1] != b"chunked":
        raise BadRequest("chunked applied more than once, or with parameters")  # RFC 9112 §6.1
    if len(names) > 1:
        raise NotImplementedHttp("unsupported transfer coding")  # RFC 9112 §6.1: 501
    return True


def _parse_target(method: str, target: bytes) -> tuple[bytes, bytes, str | None, bytes | None]:
    """Return (path, query, scheme, authority) for the four request-target forms (RFC 9112 §3.2)."""
    if target == b"/":
        return target, b"", None, None
    if target[:1] == b"/":
        match = _abnf.ORIGIN_FORM.fullmatch(target)
        if match is None:
            raise BadRequest("invalid request target")
        return match[1], match[2] or b"", None, None
    if method == "CONNECT":
        raise NotImplementedHttp("CONNECT is not supported")  # authority-form, RFC 9112 §3.2.3
    if target == b"*":
        if method != "OPTIONS":
            raise BadRequest("asterisk-form is only for OPTIONS")  # RFC 9112 §3.2.4
        return b"*", b"", None, None
    match = _abnf.ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise BadRequest("invalid request target")
    scheme = match[1].decode("ascii").lower()
    if scheme not in ("http", "https"):
        raise BadRequest("unsupported URI scheme in request target")
    authority = match[2]
    if authority.partition(b":")[0] == b"":
        raise BadRequest("empty host in absolute-form target")  # RFC 9110 §4.2.1
    return match[3] or b"/", match[4] or b"", scheme, authority
