"""Persistence, pipelining, `Connection` and `Expect: 100-continue`.

RFC 9112 section 9; RFC 9110 sections 7.6.1 and 10.1.1. The RFC lets a server close a
persistent connection at any time, so strictly it may answer the first of several pipelined
requests and close; the pipelining scenarios hold servers to what clients rely on, every request
answered in order, and the level names the ordering and framing rules that are MUSTs.
"""

from __future__ import annotations

from collections.abc import Sequence

from treadle_conformance.model import Script
from treadle_conformance.scenarios._kit import (
    ANY,
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
    later,
    ok,
    paths,
    post,
    reject,
    req,
    saw,
    seq,
)
from treadle_conformance.target import Target
from treadle_conformance.wire import Response

pipe = Maker("pipelining")
conn = Maker("connection")
expect = Maker("expect")
PIPE = S9112 + "9.3.2"
CLOSE = S9112 + "9.6"


def _said_close(responses: Sequence[Response]) -> str | None:
    return None if responses[-1].signals_close() else "closed without saying `close` first"


# RFC 9112 §9.3: a server without persistent connections sends `close` in every response; it
# then answers the first of several pipelined requests and closes, which breaks no MUST.
NO_PERSISTENCE = seq(OK, close=True, check=_said_close, label="no persistence: answer, close")


def get(path: str, *headers: tuple[str, str] | bytes, version: str = "HTTP/1.1") -> bytes:
    return req(
        target=path,
        version=version,
        headers=headers,
        host=None if version == "HTTP/1.0" else "example.test",
    )


pipe(
    "PIPE-TWO",
    PIPE,
    MUST,
    "two requests in one write, answered in order",
    get("/1") + get("/2"),
    ok(2, check=paths("/1", "/2")),
    NO_PERSISTENCE,
    reflect=True,
    fragment=True,
)
pipe(
    "PIPE-TEN",
    PIPE,
    MUST,
    "ten requests in one write, answered in order",
    b"".join(get(f"/{i}") for i in range(10)),
    ok(10, check=paths(*(f"/{i}" for i in range(10)))),
    NO_PERSISTENCE,
    reflect=True,
    fragment=True,
)
pipe(
    "PIPE-AFTER-CL-BODY",
    PIPE,
    MUST,
    "a request right after a Content-Length body",
    post("/p", b"hello") + get("/after"),
    ok(2, check=all_of(saw(body="hello"), paths("/p", "/after"))),
    NO_PERSISTENCE,
    reflect=True,
    fragment=True,
)
pipe(
    "PIPE-AFTER-CHUNKED",
    PIPE,
    MUST,
    "a request right after a chunked body",
    chunked("/c", b"5\r\nhello\r\n0\r\n\r\n") + get("/after"),
    ok(2, check=all_of(saw(body="hello"), paths("/c", "/after"))),
    NO_PERSISTENCE,
    reflect=True,
    fragment=True,
)
pipe(
    "PIPE-AFTER-TRAILERS",
    PIPE,
    MUST,
    "a request right after a chunked body with trailers",
    chunked("/c", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n") + get("/after"),
    ok(2, check=paths("/c", "/after")),
    NO_PERSISTENCE,
    reflect=True,
    fragment=True,
)
pipe(
    "PIPE-HEAD-THEN-GET",
    PIPE + "; RFC 9110 §9.3.2",
    MUST,
    "HEAD then GET: no body on the HEAD answer",
    req("HEAD", "/h") + get("/g"),
    ok(2, check=later(paths("/g"))),
    NO_PERSISTENCE,
    reflect=True,
    heads=frozenset({0}),
    fragment=True,
)
pipe(
    "PIPE-AFTER-ERROR",
    PIPE,
    MUST,
    "a request after a 400: answered, or the connection closed",
    req(headers=[b"X-Test : v"]) + get("/after"),
    reject(400, close=True, label="close"),
    seq(codes(400), OK, check=later(paths("/after")), label="continue"),
    reflect=True,
)
pipe(
    "PIPE-AFTER-SMUGGLING-ERROR",
    PIPE + "; 6.1",
    MUST,
    "nothing is answered after CL+TE is refused",
    req(
        "POST",
        "/",
        headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        body=b"0\r\n\r\n",
    )
    + get("/after"),
    reject(400, close=True),
    ok(close=True, label="chunked, then close"),
    reflect=True,
)
pipe(
    "PIPE-UNREAD-BODY",
    S9112 + "9.3",
    MUST,
    "the app ignores the body; the next request still parses",
    post("/_/ignore-body", b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n") + get("/after"),
    seq(OK, OK, check=later(paths("/after")), label="discard the body"),
    ok(close=True, label="close"),
    reflect=True,
)
pipe(
    "PIPE-PARTLY-READ-CHUNKED",
    S9112 + "9.3",
    MUST,
    "the app reads 3 bytes of a chunked body; the next request still parses",
    chunked("/_/read-some", b"a\r\n0123456789\r\n0\r\n\r\n") + get("/after"),
    seq(OK, OK, check=later(paths("/after")), label="discard the rest"),
    ok(close=True, label="close"),
    reflect=True,
)
pipe(
    "PIPE-CLOSE-STOPS",
    CLOSE,
    MUST,
    "nothing after a request with Connection: close is processed, whatever its status",
    get("/1", ("Connection", "close")) + get("/2"),
    seq(ANY, close=True),
)
pipe(
    "PIPE-HTTP10-KEEPALIVE",
    S9112 + "9.3",
    MUST,
    "HTTP/1.0 keep-alive then HTTP/1.1",
    get("/1", ("Connection", "keep-alive"), version="HTTP/1.0") + get("/2"),
    ok(2, check=paths("/1", "/2")),
    ok(close=True, check=paths("/1"), label="close"),
    NO_PERSISTENCE,
    reflect=True,
)


def has_close(responses: Sequence[Response]) -> str | None:
    return None if responses[-1].has_token("Connection", "close") else "no `Connection: close` sent"


def date(responses: Sequence[Response]) -> str | None:
    return None if responses[0].header("Date") else "no Date header"


def not_chunked(responses: Sequence[Response]) -> str | None:
    if responses[0].header("Transfer-Encoding"):
        return "Transfer-Encoding in a response to HTTP/1.0"
    return None


def stream_body(n: int, size: int) -> str:
    return "".join((f"{i:06d}" + "." * size)[:size] + "\n" for i in range(n))


def keep_alive_header(responses: Sequence[Response]) -> str | None:
    if responses[0].has_token("Connection", "keep-alive"):
        return None
    return "an HTTP/1.0 connection kept open without `Connection: keep-alive`"


conn(
    "CONN-HTTP11-PERSISTS",
    S9112 + "9.3",
    SHOULD,
    "HTTP/1.1 persists by default",
    get("/"),
    ok(close=False),
    reflect=True,
)
conn(
    "CONN-CLOSE",
    CLOSE,
    MUST,
    "Connection: close closes after the response",
    get("/", ("Connection", "close")),
    ok(close=True),
    reflect=True,
    fragment=True,
)
conn(
    "CONN-CLOSE-ECHOED",
    CLOSE,
    SHOULD,
    "the response to Connection: close says close",
    get("/", ("Connection", "close")),
    ok(close=True, check=has_close),
    reflect=True,
)
conn(
    "CONN-CLOSE-CASE",
    CLOSE + "; RFC 9110 §7.6.1",
    MUST,
    "connection options are case-insensitive",
    get("/", ("Connection", "CLOSE")),
    ok(close=True),
    reflect=True,
)
conn(
    "CONN-CLOSE-IN-LIST",
    CLOSE + "; RFC 9110 §7.6.1",
    MUST,
    "close among other options",
    get("/", ("Connection", "x-foo, close")),
    ok(close=True),
    reflect=True,
)
conn(
    "CONN-CLOSE-SECOND-FIELD",
    CLOSE,
    MUST,
    "close in a second Connection field",
    get("/", ("Connection", "x-foo"), ("Connection", "close")),
    ok(close=True),
    reflect=True,
)
conn(
    "CONN-HTTP10-CLOSES",
    S9112 + "9.3",
    SHOULD,
    "HTTP/1.0 without keep-alive closes",
    get("/", version="HTTP/1.0"),
    ok(close=True),
    reflect=True,
)
conn(
    "CONN-HTTP10-KEEPALIVE",
    S9112 + "9.3; C.2.2",
    SHOULD,
    "HTTP/1.0 keep-alive: close, or stay open and say keep-alive",
    get("/", ("Connection", "keep-alive"), version="HTTP/1.0"),
    ok(close=True, label="close"),
    ok(close=False, check=keep_alive_header, label="persist"),
    reflect=True,
)
conn(
    "CONN-HTTP10-NO-CHUNKED",
    S9112 + "6.1",
    MUST,
    "no Transfer-Encoding in a response to HTTP/1.0",
    get("/_/stream?n=5", version="HTTP/1.0"),
    ok(check=not_chunked),
    reflect=True,
)
conn(
    "CONN-HTTP10-STREAM-BODY",
    S9112 + "6.1, 6.3",
    MUST,
    "a streamed body to HTTP/1.0 arrives whole",
    get("/_/stream?n=20&size=10", version="HTTP/1.0"),
    ok(
        close=True,
        check=lambda rs: None if rs[0].body.decode() == stream_body(20, 10) else "body differs",
    ),
    reflect=True,
)
conn(
    "CONN-KEEPALIVE-EXPLICIT",
    S9112 + "9.3",
    SHOULD,
    "Connection: keep-alive on HTTP/1.1 persists",
    get("/", ("Connection", "keep-alive")),
    ok(close=False),
    reflect=True,
)
conn(
    "CONN-DATE",
    S9110 + "6.6.1",
    MUST,
    "a 2xx response carries Date",
    get("/"),
    ok(check=date),
    reflect=True,
)
conn(
    "CONN-DATE-ON-400",
    S9110 + "6.6.1",
    MUST,
    "a 4xx response carries Date",
    req(headers=[b"X-Test : v"]),
    reject(400, check=date),
)
conn(
    "CONN-HALF-CLOSE",
    CLOSE,
    SHOULD,
    "a request followed by a half-close is still answered",
    get("/half", ("Connection", "close")),
    ok(close=True, check=paths("/half")),
    reflect=True,
    shutdown_write=True,
)
conn(
    "CONN-HTTP11-STREAM",
    S9112 + "7.1",
    MUST,
    "a streamed response is validly framed",
    get("/_/stream?n=50&size=100"),
    ok(check=lambda rs: None if rs[0].body.decode() == stream_body(50, 100) else "body differs"),
    reflect=True,
)


def _continue_script(version: str) -> Script:
    def script(target: Target, _scale: float) -> str | None:
        head = (
            f"POST /expect {version}\r\nHost: example.test\r\nExpect: 100-continue\r\n"
            "Content-Length: 5\r\n\r\n"
        ).encode()
        with target.connect(3.0) as wire:
            wire.send(head)
            early = wire.wait_readable(1.0)
            wire.send(b"hello")
            response = wire.read_response()
        if response is None:
            return "no response"
        if version == "HTTP/1.0" and response.interim:
            return f"sent {list(response.interim)} to an HTTP/1.0 request"
        if version == "HTTP/1.1" and not early:
            return "neither 100 Continue nor a final status within 1 s of the head"
        if not target.accepted(response):
            return f"final status {response.status}"
        if not target.saw_body(response, "hello"):
            return "the app did not see the body"
        return None

    return script


SCRIPT_TEXT = (
    "POST /expect with Expect: 100-continue and Content-Length: 5; wait <= 1 s; send `hello`"
)
expect.script(
    "EXPECT-100-CONTINUE",
    S9110 + "10.1.1",
    MUST,
    "100 Continue (or a final status) comes without the body being sent",
    _continue_script("HTTP/1.1"),
    SCRIPT_TEXT,
)
expect.script(
    "EXPECT-100-HTTP10",
    S9110 + "10.1.1",
    MUST,
    "no 100 Continue to an HTTP/1.0 request",
    _continue_script("HTTP/1.0"),
    SCRIPT_TEXT + " (HTTP/1.0)",
)
EXPECT_HEAD = [("Expect", "100-continue"), ("Content-Length", "5")]
expect(
    "EXPECT-100-WITH-BODY",
    S9110 + "10.1.1",
    MUST,
    "Expect with the body already sent",
    req("POST", "/e", headers=EXPECT_HEAD, body=b"hello"),
    ok(check=saw(body="hello")),
    reflect=True,
    fragment=True,
)
expect(
    "EXPECT-100-CASE",
    S9110 + "10.1.1",
    MUST,
    "the expectation is case-insensitive",
    req("POST", "/e", headers=[("Expect", "100-Continue"), ("Content-Length", "5")], body=b"hello"),
    ok(check=saw(body="hello")),
    reflect=True,
)
expect(
    "EXPECT-100-UNREAD-BODY",
    S9110 + "10.1.1",
    MUST,
    "Expect to an app that ignores the body, then a pipelined request",
    req("POST", "/_/ignore-body", headers=EXPECT_HEAD, body=b"hello") + get("/after"),
    seq(OK, OK, check=later(paths("/after")), label="discard"),
    ok(close=True, label="close"),
    reflect=True,
)
expect(
    "EXPECT-UNKNOWN",
    S9110 + "10.1.1",
    MAY,
    "an unknown expectation MAY get 417",
    req(headers=[("Expect", "x-magic")]),
    reject(417),
    ok(),
    reflect=True,
)
expect(
    "EXPECT-100-GET-NO-BODY",
    S9110 + "10.1.1",
    MUST,
    "Expect on a request without a body",
    req(headers=[("Expect", "100-continue")]),
    ok(check=saw(body_length=0)),
    reflect=True,
)

SCENARIOS = pipe.made + conn.made + expect.made
