"""The chunked transfer coding in requests (RFC 9112 section 7.1).

A malformed chunked body leaves the server unable to know where the message ends, so every
malformed case expects 400 and a closed connection, with a smuggled request after the body that
must never be answered.
"""

from __future__ import annotations

from treadle_conformance.scenarios._kit import (
    MUST,
    S9112,
    SHOULD,
    Maker,
    all_of,
    chunked,
    ok,
    paths,
    reject,
    req,
    saw,
    seq,
)
from treadle_conformance.scenarios.framing import SMUGGLED, not_smuggled

m = Maker("chunked")
SECTION = S9112 + "7.1"
HELLO = saw(body="hello")
HELLO_WORLD = saw(body="hello world")
BROKEN = reject(400, close=True, check=not_smuggled)


def good(id: str, title: str, raw: bytes, body: str) -> None:
    m(
        id,
        SECTION,
        MUST,
        title,
        chunked("/chunked", raw),
        ok(check=saw(body=body)),
        reflect=True,
        fragment=True,
    )


# RFC 9112 §2.2: a server receiving octets that do not match the grammar SHOULD answer 400 and
# close. The MUST behind these scenarios is safety: never answer the request that follows.
INVALID = SECTION + "; 2.2 (does not match the grammar: SHOULD 400 and close)"


def bad(id: str, title: str, raw: bytes) -> None:
    m(
        id,
        INVALID,
        SHOULD,
        title,
        chunked("/chunked", raw + SMUGGLED),
        BROKEN,
    )


good(
    "CHUNK-BASIC",
    "two chunks and the last chunk",
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "hello world",
)
good("CHUNK-HEX-UPPER", "an uppercase hex size", b"B\r\nhello world\r\n0\r\n\r\n", "hello world")
good("CHUNK-HEX-LOWER", "a lowercase hex size", b"b\r\nhello world\r\n0\r\n\r\n", "hello world")
good("CHUNK-LEADING-ZEROS", "sizes with leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", "hello")
good("CHUNK-EMPTY-BODY", "only the last chunk", b"0\r\n\r\n", "")
good(
    "CHUNK-EXTENSION",
    "an unknown chunk extension is ignored",
    b"5;foo=bar\r\nhello\r\n0\r\n\r\n",
    "hello",
)
good(
    "CHUNK-EXTENSION-NO-VALUE",
    "an extension without a value",
    b"5;foo\r\nhello\r\n0;bar\r\n\r\n",
    "hello",
)
good(
    "CHUNK-EXTENSION-QUOTED",
    "a quoted extension value with ; and an escape",
    b'5;foo="a;b\\"c"\r\nhello\r\n0\r\n\r\n',
    "hello",
)
good(
    "CHUNK-EXTENSION-BWS",
    "whitespace around the extension's ; and = (BWS)",
    b"5 ; foo = bar\r\nhello\r\n0\r\n\r\n",
    "hello",
)
good(
    "CHUNK-TRAILER",
    "a trailer field after the last chunk",
    b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n",
    "hello",
)
good(
    "CHUNK-TRAILERS-MANY",
    "several trailer fields",
    b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n",
    "hello",
)
good(
    "CHUNK-MANY-SMALL",
    "a hundred one-byte chunks",
    b"".join(b"1\r\n%c\r\n" % (65 + i % 26) for i in range(100)) + b"0\r\n\r\n",
    "".join(chr(65 + i % 26) for i in range(100)),
)
m(
    "CHUNK-LARGE",
    SECTION,
    MUST,
    "1 MiB in 64 KiB chunks",
    chunked("/chunked", (b"10000\r\n" + b"q" * 65536 + b"\r\n") * 16 + b"0\r\n\r\n"),
    ok(check=saw(body_length=1 << 20)),
    reflect=True,
)
m(
    "CHUNK-TRAILER-CONTENT-LENGTH",
    S9112 + "7.1.2; RFC 9110 §6.5",
    MUST,
    "a Content-Length trailer does not change the framing",
    chunked("/t", b"5\r\nhello\r\n0\r\nContent-Length: 40\r\n\r\n") + req(target="/after"),
    ok(2, check=all_of(HELLO, paths("/t", "/after"))),
    reject(400, close=True, label="refuse"),
    reflect=True,
    fragment=True,
)
m(
    "CHUNK-TRAILER-TRANSFER-ENCODING",
    S9112 + "7.1.2; RFC 9110 §6.5",
    MUST,
    "a Transfer-Encoding trailer does not change the framing",
    chunked("/t", b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n") + req(target="/after"),
    ok(2, check=all_of(HELLO, paths("/t", "/after"))),
    reject(400, close=True, label="refuse"),
    reflect=True,
)
m(
    "CHUNK-TRAILER-SPACE-BEFORE-COLON",
    S9112 + "5.1, 7.1.2",
    SHOULD,
    "whitespace before the colon in a trailer field",
    chunked("/t", b"5\r\nhello\r\n0\r\nX-T : v\r\n\r\n"),
    reject(400),
)
m(
    "CHUNK-EXTENSION-HUGE",
    S9112 + "7.1.1",
    SHOULD,
    "100 KiB of chunk extension: a 4xx",
    chunked("/t", b"5;x=" + b"a" * 102400 + b"\r\nhello\r\n0\r\n\r\n"),
    reject(*range(400, 500), close=True),
)
# RFC 9112 §2.2's bare-LF allowance covers the start-line and field lines only (erratum 7633,
# which would have extended it to chunk lines, was rejected), and §7.1's chunk-size has no
# whitespace. A server that reads these leniently is not unsafe by itself; it is when it then
# answers the request that follows, which a strict server never reads.
NOT_IN_GRAMMAR = SECTION + "; 2.2 (bare LF is allowed only in the start-line and fields)"
for id, raw, title in [
    ("CHUNK-BARE-LF-SIZE", b"5\nhello\r\n0\r\n\r\n", "a bare LF after the chunk size"),
    ("CHUNK-BARE-LF-DATA", b"5\r\nhello\n0\r\n\r\n", "a bare LF after the chunk data"),
    ("CHUNK-BARE-LF-LAST", b"5\r\nhello\r\n0\n\n", "bare LFs around the last chunk"),
]:
    m(id, NOT_IN_GRAMMAR, SHOULD, title, chunked("/t", raw + SMUGGLED), BROKEN)
m(
    "CHUNK-SIZE-TRAILING-SPACE",
    SECTION + " (chunk-size = 1*HEXDIG, no whitespace); 2.2",
    SHOULD,
    "a space after the size with no extension",
    chunked("/t", b"5 \r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    BROKEN,
)
bad("CHUNK-SIZE-NOT-HEX", "a size that is not hex", b"g\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-SIZE-NEGATIVE", "a negative size", b"-5\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-SIZE-PLUS", "a size with a plus sign", b"+5\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-SIZE-0X", "a size written 0x5", b"0x5\r\nhello\r\n0\r\n\r\n")
bad(
    "CHUNK-SIZE-UNDERSCORE",
    "a size with an underscore (1_0)",
    b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
)
bad("CHUNK-SIZE-LEADING-SPACE", "a space before the size", b" 5\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-SIZE-EMPTY", "an empty size line", b"\r\nhello\r\n0\r\n\r\n")
for id, size, title in [
    ("CHUNK-SIZE-OVERFLOW", b"ffffffffffffffffffffffff", "a size far beyond 64 bits"),
    ("CHUNK-SIZE-64BIT-WRAP", b"10000000000000005", "a size that wraps to 5 in 64 bits"),
]:
    m(
        id,
        SECTION + " (recipients MUST anticipate large numerals)",
        MUST,
        f"{title}: refused, or waited for (never read as a small size)",
        chunked("/chunked", size + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
        reject(400, 413, close=True, check=not_smuggled),
        seq(label="wait for the data"),
        wait=1.0,
    )
bad("CHUNK-DATA-LONGER", "more data than the size", b"3\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-DATA-SHORTER", "less data than the size", b"9\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-DATA-NO-CRLF", "no CRLF after the data", b"5\r\nhello0\r\n\r\n")
bad("CHUNK-DATA-BARE-CR", "a bare CR after the data", b"5\r\nhello\r0\r\n\r\n")
bad("CHUNK-EXTENSION-NO-NAME", "a ; with no extension name", b"5;\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-EXTENSION-CTL", "a control character in an extension", b"5;a=\x01\r\nhello\r\n0\r\n\r\n")
bad("CHUNK-EXTENSION-BARE-LF", "an extension hiding a bare LF", b"5;a=b\nc\r\nhello\r\n0\r\n\r\n")
bad(
    "CHUNK-LAST-NOT-ZERO-LINE", "the last chunk with a non-zero digit", b"5\r\nhello\r\n0 1\r\n\r\n"
)

SCENARIOS = m.made
