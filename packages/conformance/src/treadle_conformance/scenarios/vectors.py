"""Desync vectors that request-smuggling research keeps finding in real parsers.

Each hides a request (`GET /smuggled`) or a pipelined one (`GET /after`) behind an octet that a
lenient parser reads differently from RFC 9112's grammar: a stray CR, Python's `str.strip()`
whitespace (form feed, NEL, NBSP), a number parsed by its prefix, a field name with a high
byte, a second Transfer-Encoding field, a fold, a pause. The level is the cited clause's; the
safety verdict (see `verdict`) catches a server that answers what a strict one never reads.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Sequence

from treadle_conformance.scenarios._kit import (
    ANY,
    CLIENT_ERRORS,
    MAY,
    MUST,
    OK,
    S9110,
    S9112,
    SHOULD,
    Maker,
    all_of,
    chunked,
    codes,
    http2,
    ok,
    paths,
    reject,
    req,
    saw,
    saw_header,
    seq,
)
from treadle_conformance.scenarios.framing import AFTER, HELLO_CHUNKED, SMUGGLED
from treadle_conformance.target import Target
from treadle_conformance.wire import Response, ResponseError

chunk = Maker("chunked")
frame = Maker("framing")
head = Maker("headers")
line = Maker("request-line")
other = Maker("protocols")

BROKEN = reject(400, close=True)
REFUSED = reject(400, 501, close=True)
CHUNK_GRAMMAR = S9112 + "7.1; 2.2 (does not match the grammar: SHOULD 400 and close)"
HELLO = saw(body="hello")


def after_intact(responses: Sequence[Response]) -> str | None:
    """The pipelined `GET /after` was read whole: not refused, not merged with the body."""
    if len(responses) < 2:
        return None
    second = responses[1]
    data = second.json()
    if data is not None and (data.get("method"), data.get("path")) != ("GET", "/after"):
        return f"the pipelined GET /after was read as {data.get('method')} {data.get('path')}"
    if data is None and second.status == 400:
        return "the pipelined GET /after was refused: the body before it was read as its start"
    return None


def lacks(value: str) -> Callable[[list[str]], bool]:
    return lambda seen: value not in seen


def bad_chunked(id: str, title: str, raw: bytes, section: str = CHUNK_GRAMMAR) -> None:
    chunk(id, section, SHOULD, title, chunked("/t", raw + SMUGGLED), BROKEN)


# The last chunk, then two octets that are not CRLF: a parser that skips two bytes there
# answers the request after them.
bad_chunked("CHUNK-LAST-THEN-JUNK", "`0` CRLF then `ZZ` instead of CRLF", b"5\r\nhello\r\n0\r\nZZ")
bad_chunked(
    "CHUNK-SIZE-BARE-CR", "a bare CR after the size: `5\\r;x`", b"5\r;x\r\nhello\r\n0\r\n\r\n"
)
bad_chunked(
    "CHUNK-EXTENSION-BARE-CR", "a bare CR inside an extension", b"5;a\rX\r\nhello\r\n0\r\n\r\n"
)
bad_chunked("CHUNK-SIZE-CR-CR", "a size line ending in CR CR LF", b"5\r\r\nhello\r\n0\r\n\r\n")
bad_chunked("CHUNK-SIZE-JUNK-SUFFIX", "a valid size then junk: `5x`", b"5x\r\nhello\r\n0\r\n\r\n")
bad_chunked("CHUNK-SIZE-0-JUNK", "a zero then junk: `0_2e`", b"5\r\nhello\r\n0_2e\r\n\r\n")
bad_chunked(
    "CHUNK-TRAILER-NO-COLON",
    "a trailer line without a colon",
    b"5\r\nhello\r\n0\r\nX-Trailer\r\n\r\n",
    S9112 + "7.1.2; 5; 2.2 (a field line needs a colon: SHOULD 400 and close)",
)

# Transfer-Encoding values a `str.strip()` or substring match turns into "chunked". Not
# chunked means the coding is unknown or not final: 400 (or 501) and close (RFC 9112 §6.3).
for suffix, value in [
    ("FF-BEFORE", b"\x0cchunked"),
    ("FF-AFTER", b"chunked\x0c"),
    ("NBSP-BEFORE", b"\xa0chunked"),
    ("NBSP-AFTER", b"chunked\xa0"),
    ("NEL-BEFORE", b"\x85chunked"),
    ("NEL-AFTER", b"chunked\x85"),
    ("FF-BYTE-BEFORE", b"\xffchunked"),
    ("FF-BYTE-AFTER", b"chunked\xff"),
    ("SINGLE-QUOTED", b"'chunked'"),
]:
    frame(
        f"SMUG-TE-{suffix}",
        S9112 + "6.3 (chunked is not the final coding: 400, close); 6.1",
        MUST,
        f"Transfer-Encoding: {value!r}: not chunked, so 400 or 501 and close",
        req("POST", "/", headers=[b"Transfer-Encoding: " + value], body=HELLO_CHUNKED + SMUGGLED),
        REFUSED,
    )
frame(
    "SMUG-TE-TRAILING-COMMA",
    "RFC 9110 §5.6.1 (empty list elements are ignored)",
    MUST,
    "`chunked,` is chunked: the body is framed and the next request is answered",
    req("POST", "/", headers=[b"Transfer-Encoding: chunked,"], body=HELLO_CHUNKED + AFTER),
    ok(2, check=all_of(HELLO, paths("/", "/after"))),
    requests=2,
    hazard=after_intact,
    reflect=True,
)
frame(
    "SMUG-TE-UPPER-NAME",
    S9110 + "5.1 (field names are case-insensitive)",
    MUST,
    "TRANSFER-ENCODING in capitals is Transfer-Encoding",
    req("POST", "/", headers=[b"TRANSFER-ENCODING: chunked"], body=HELLO_CHUNKED + AFTER),
    ok(2, check=all_of(HELLO, paths("/", "/after"))),
    requests=2,
    hazard=after_intact,
    reflect=True,
)
frame(
    "SMUG-CL-UPPER-NAME",
    S9110 + "5.1 (field names are case-insensitive)",
    MUST,
    "CONTENT-LENGTH in capitals is Content-Length",
    req("POST", "/", headers=[b"CONTENT-LENGTH: 5"], body=b"hello" + AFTER),
    ok(2, check=all_of(HELLO, paths("/", "/after"))),
    requests=2,
    hazard=after_intact,
    reflect=True,
)
for suffix, name, body in [
    ("CL", b"Content-Length\x85: 5", b"hello" + SMUGGLED),
    ("TE", b"Transfer-Encoding\x85: chunked", HELLO_CHUNKED + SMUGGLED),
]:
    frame(
        f"SMUG-{suffix}-NAME-HIGH-BYTE",
        S9112 + "5.1; 2.2 (field-name = token: SHOULD 400 and close)",
        SHOULD,
        f"{name.split(b':')[0]!r} is not a framing field: reject the head",
        req("POST", "/", headers=[name], body=body),
        BROKEN,
    )
frame(
    "SMUG-TE-SPLIT-CHUNKED-FIRST",
    S9112 + "6.3 (chunked, gzip: chunked not final: 400, close)",
    MUST,
    "Transfer-Encoding: chunked, then a second field: gzip",
    req(
        "POST",
        "/",
        headers=[b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"],
        body=HELLO_CHUNKED + SMUGGLED,
    ),
    REFUSED,
)
frame(
    "SMUG-TE-SPLIT-CHUNKED-LAST",
    S9112 + "6.1 (an unknown coding: SHOULD 501)",
    SHOULD,
    "Transfer-Encoding: gzip, then a second field: chunked (framed; gzip unknown)",
    req(
        "POST",
        "/",
        headers=[b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"],
        body=HELLO_CHUNKED + AFTER,
    ),
    reject(501, close=True),
    seq(codes(501), ANY, label="501, then the next request"),
    requests=2,
    hazard=after_intact,
)
HIDDEN = b"0\r\n\r\n" + SMUGGLED
frame(
    "SMUG-TE-IN-FOLD",
    S9112 + "5.2 (obs-fold: 400, or replace with SP)",
    MUST,
    "Transfer-Encoding hidden in a continuation line: reject, or it is part of X-Foo",
    req(
        "POST",
        "/",
        headers=[
            b"X-Foo: bar",
            b" Transfer-Encoding: chunked",
            b"Content-Length: %d" % len(HIDDEN),
        ],
        body=HIDDEN,
    ),
    reject(400),
    ok(check=saw(body=HIDDEN.decode()), label="unfold"),
    reflect=True,
)
for suffix, value in [
    ("NEGATIVE-ZERO", b"-0"),
    ("OCTAL-PREFIX", b"0o5"),
    ("EXPONENT", b"5e0"),
    ("LETTER-SUFFIX", b"1Z"),
    ("ZERO-TRAILING", b"0 trailing"),
]:
    frame(
        f"SMUG-CL-{suffix}",
        S9112 + "6.3 (invalid Content-Length: 400, close)",
        MUST,
        f"Content-Length: {value.decode()!r} is 400 and close",
        req("POST", "/", headers=[b"Content-Length: " + value], body=b"hello" + SMUGGLED),
        BROKEN,
    )
frame(
    "SMUG-CL-EMPTY-THEN-VALUE",
    S9112 + "6.3 (invalid Content-Length: 400, close)",
    MUST,
    "an empty Content-Length followed by Content-Length: 5",
    req("POST", "/", headers=[b"Content-Length:", b"Content-Length: 5"], body=b"hello" + SMUGGLED),
    BROKEN,
)
for method in ("HEAD", "OPTIONS"):
    frame(
        f"BODY-{method}-WITH-CL",
        S9112 + "6.3 (Content-Length frames any request); " + S9110 + "9.3.2, 9.3.7",
        MUST,
        f"{method} with a Content-Length body, then a pipelined GET",
        req(method, "/", headers=[("Content-Length", "5")], body=b"hello") + AFTER,
        seq(ANY, ANY, check=paths("/", "/after") if method == "OPTIONS" else None),
        reject(400, close=True, label="refuse a body on " + method),
        requests=2,
        hazard=after_intact,
        heads=frozenset({0}) if method == "HEAD" else frozenset(),
    )
frame(
    "BODY-PAUSE-BEFORE-BODY",
    S9112 + "6.2",
    MUST,
    "a pause between the head and its body: the body is still the body",
    (req("POST", "/p", headers=[("Content-Length", "5")]), b"hello" + AFTER),
    ok(2, check=all_of(HELLO, paths("/p", "/after"))),
    requests=2,
    hazard=after_intact,
    reflect=True,
    pause=0.3,
)

# Framing fields sent as trailers must not reach the app as if they were header fields.
for field_name, field_value in [
    ("Host", "evil.test"),
    ("Authorization", "Basic ZXZpbDpldmls"),
    ("Content-Type", "text/evil"),
]:
    chunk(
        f"CHUNK-TRAILER-{field_name.upper()}",
        S9110 + "6.5.1 (trailers are not merged into the header section)",
        MUST,
        f"{field_name} sent as a trailer does not become the request's {field_name}",
        chunked("/t", f"5\r\nhello\r\n0\r\n{field_name}: {field_value}\r\n\r\n".encode()),
        ok(
            check=all_of(
                HELLO,
                saw_header(field_name.lower(), lacks(field_value), f"no {field_value!r}"),
            )
        ),
        reject(400, close=True, label="refuse the trailer"),
        reflect=True,
    )

head(
    "HDR-END-CR-X",
    S9112 + "2.2 (a bare CR: reject, or read it as SP)",
    MUST,
    "a head ending in CRLF CR X: a bare CR is not a line end",
    b"GET / HTTP/1.1\r\nHost: example.test\r\n\rX" + SMUGGLED,
    reject(400),
    ok(label="CR as SP: one request"),
)
line(
    "RL-LF-SEPARATOR",
    S9112 + "3 (invalid request-line: SHOULD 400 or 301)",
    SHOULD,
    "LF between the request-line's parts",
    b"GET\n/\nHTTP/1.1\r\nHost: example.test\r\n\r\n",
    reject(400, 301),
)
other(
    "PROTO-EXPECT-UNKNOWN-BODY",
    S9110 + "10.1.1 (MAY 417)",
    MAY,
    "an unknown expectation on a request with a body, then a pipelined GET",
    req("POST", "/e", headers=[("Expect", "x-magic"), ("Content-Length", "5")], body=b"hello")
    + AFTER,
    seq(codes(417), ANY, label="417, body read, next answered"),
    reject(417, close=True, label="417, close"),
    seq(OK, ANY, label="ignore it"),
    requests=2,
    hazard=after_intact,
)
other(
    "PROTO-EXPECT-OBFUSCATED",
    S9110 + "10.1.1 (MAY 417)",
    MAY,
    "`Expect: 100-continuex` with a body, then a pipelined GET",
    req(
        "POST",
        "/e",
        headers=[("Expect", "100-continuex"), ("Content-Length", "5")],
        body=b"hello",
    )
    + AFTER,
    seq(codes(417), ANY, label="417, body read, next answered"),
    reject(417, close=True, label="417, close"),
    seq(OK, ANY, label="ignore it"),
    requests=2,
    hazard=after_intact,
)
other(
    "PROTO-H2-PREFACE",
    S9110 + "6.2; 15.6.6; " + S9112 + "2.3; RFC 9113 §3.4",
    SHOULD,
    "the HTTP/2 connection preface: 505 or 400, or HTTP/2 with prior knowledge",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    reject(505, 400),
    seq(close=True, label="close"),
    http2(),
    wait=2.0,
)


def _no_http1_after_101(responses: Sequence[Response]) -> str | None:
    if any(r.status == 101 for r in responses[:-1]):
        return "HTTP/1.1 responses after 101 Switching Protocols"
    return None


other(
    "PROTO-UPGRADE-H2C",
    S9110 + "7.8 (a server MAY ignore Upgrade)",
    SHOULD,
    "Upgrade: h2c: ignored (answered in HTTP/1.1), or 101 and then HTTP/2",
    req(
        headers=[
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ]
    ),
    ok(),
    seq(codes(101), label="101"),
    hazard=_no_http1_after_101,
)
other(
    "PROTO-CONNECT",
    S9110 + "9.3.6 (CONNECT is for proxies)",
    SHOULD,
    "CONNECT to an origin server is refused",
    b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
    reject(400, 403, 404, 405, 501),
)
other(
    "PROTO-BINARY-GARBAGE",
    S9112 + "2.2 (SHOULD 400 and close)",
    SHOULD,
    "binary garbage: 400 or a close, promptly",
    bytes(range(256)) * 2 + b"\r\n\r\n",
    reject(*CLIENT_ERRORS, close=True),
    seq(close=True, label="close"),
    wait=2.0,
)


def client_hello() -> bytes:
    """The first flight of a TLS client, as a browser pointed at the wrong port would send."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="example.test")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


PROMPT = 2.0


def _tls_on_plain(target: Target, _scale: float) -> str | None:
    with target.connect(PROMPT + 1) as wire:
        wire.send(client_hello())
        try:
            response = wire.read_response(timeout=PROMPT)
        except TimeoutError:
            return f"neither an answer nor a close within {PROMPT}s: it waits for a request head"
        except ResponseError:
            return None  # an answer that is no HTTP response, then a close: prompt enough
    if response is not None and response.status not in CLIENT_ERRORS:
        return f"answered {response.status} to a TLS ClientHello"
    return None


other.script(
    "PROTO-TLS-ON-PLAIN",
    S9112 + "2.2 (SHOULD 400 and close); project requirement: promptly",
    SHOULD,
    f"a TLS ClientHello on the plain port: a 4xx or a close within {PROMPT:.0f} s",
    _tls_on_plain,
    "a TLS 1.2/1.3 ClientHello for example.test, then wait <= 2 s for an answer or a close",
    reflect=False,
)

SCENARIOS = chunk.made + frame.made + head.made + line.made + other.made
