"""Header fields: Host rules, field syntax, folding, forbidden characters.

RFC 9112 sections 2.2, 3.2 and 5; RFC 9110 section 5.
"""

from __future__ import annotations

import re

from treadle_conformance.model import Check
from treadle_conformance.scenarios._kit import (
    MAY,
    MUST,
    S9110,
    S9112,
    SHOULD,
    Maker,
    ok,
    reject,
    req,
    saw_header,
)

m = Maker("headers")
GRAMMAR = S9112 + "2.2 (does not match the grammar: SHOULD 400)"
HOST = S9112 + "3.2"
BAD = reject(400)


def header(name: str, *allowed: str) -> Check:
    return saw_header(
        name, lambda vs: len(vs) == 1 and vs[0] in allowed, " or ".join(map(repr, allowed))
    )


def folded(name: str) -> Check:
    return saw_header(
        name,
        lambda vs: len(vs) == 1 and re.fullmatch(r"a[ \t]+b", vs[0]) is not None,
        "'a b' (the fold replaced by spaces)",
    )


def absent(name: str) -> Check:
    return saw_header(name, lambda vs: not vs, "no such header")


def spaced(name: str) -> Check:
    return saw_header(name, lambda vs: vs in (["a b"], ["a  b"]), "the character replaced by SP")


m("HDR-HOST-MISSING", HOST, MUST, "HTTP/1.1 without Host is 400", req(host=None), BAD)
m(
    "HDR-HOST-DUPLICATE",
    HOST,
    MUST,
    "two different Host fields",
    req(headers=[("Host", "other.test")]),
    BAD,
)
m(
    "HDR-HOST-DUPLICATE-SAME",
    HOST,
    MUST,
    "two identical Host fields",
    req(headers=[("Host", "example.test")]),
    BAD,
)
m("HDR-HOST-LIST", HOST, MUST, "a Host field holding a list", req(host="a.test, b.test"), BAD)
m("HDR-HOST-SPACE", HOST, MUST, "a Host value with a space inside", req(host="exa mple.test"), BAD)
m("HDR-HOST-USERINFO", HOST, MUST, "a Host value with userinfo", req(host="user@example.test"), BAD)
m(
    "HDR-HOST-BAD-PORT",
    HOST,
    MUST,
    "a Host value with a non-numeric port",
    req(host="example.test:http"),
    BAD,
)
m("HDR-HOST-SLASH", HOST, MUST, "a Host value with a path", req(host="example.test/path"), BAD)
m(
    "HDR-HOST-PORT",
    HOST,
    MUST,
    "Host with a port",
    req(host="example.test:8080"),
    ok(),
    reflect=True,
)
m(
    "HDR-HOST-IPV6",
    HOST,
    MUST,
    "Host with an IPv6 literal",
    req(host="[::1]:8080"),
    ok(),
    reflect=True,
)
m(
    "HDR-HOST-IPV4",
    HOST,
    MUST,
    "Host with an IPv4 address",
    req(host="127.0.0.1"),
    ok(),
    reflect=True,
)
m(
    "HDR-HOST-EMPTY",
    S9112 + "3.2, 3.3 (an empty authority: reject, or apply a configured default)",
    SHOULD,
    "an empty Host value: 400, or served with a default authority",
    req(host=""),
    ok(),
    BAD,
    reflect=True,
)
m(
    "HDR-HOST-HTTP10-MISSING",
    HOST,
    SHOULD,
    "HTTP/1.0 needs no Host",
    req(version="HTTP/1.0", host=None),
    ok(),
    reflect=True,
)
m(
    "HDR-HOST-CASE",
    S9110 + "5.1",
    MUST,
    "field names are case-insensitive (hOsT)",
    b"GET / HTTP/1.1\r\nhOsT: example.test\r\n\r\n",
    ok(),
    reflect=True,
)
m(
    "HDR-SPACE-BEFORE-COLON",
    S9112 + "5.1",
    MUST,
    "whitespace between field name and colon is 400",
    req(headers=[b"X-Test : value"]),
    BAD,
)
m(
    "HDR-TAB-BEFORE-COLON",
    S9112 + "5.1",
    MUST,
    "a tab between field name and colon is 400",
    req(headers=[b"X-Test\t: value"]),
    BAD,
)
m(
    "HDR-SPACE-BEFORE-COLON-HOST",
    S9112 + "5.1",
    MUST,
    "`Host : x` is 400",
    b"GET / HTTP/1.1\r\nHost : example.test\r\n\r\n",
    BAD,
)
m(
    "HDR-OBS-FOLD",
    S9112 + "5.2",
    MUST,
    "obs-fold: reject with 400 or replace with SP",
    req(headers=[b"X-Fold: a", b" b"]),
    BAD,
    ok(check=folded("x-fold"), label="unfold"),
    reflect=True,
)
m(
    "HDR-OBS-FOLD-TAB",
    S9112 + "5.2",
    MUST,
    "obs-fold with a tab",
    req(headers=[b"X-Fold: a", b"\tb"]),
    BAD,
    ok(check=folded("x-fold"), label="unfold"),
    reflect=True,
)
m(
    "HDR-FIRST-LINE-WHITESPACE",
    S9112 + "2.2",
    MUST,
    "whitespace before the first field: reject, or ignore that line",
    b"GET / HTTP/1.1\r\n X-Hidden: yes\r\nHost: example.test\r\n\r\n",
    BAD,
    ok(check=absent("x-hidden"), label="ignore the line"),
    reflect=True,
)
m(
    "HDR-NUL-IN-VALUE",
    S9110 + "5.5",
    MUST,
    "NUL in a value: reject, or replace with SP",
    req(headers=[b"X-Test: a\x00b"]),
    BAD,
    ok(check=spaced("x-test"), label="replace"),
    reflect=True,
)
m(
    "HDR-CR-IN-VALUE",
    S9110 + "5.5",
    MUST,
    "a bare CR in a value: reject, or replace with SP",
    req(headers=[b"X-Test: a\rb"]),
    BAD,
    ok(check=spaced("x-test"), label="replace"),
    reflect=True,
)
m(
    "HDR-LF-IN-VALUE",
    S9110 + "5.5",
    MUST,
    "a bare LF inside a value",
    req(headers=[b"X-Test: a\nb"]),
    BAD,
    ok(check=spaced("x-test"), label="replace"),
    reflect=True,
)
m(
    "HDR-EMPTY-NAME",
    GRAMMAR,
    SHOULD,
    "a field line with an empty name",
    req(headers=[b": value"]),
    BAD,
)
m(
    "HDR-NO-COLON",
    GRAMMAR,
    SHOULD,
    "a field line without a colon",
    req(headers=[b"X-Test value"]),
    BAD,
)
m(
    "HDR-NAME-BAD-CHAR",
    GRAMMAR,
    SHOULD,
    "a field name with a non-token character",
    req(headers=[b"X(Test): value"]),
    BAD,
)
m(
    "HDR-NAME-SPACE-INSIDE",
    GRAMMAR,
    SHOULD,
    "a field name with a space inside",
    req(headers=[b"X Test: value"]),
    BAD,
)
m(
    "HDR-NAME-NON-ASCII",
    GRAMMAR,
    SHOULD,
    "a field name with a non-ASCII byte",
    req(headers=[b"X-T\xe9st: value"]),
    BAD,
)
m(
    "HDR-VALUE-CTL",
    S9110 + "5.5",
    MAY,
    "a control character in a value (MAY be retained)",
    req(headers=[b"X-Test: a\x01b"]),
    BAD,
    ok(),
    reflect=True,
)
m(
    "HDR-VALUE-OBS-TEXT",
    S9110 + "5.5",
    SHOULD,
    "obs-text (a byte >= 0x80) in a value is kept",
    req(headers=[b"X-Test: caf\xe9"]),
    ok(check=header("x-test", "caf\xe9")),
    reflect=True,
)
m(
    "HDR-VALUE-OWS",
    S9112 + "5.1",
    MUST,
    "leading and trailing whitespace is not part of the value",
    req(headers=[b"X-Test: \t value \t "]),
    ok(check=header("x-test", "value")),
    reflect=True,
    fragment=True,
)
m(
    "HDR-VALUE-INNER-TAB",
    S9110 + "5.5",
    SHOULD,
    "a tab inside a value is kept",
    req(headers=[b"X-Test: a\tb"]),
    ok(check=header("x-test", "a\tb")),
    reflect=True,
)
m(
    "HDR-VALUE-EMPTY",
    S9110 + "5.5",
    SHOULD,
    "an empty value is valid",
    req(headers=[b"X-Test:"]),
    ok(check=header("x-test", "")),
    reflect=True,
)
m(
    "HDR-NO-SPACE-AFTER-COLON",
    S9112 + "5.1",
    MUST,
    "OWS after the colon is optional",
    req(headers=[b"X-Test:value"]),
    ok(check=header("x-test", "value")),
    reflect=True,
)
m(
    "HDR-REPEATED-COMBINED",
    S9110 + "5.3",
    SHOULD,
    "repeated fields reach the app combined in order",
    req(headers=[("X-Multi", "a"), ("X-Multi", "b")]),
    ok(check=header("x-multi", "a,b", "a, b")),
    reflect=True,
)
m(
    "HDR-UNDERSCORE-SPOOF",
    "RFC 3875 §4.1.18; PEP 3333",
    SHOULD,
    "X_Test must not overwrite X-Test in the WSGI environ",
    req(headers=[("X-Test", "good"), ("X_Test", "evil")]),
    ok(check=header("x-test", "good")),
    reflect=True,
)
m(
    "HDR-BARE-LF-FIELDS",
    S9112 + "2.2",
    MAY,
    "bare LF after a field line (MAY be accepted)",
    b"GET / HTTP/1.1\r\nHost: x\nX-Test: v\r\n\r\n",
    ok(),
    BAD,
    reflect=True,
)
m(
    "HDR-MANY-FIELDS-OK",
    S9110 + "5.4",
    SHOULD,
    "50 fields are fine",
    req(headers=[(f"X-F{i}", "v") for i in range(50)]),
    ok(check=header("x-f49", "v")),
    reflect=True,
    fragment=True,
)
m(
    "HDR-CONTENT-TYPE",
    "PEP 3333",
    MUST,
    "Content-Type reaches the app as CONTENT_TYPE",
    req(
        "POST",
        "/ct",
        headers=[("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")],
    ),
    ok(check=header("content-type", "text/plain; charset=utf-8")),
    reflect=True,
)
m(
    "HDR-HOST-ABSOLUTE-NO-HOST",
    HOST,
    MUST,
    "absolute-form does not excuse a missing Host",
    req(target="http://example.test/", host=None),
    BAD,
)

SCENARIOS = m.made
