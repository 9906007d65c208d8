"""What the server writes: bodies that must be absent, framing, and apps that misbehave.

RFC 9110 9.3.2 / 15.3.5 / 15.4.5 (no content for HEAD, 204, 304), RFC 9112 6 (framing), RFC 9110
5.5 (no CR/LF/NUL in fields), PEP 3333 (the server's duties toward a failing app). Every response
is read strictly, and a pipelined request after each one shows stray bytes as a protocol error.
"""

from __future__ import annotations

from collections.abc import Sequence

from treadle_conformance.model import AppCheck, Check
from treadle_conformance.scenarios._kit import (
    MUST,
    OK,
    S9110,
    S9112,
    SHOULD,
    Maker,
    codes,
    no_header,
    ok,
    paths,
    reject,
    req,
    seq,
)
from treadle_conformance.wire import Response

m = Maker("responses")
AFTER = req(target="/after")
SERVER_ERROR = codes(500)


def _after(rs: Sequence[Response]) -> str | None:
    return paths("/after")(rs[-1:])


after = AppCheck(_after)


def body_is(data: bytes) -> Check:
    def check(rs: Sequence[Response]) -> str | None:
        got = rs[0].body
        return None if got == data else f"body of {len(got)} bytes, expected {len(data)}"

    return check


def stream_length(rs: Sequence[Response]) -> str | None:
    return None if len(rs[0].body) == 512 * 4097 else f"body of {len(rs[0].body)} bytes"


def head_length(size: int) -> Check:
    def check(rs: Sequence[Response]) -> str | None:
        value = rs[0].header("Content-Length")
        if value is None or value == str(size):
            return None
        return f"HEAD answered Content-Length {value}, GET would send {size}"

    return check


m(
    "RESP-HEAD-NO-BODY",
    S9110 + "9.3.2",
    MUST,
    "no body after a HEAD response",
    req("HEAD", "/") + AFTER,
    seq(OK, OK, check=after),
    heads=frozenset({0}),
    reflect=True,
    fragment=True,
)
m(
    "RESP-HEAD-STREAM",
    S9110 + "9.3.2",
    MUST,
    "no chunked body after HEAD of a streamed route",
    req("HEAD", "/_/stream?n=5") + AFTER,
    seq(OK, OK, check=after),
    heads=frozenset({0}),
    reflect=True,
)
m(
    "RESP-HEAD-CONTENT-LENGTH",
    S9110 + "8.6",
    MUST,
    "a Content-Length on HEAD equals GET's",
    req("HEAD", "/_/big?size=1000") + AFTER,
    seq(OK, OK, check=head_length(1000)),
    heads=frozenset({0}),
    reflect=True,
)
m(
    "RESP-HEAD-HTTP10",
    S9110 + "9.3.2",
    MUST,
    "HEAD on HTTP/1.0: headers only, then close",
    req("HEAD", "/", version="HTTP/1.0", host=None),
    ok(close=True),
    heads=frozenset({0}),
    reflect=True,
)
for code, section in ((204, "15.3.5"), (304, "15.4.5")):
    m(
        f"RESP-{code}-NO-BODY",
        S9110 + section,
        MUST,
        f"no body on a {code}, even when the app writes one",
        req(target=f"/_/status?code={code}") + AFTER,
        seq(codes(code), OK, check=after),
        seq(codes(code), close=True, label="close"),
        reflect=True,
        fragment=True,
    )
m(
    "RESP-204-HTTP10",
    S9110 + "15.3.5",
    MUST,
    "a 204 to HTTP/1.0 has no body",
    req(target="/_/status?code=204", version="HTTP/1.0", host=None),
    seq(codes(204)),
    reflect=True,
)
m(
    "RESP-STATUS-CHOSEN",
    S9110 + "15",
    MUST,
    "an app's status code reaches the wire",
    req(target="/_/status?code=418"),
    seq(codes(418)),
    reflect=True,
)
m(
    "RESP-BIG-LENGTH",
    S9112 + "6.2",
    MUST,
    "a 4 MiB response with Content-Length",
    req(target="/_/big?size=4194304"),
    ok(check=body_is(b"x" * 4194304)),
    reflect=True,
)
m(
    "RESP-BIG-STREAM",
    S9112 + "7.1",
    MUST,
    "a 2 MiB streamed response",
    req(target="/_/stream?n=512&size=4096") + AFTER,
    seq(OK, OK, check=stream_length),
    seq(OK, close=True, check=stream_length, label="close"),
    reflect=True,
)
m(
    "RESP-WRITE-CALLABLE",
    "PEP 3333",
    MUST,
    "bytes from write() then the iterable, in order",
    req(target="/_/write") + AFTER,
    seq(OK, OK, check=body_is(b"hello world")),
    reflect=True,
)
m(
    "RESP-NO-TWO-RESPONSES",
    S9112 + "9.3.2",
    MUST,
    "exactly one response per request",
    req(target="/one"),
    ok(check=paths("/one")),
    reflect=True,
)
for route, title in [
    ("header-crlf", "a header value with CRLF"),
    ("header-lf", "a header value with a bare LF"),
    ("header-name", "a header name with CRLF"),
    ("status-crlf", "a status line with CRLF"),
]:
    m(
        f"RESP-APP-{route.upper()}",
        S9110 + "5.5; " + S9112 + "5",
        MUST,
        f"{title} from the app never reaches the wire raw",
        req(target=f"/_/bad/{route}"),
        seq(frozenset(range(200, 600)), check=no_header("X-Injected")),
        seq(close=True, label="close"),
        reflect=True,
    )
m(
    "RESP-APP-RAISES",
    "PEP 3333; RFC 9110 §15.6.1",
    SHOULD,
    "an app that raises before starting: 500",
    req(target="/_/bad/raise-before") + AFTER,
    seq(SERVER_ERROR, OK, check=after),
    seq(SERVER_ERROR, close=True, label="close"),
    reflect=True,
)
m(
    "RESP-APP-RAISES-MIDWAY",
    S9112 + "6.3, 7.1",
    MUST,
    "an app that fails mid-body: the response is visibly cut short and the connection closed",
    req(target="/_/bad/raise-after") + AFTER,
    seq(OK, incomplete=True, close=True),
    reflect=True,
)
m(
    "RESP-APP-SHORT-LENGTH",
    S9112 + "6.3",
    MUST,
    "an app that writes less than its Content-Length: the connection is closed",
    req(target="/_/bad/cl-short") + AFTER,
    seq(OK, incomplete=True, close=True),
    seq(SERVER_ERROR, close=True, label="500"),
    reflect=True,
)
m(
    "RESP-APP-LONG-LENGTH",
    S9112 + "6.2",
    MUST,
    "an app that writes more than its Content-Length: nothing past it reaches the wire",
    req(target="/_/bad/cl-long") + AFTER,
    seq(OK, OK, check=after, label="cut"),
    seq(OK, close=True, label="cut, close"),
    seq(SERVER_ERROR, close=True, label="500"),
    seq(SERVER_ERROR, OK, check=after, label="500, continue"),
    reflect=True,
)
m(
    "RESP-APP-NO-START",
    "PEP 3333",
    SHOULD,
    "an app that never calls start_response: 500",
    req(target="/_/bad/no-start"),
    reject(500),
    seq(close=True, label="close"),
    reflect=True,
)
m(
    "RESP-APP-DOUBLE-START",
    "PEP 3333",
    SHOULD,
    "start_response twice without exc_info: an error",
    req(target="/_/bad/double-start"),
    reject(500),
    seq(close=True, label="close"),
    reflect=True,
)
m(
    "RESP-404-FRAMED",
    S9112 + "6",
    MUST,
    "an error response is framed so the next one parses",
    req(target="/_/no-such-route") + AFTER,
    seq(codes(404), OK, check=after),
    reflect=True,
)
m(
    "RESP-400-FRAMED",
    S9112 + "6",
    SHOULD,
    "a 400 carries Content-Length or closes",
    req(headers=[b"X-Test : v"]),
    reject(
        400,
        check=lambda rs: (
            None if rs[0].framing in ("length", "chunked", "close") else f"framing {rs[0].framing}"
        ),
    ),
)

SCENARIOS = m.made
