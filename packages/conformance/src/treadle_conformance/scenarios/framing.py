"""Body framing and request smuggling (RFC 9112 sections 6.1-6.3).

Each smuggling payload carries a second request, `GET /smuggled`, after the body that a correct
reading of the framing ends at; a server that reads the framing differently answers it (an extra
response, or one from the reflection app naming `/smuggled`), which these scenarios forbid.
"""

from __future__ import annotations

from collections.abc import Sequence

from treadle_conformance.scenarios._kit import (
    ANY,
    MUST,
    S9112,
    SHOULD,
    Maker,
    all_of,
    codes,
    ok,
    paths,
    post,
    reject,
    req,
    saw,
    seq,
)
from treadle_conformance.wire import Response

m = Maker("framing")
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
# A request that every permitted reading of the bytes before it finds: answering it is right.
AFTER = b"GET /after HTTP/1.1\r\nHost: example.test\r\n\r\n"
HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"


def not_smuggled(responses: Sequence[Response]) -> str | None:
    for r in responses:
        data = r.json()
        if data is not None and data.get("path") == "/smuggled":
            return "the smuggled request was answered"
    return None


def framed(headers: list[bytes], body: bytes, version: str = "HTTP/1.1") -> bytes:
    return req("POST", "/", version, headers, body)


HELLO = saw(body="hello")
HIDDEN = b"0\r\n\r\n" + SMUGGLED  # a whole body under Content-Length, two under chunked
CLOSE_400 = reject(400, close=True, check=not_smuggled)
CODING_REFUSED = reject(400, 501, close=True, check=not_smuggled)

m(
    "BODY-CONTENT-LENGTH",
    S9112 + "6.2",
    MUST,
    "a Content-Length body reaches the app",
    post("/cl", b"hello world"),
    ok(check=saw(body="hello world", body_length=11)),
    reflect=True,
    fragment=True,
)
m(
    "BODY-CONTENT-LENGTH-ZERO",
    S9112 + "6.2",
    MUST,
    "Content-Length: 0",
    post("/cl0", b""),
    ok(check=saw(body_length=0)),
    reflect=True,
    fragment=True,
)
m(
    "BODY-NONE",
    S9112 + "6.3",
    MUST,
    "a POST with neither field has no body",
    req("POST", "/none"),
    ok(check=saw(body_length=0)),
    reflect=True,
)
m(
    "BODY-GET-WITH-BODY",
    S9112 + "6.3",
    MUST,
    "a GET body is framed by Content-Length like any other",
    req("GET", "/", headers=[("Content-Length", str(len(SMUGGLED)))], body=SMUGGLED),
    ok(check=all_of(not_smuggled, saw(body=SMUGGLED.decode()))),
    reflect=True,
)
m(
    "BODY-CL-LEADING-ZEROS",
    S9112 + "6.2",
    SHOULD,
    "Content-Length: 010 is ten octets (1*DIGIT, decimal; an octal reading takes eight)",
    framed([b"Content-Length: 010"], b"0123456789"),
    ok(check=saw(body="0123456789")),
    reflect=True,
)
m(
    "BODY-BINARY",
    S9112 + "6.2",
    MUST,
    "every byte value survives in a body",
    post("/bin", bytes(range(256))),
    ok(check=saw(body=bytes(range(256)).decode("latin-1"))),
    reflect=True,
    fragment=True,
)
m(
    "BODY-LARGE",
    S9112 + "6.2",
    MUST,
    "a 2 MiB body",
    post("/large", b"z" * (2 << 20)),
    ok(check=saw(body_length=2 << 20)),
    reject(413, label="over the server's body limit (RFC 9110 §15.5.14)"),
    reflect=True,
)

# Content-Length: duplicates and bad values (6.3 item 5).
CL5 = b"Content-Length: 5"
m(
    "SMUG-CL-DUP-DIFFERENT",
    S9112 + "6.3",
    MUST,
    "two different Content-Length fields: 400, close",
    framed([CL5, b"Content-Length: 6"], b"hello!" + SMUGGLED),
    CLOSE_400,
)
# Equal values frame "hello" under every reading that takes them, so the GET after it is a
# legitimate pipelined request: answering it is no desync.
m(
    "SMUG-CL-DUP-SAME",
    S9112 + "6.3",
    MUST,
    "two equal Content-Length fields: MAY use the value, or 400",
    framed([CL5, CL5], b"hello" + AFTER),
    CLOSE_400,
    ok(2, check=all_of(HELLO, paths("/", "/after")), label="one value, then the next request"),
    reflect=True,
)
m(
    "SMUG-CL-LIST-SAME",
    S9112 + "6.3",
    MUST,
    "Content-Length: 5, 5: MAY use 5, or 400",
    framed([b"Content-Length: 5, 5"], b"hello" + AFTER),
    CLOSE_400,
    ok(2, check=all_of(HELLO, paths("/", "/after")), label="one value, then the next request"),
    reflect=True,
)
m(
    "SMUG-CL-LIST-DIFFERENT",
    S9112 + "6.3",
    MUST,
    "Content-Length: 5, 6 is 400 and close",
    framed([b"Content-Length: 5, 6"], b"hello!" + SMUGGLED),
    CLOSE_400,
)
for suffix, value in [
    ("NEGATIVE", b"-5"),
    ("PLUS", b"+5"),
    ("HEX", b"0x5"),
    ("SPACE-INSIDE", b"1 0"),
    ("EMPTY", b""),
    ("LETTERS", b"five"),
    ("UNDERSCORE", b"0_5"),
    ("DECIMAL", b"5.0"),
    ("SEMICOLON", b"5;"),
]:
    m(
        f"SMUG-CL-{suffix}",
        S9112 + "6.3",
        MUST,
        f"Content-Length: {value.decode()!r} is 400 and close",
        framed([b"Content-Length: " + value], b"hello" + SMUGGLED),
        CLOSE_400,
    )
m(
    "SMUG-CL-OVERFLOW",
    S9112 + "6.3",
    MUST,
    "a Content-Length past any integer size: 400/413 and close, or wait for the data",
    framed([b"Content-Length: 99999999999999999999999999999"], b"hello" + SMUGGLED),
    reject(400, 413, close=True, check=not_smuggled),
    seq(label="wait for the data"),
    wait=1.0,
)
m(
    "SMUG-CL-SPACE-BEFORE-COLON",
    S9112 + "5.1",
    MUST,
    "`Content-Length : 5` is 400",
    framed([b"Content-Length : 5"], b"hello" + SMUGGLED),
    reject(400, check=not_smuggled),
)

# Content-Length with Transfer-Encoding (6.1, 6.3 item 3).
TE = b"Transfer-Encoding: chunked"
CL_TE_BODY = HELLO_CHUNKED + SMUGGLED
TE_WINS = ok(close=True, check=all_of(HELLO, not_smuggled), label="use chunked, then close")
m(
    "SMUG-CL-TE",
    S9112 + "6.1",
    MUST,
    "Content-Length then Transfer-Encoding: 400, or chunked; close",
    framed([b"Content-Length: 4", TE], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reflect=True,
)
m(
    "SMUG-TE-CL",
    S9112 + "6.1",
    MUST,
    "Transfer-Encoding then Content-Length: 400, or chunked; close",
    framed([TE, b"Content-Length: 4"], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reflect=True,
)
m(
    "SMUG-TE-CL-ZERO",
    S9112 + "6.1",
    MUST,
    "chunked with Content-Length: 0",
    framed([b"Content-Length: 0", TE], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reflect=True,
)
m(
    "SMUG-TE-CL-LONG",
    S9112 + "6.1",
    MUST,
    "chunked with a Content-Length longer than the body",
    framed([b"Content-Length: " + str(len(CL_TE_BODY)).encode(), TE], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reflect=True,
)
m(
    "SMUG-TE-HTTP10",
    S9112 + "6.1",
    MUST,
    "Transfer-Encoding on HTTP/1.0: faulty framing, close",
    framed([TE], CL_TE_BODY, "HTTP/1.0"),
    CLOSE_400,
)
m(
    "SMUG-TE-HTTP10-CL",
    S9112 + "6.1",
    MUST,
    "Transfer-Encoding and Content-Length on HTTP/1.0",
    framed([TE, b"Content-Length: 5"], CL_TE_BODY, "HTTP/1.0"),
    CLOSE_400,
)

# Transfer codings (6.1, 6.3 item 4, 7).
for suffix, value, title in [
    ("IDENTITY", b"identity", "`identity` is no longer a transfer coding"),
    ("UNKNOWN", b"foo", "an unknown coding"),
    ("CHUNKED-NOT-LAST", b"chunked, gzip", "chunked not the final coding"),
    ("EMPTY", b"", "an empty Transfer-Encoding"),
    ("XCHUNKED", b"xchunked", "a coding that only contains `chunked`"),
    ("VTAB", b"\x0bchunked", "a vertical tab before chunked"),
    ("QUOTED", b'"chunked"', "a quoted coding"),
]:
    m(
        f"SMUG-TE-{suffix}",
        S9112 + "6.3",
        MUST,
        f"{title}: 400 or 501, and close",
        framed([b"Transfer-Encoding: " + value], CL_TE_BODY),
        CODING_REFUSED,
    )
# With chunked last the body is well framed, so the GET after it is a legitimate pipelined
# request: answering it is no desync.
m(
    "SMUG-TE-UNKNOWN-501",
    S9112 + "6.1",
    SHOULD,
    "an unknown transfer coding before chunked is 501",
    framed([b"Transfer-Encoding: foo, chunked"], HELLO_CHUNKED + AFTER),
    reject(501, close=True),
    seq(codes(501), ANY, label="501, then the next request"),
    requests=2,
)
m(
    "SMUG-TE-CHUNKED-PARAM",
    S9112 + "7.1 (parameters on chunked SHOULD be treated as an error)",
    SHOULD,
    "chunked does not take parameters: an error (400 or 501)",
    framed([b"Transfer-Encoding: chunked; foo=bar"], HELLO_CHUNKED + AFTER),
    reject(400, 501, close=True),
    seq(codes(400, 501), ANY, label="refuse, then the next request"),
    requests=2,
)
m(
    "SMUG-TE-CHUNKED-TWICE",
    S9112 + "7",
    SHOULD,
    "chunked applied twice is refused",
    framed([b"Transfer-Encoding: chunked, chunked"], CL_TE_BODY),
    CODING_REFUSED,
)
m(
    "SMUG-TE-CHUNKED-TWO-FIELDS",
    S9112 + "7",
    SHOULD,
    "chunked in two Transfer-Encoding fields",
    framed([TE, TE], CL_TE_BODY),
    CODING_REFUSED,
)
m(
    "SMUG-TE-CASE",
    S9112 + "7",
    MUST,
    "transfer-coding names are case-insensitive",
    framed([b"Transfer-Encoding: ChUnKeD"], HELLO_CHUNKED),
    ok(check=HELLO),
    reflect=True,
)
m(
    "SMUG-TE-OWS",
    S9112 + "5.1",
    MUST,
    "whitespace around the coding is not part of it",
    framed([b"Transfer-Encoding: \t chunked \t"], HELLO_CHUNKED),
    ok(check=HELLO),
    reflect=True,
)
m(
    "SMUG-TE-EMPTY-LIST-ITEM",
    "RFC 9110 §5.6.1",
    MUST,
    "empty list elements are ignored: `, chunked`",
    framed([b"Transfer-Encoding: , chunked"], HELLO_CHUNKED),
    ok(check=HELLO),
    reflect=True,
)
m(
    "SMUG-TE-SPACE-BEFORE-COLON",
    S9112 + "5.1",
    MUST,
    "`Transfer-Encoding : chunked` is 400",
    framed([b"Transfer-Encoding : chunked", CL5], HELLO_CHUNKED + SMUGGLED),
    reject(400, check=not_smuggled),
)
m(
    "SMUG-TE-OBS-FOLD",
    S9112 + "5.2",
    MUST,
    "Transfer-Encoding folded onto a second line",
    framed([b"Transfer-Encoding:", b" chunked", b"Content-Length: 4"], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reflect=True,
)
m(
    "SMUG-TE-NUL",
    "RFC 9110 §5.5",
    MUST,
    "a NUL after chunked: reject, or read it as SP",
    framed([b"Transfer-Encoding: chunked\x00", CL5], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    CODING_REFUSED,
    reflect=True,
)
m(
    "SMUG-CL-CR",
    "RFC 9110 §5.5; RFC 9112 §6.3",
    MUST,
    "a bare CR after a Content-Length value: 400 and close, or read as SP (then 5 octets)",
    framed([b"Content-Length: 5\r"], b"hello" + AFTER),
    reject(400, close=True, label="reject (an invalid Content-Length: close, RFC 9112 §6.3)"),
    ok(2, check=HELLO, label="CR read as SP"),
    reflect=True,
)
m(
    "SMUG-TE-LF-NAME",
    S9112 + "2.2",
    MUST,
    "Transfer-Encoding hidden behind a bare LF",
    framed([b"X-Foo: bar\nTransfer-Encoding: chunked", CL5], CL_TE_BODY),
    CLOSE_400,
    TE_WINS,
    reject(400, check=not_smuggled, label="reject bare LF"),
    reflect=True,
)
m(
    "SMUG-CHUNKED-BODY-WITHOUT-TE",
    S9112 + "6.3",
    MUST,
    "a chunked-looking body without Transfer-Encoding is just bytes of Content-Length",
    framed([b"Content-Length: " + str(len(HELLO_CHUNKED)).encode()], HELLO_CHUNKED),
    ok(check=saw(body=HELLO_CHUNKED.decode())),
    reflect=True,
)
m(
    "BODY-SHORTER-THAN-CL-HALF-CLOSE",
    S9112 + "8",
    SHOULD,
    "the client half-closes before the Content-Length is complete: the app never runs",
    framed([b"Content-Length: 50"], b"hello"),
    reject(400, 408, close=True),
    seq(close=True, label="close without a response"),
    shutdown_write=True,
)

m(
    "BODY-CL-OWS",
    S9112 + "5.1, 6.2",
    MUST,
    "whitespace around the Content-Length value is not part of it",
    framed([b"Content-Length: \t 5 \t"], b"hello"),
    ok(check=HELLO),
    reflect=True,
)
m(
    "SMUG-TE-UNDERSCORE",
    S9112 + "6.1; RFC 3875 §4.1.18",
    MUST,
    "Transfer_Encoding (underscore) is not Transfer-Encoding: Content-Length frames the body",
    framed([b"Transfer_Encoding: chunked", b"Content-Length: %d" % len(HIDDEN)], HIDDEN),
    ok(check=all_of(saw(body=HIDDEN.decode()), not_smuggled)),
    reject(400, check=not_smuggled),
    reflect=True,
)
m(
    "SMUG-CL-UNDERSCORE-NAME",
    S9112 + "6.3; RFC 3875 §4.1.18",
    MUST,
    "Content_Length (underscore) is not Content-Length: the request has no body",
    framed([b"Content_Length: 5"], b""),
    ok(check=saw(body_length=0)),
    reject(400),
    reflect=True,
)

SCENARIOS = m.made
