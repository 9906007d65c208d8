"""Request-line forms and versions (RFC 9112 sections 2.2, 2.3, 2.5, 3)."""

from __future__ import annotations

from treadle_conformance.scenarios._kit import (
    MAY,
    MUST,
    S9110,
    S9112,
    SHOULD,
    Maker,
    all_of,
    ok,
    reject,
    req,
    saw,
    saw_header,
    saw_one_of,
)

m = Maker("request-line")
BAD_LINE = S9112 + "3 (invalid request-line: SHOULD 400 or a 301 redirect)"
BAD = reject(400)
# RFC 9112 §3: a recipient of an invalid request-line SHOULD answer 400 or redirect with 301.
BAD_RL = reject(400, 301)

m(
    "RL-ORIGIN",
    S9112 + "3.2.1",
    MUST,
    "origin-form with a query",
    req(target="/path/to?x=1&y=2"),
    ok(check=saw(path="/path/to", query="x=1&y=2", method="GET")),
    reflect=True,
    fragment=True,
)
m(
    "RL-ABSOLUTE",
    S9112 + "3.2.2",
    MUST,
    "a server MUST accept the absolute-form",
    req(target="http://example.test/abs?q=1"),
    ok(check=saw(path="/abs", query="q=1")),
    reflect=True,
    fragment=True,
)
m(
    "RL-ABSOLUTE-OTHER-HOST",
    S9112 + "3.2.2",
    MUST,
    "absolute-form with a different Host field: the app sees the target's authority as host",
    req(target="http://other.test/abs", host="example.test"),
    ok(
        check=all_of(
            saw(path="/abs"), saw_header("host", lambda vs: vs == ["other.test"], "['other.test']")
        )
    ),
    reflect=True,
)
m(
    "RL-ABSOLUTE-HTTPS",
    S9112 + "3.2.2",
    SHOULD,
    "absolute-form with the https scheme",
    req(target="https://example.test/secure"),
    ok(check=saw(path="/secure")),
    reflect=True,
)
m(
    "RL-ASTERISK-OPTIONS",
    S9112 + "3.2.4; " + S9110 + "9.1 (OPTIONS is optional)",
    MUST,
    "OPTIONS * (asterisk-form) is a valid request: 2xx, or 405/501 for a server without OPTIONS",
    req("OPTIONS", "*"),
    reject(200, 204, label="2xx"),
    reject(405, 501, label="no OPTIONS"),
    reflect=True,
)
m(
    "RL-ASTERISK-GET",
    S9112 + "3.2.4",
    SHOULD,
    "asterisk-form is only for OPTIONS",
    req("GET", "*"),
    BAD_RL,
)
m(
    "RL-AUTHORITY-GET",
    S9112 + "3.2.3",
    SHOULD,
    "authority-form is only for CONNECT",
    req("GET", "example.test:80"),
    BAD_RL,
)
m(
    "RL-HTTP10",
    S9110 + "2.5; " + S9112 + "2.3",
    MUST,
    "an HTTP/1.0 request is served (a proxy in front may forward it as HTTP/1.1)",
    req(version="HTTP/1.0", host=None),
    ok(check=saw_one_of("protocol", "HTTP/1.0", "HTTP/1.1")),
    reflect=True,
    fragment=True,
)
m(
    "RL-HTTP11-RESPONSE-VERSION",
    S9110 + "2.5",
    SHOULD,
    "the response to an HTTP/1.1 request says HTTP/1.1",
    req(),
    ok(check=lambda rs: None if rs[0].version == "HTTP/1.1" else f"answered {rs[0].version}"),
    reflect=True,
)
m(
    "RL-HTTP12",
    S9110 + "2.5",
    SHOULD,
    "a higher minor version is served as HTTP/1.1",
    req(version="HTTP/1.2"),
    ok(),
    reflect=True,
)
m(
    "RL-HTTP20",
    S9110 + "6.2, 15.6.6",
    SHOULD,
    "HTTP/2.0 on an HTTP/1.1 wire is refused",
    req(version="HTTP/2.0"),
    reject(505, 400),
)
m(
    "RL-HTTP20-505",
    S9110 + "15.6.6",
    MAY,
    "HTTP/2.0 is answered 505",
    req(version="HTTP/2.0"),
    reject(505),
)
m(
    "RL-HTTP30",
    S9110 + "6.2, 15.6.6",
    SHOULD,
    "HTTP/3.0 is refused",
    req(version="HTTP/3.0"),
    reject(505, 400),
)
m(
    "RL-HTTP09",
    S9112 + "2.3, 3",
    SHOULD,
    "an HTTP/0.9-style request line (no version)",
    b"GET /\r\n\r\n",
    reject(400, 505),
    reject(400, 505, close=True, label="close"),
)
m(
    "RL-VERSION-LOWER",
    S9112 + "2.3",
    SHOULD,
    "HTTP-name is case-sensitive",
    req(version="http/1.1"),
    reject(400, 505),
)
m(
    "RL-VERSION-NODOT",
    BAD_LINE,
    SHOULD,
    "version without a dot",
    req(version="HTTP/11"),
    reject(400, 301, 505),
)
m(
    "RL-VERSION-TWO-DIGITS",
    BAD_LINE,
    SHOULD,
    "version with two minor digits",
    req(version="HTTP/1.10"),
    reject(400, 301, 505),
)
m(
    "RL-VERSION-SPACE",
    BAD_LINE,
    SHOULD,
    "space inside the version",
    b"GET / HTTP/ 1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-VERSION-GARBAGE",
    BAD_LINE,
    SHOULD,
    "version that is not HTTP",
    req(version="FOO/1.1"),
    reject(400, 301, 505),
)
m(
    "RL-METHOD-BAD-CHAR",
    BAD_LINE,
    SHOULD,
    "method with a non-token character",
    req(method="GE(T"),
    BAD_RL,
)
m(
    "RL-METHOD-EMPTY",
    BAD_LINE,
    SHOULD,
    "request line starting with a space",
    b" / HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-METHOD-CASE",
    S9110 + "9.1",
    MUST,
    "methods are case-sensitive: `get` is not GET",
    req(method="get"),
    ok(check=saw(method="get")),
    reject(501, 405, 400, label="refuse"),
    reflect=True,
)
m(
    "RL-METHOD-EXTENSION",
    S9110 + "9.1",
    SHOULD,
    "an extension method reaches the app or gets 501",
    req(method="PURGE"),
    ok(check=saw(method="PURGE")),
    reject(501, 405, label="refuse"),
    reflect=True,
)
m(
    "RL-DOUBLE-SPACE",
    S9112 + "3",
    MAY,
    "two spaces between method and target (MAY parse on whitespace)",
    b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    ok(check=saw(path="/")),
    BAD,
    reflect=True,
)
m(
    "RL-TAB-SEPARATOR",
    S9112 + "3",
    MAY,
    "tabs separating the request-line parts",
    b"GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n",
    ok(check=saw(path="/")),
    BAD,
    reflect=True,
)
m(
    "RL-TRAILING-SPACE",
    S9112 + "3",
    MAY,
    "a space after the version",
    b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
    ok(),
    BAD,
    reflect=True,
)
m(
    "RL-TARGET-SPACE",
    BAD_LINE,
    SHOULD,
    "a space inside the target",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-TARGET-CTL",
    BAD_LINE,
    SHOULD,
    "a control character in the target",
    b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-TARGET-DEL",
    BAD_LINE,
    SHOULD,
    "DEL in the target",
    b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-TARGET-NUL",
    BAD_LINE,
    SHOULD,
    "NUL in the target",
    b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-TARGET-HIGH-BYTE",
    BAD_LINE,
    SHOULD,
    "a non-ASCII byte in the target",
    b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-TARGET-RELATIVE",
    BAD_LINE,
    SHOULD,
    "a target that is neither origin- nor absolute-form",
    req(target="relative/path"),
    BAD_RL,
)
m(
    "RL-TARGET-FRAGMENT",
    BAD_LINE,
    SHOULD,
    "a fragment (#) is not part of a request-target",
    req(target="/page#frag"),
    BAD_RL,
)
m(
    "RL-TARGET-PERCENT",
    S9112 + "3.2.1; PEP 3333",
    MUST,
    "percent-encoded path is decoded for the app",
    req(target="/a%20b/%41"),
    ok(check=saw(path="/a b/A")),
    reflect=True,
)
m(
    "RL-QUERY-RAW",
    S9112 + "3.2.1; PEP 3333",
    MUST,
    "the query string reaches the app unchanged",
    req(target="/q?a=%20&b=c+d&&e"),
    ok(check=saw(query="a=%20&b=c+d&&e")),
    reflect=True,
)
m(
    "RL-LEADING-CRLF",
    S9112 + "2.2",
    SHOULD,
    "an empty line before the request-line is ignored",
    b"\r\n" + req(target="/after-crlf"),
    ok(check=saw(path="/after-crlf")),
    reflect=True,
)
m(
    "RL-BARE-LF",
    S9112 + "2.2",
    MAY,
    "bare LF line endings (MAY be accepted)",
    b"GET /lf HTTP/1.1\nHost: x\n\n",
    ok(check=saw(path="/lf")),
    BAD,
    reflect=True,
)
m(
    "RL-BARE-CR",
    S9112 + "2.2",
    MUST,
    "a bare CR is invalid (or read as SP, which still breaks the line)",
    b"GET / HTTP/1.1\rHost: x\r\n\r\n",
    BAD,
)
m(
    "RL-EMPTY-METHOD-LINE",
    BAD_LINE,
    SHOULD,
    "a request line of only spaces",
    b"   \r\nHost: x\r\n\r\n",
    BAD_RL,
)
m(
    "RL-MISSING-TARGET",
    BAD_LINE,
    SHOULD,
    "no target",
    b"GET HTTP/1.1\r\nHost: x\r\n\r\n",
    reject(400, 301, 505),
)

SCENARIOS = m.made
