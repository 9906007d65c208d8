"""What a proxy does with a backend's bad responses (proxy mode only; see `splicing`).

Each scenario asks the harness's backend for one of the response-splitting shapes, with a
complete extra response hidden where a wrong framing leaves it. The client side is judged as
usual (the right status, this request's own answer: `X-Backend-Path`), and then the runner
sends the sentinel on the same connection and `FOLLOW_UPS` requests on fresh connections:
the extra response reaching any of them, or any of them getting another request's answer, is
unsafe (RFC 9112 §6.3: a client MUST NOT forward extra data as a separate response).
"""

from __future__ import annotations

from collections.abc import Sequence

from treadle_conformance.model import Check
from treadle_conformance.scenarios._kit import MUST, S9110, S9112, Maker, ok, reject, req
from treadle_conformance.splicing import FOLLOW_UPS, PREFIX, SPLICED, answered_for, spliced
from treadle_conformance.wire import Response

up = Maker("upstream")
EXTRA_DATA = S9112 + "6.3 (a client MUST NOT forward extra data as a separate response)"
BAD_GATEWAY = reject(502, label="502")


def own(kind: str, body: bytes | None = None) -> Check:
    """The (first) response is the backend's answer to this request, with this body if given."""
    path = PREFIX + kind

    def check(responses: Sequence[Response]) -> str | None:
        if not responses:
            return "no response"
        why = answered_for(path, responses[0])
        if why is None and body is not None and responses[0].body != body:
            why = (
                f"a body of {len(responses[0].body)} bytes, the chunked body decodes to {len(body)}"
            )
        return why

    return check


def ask(kind: str, method: str = "GET", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    return req(method, PREFIX + kind, headers=headers)


up(
    "PROXY-RESP-EXTRA",
    EXTRA_DATA,
    MUST,
    "a second, unsolicited response after the first (or a body past its Content-Length)",
    ask("extra"),
    ok(check=own("extra")),
    BAD_GATEWAY,
    hazard=spliced,
    follow=FOLLOW_UPS,
)
up(
    "PROXY-RESP-HEAD-BODY",
    EXTRA_DATA + "; RFC 9110 §9.3.2 (a response to HEAD has no content)",
    MUST,
    "a body after the head of a HEAD response is not a response",
    ask("head-body", "HEAD"),
    ok(check=own("head-body")),
    BAD_GATEWAY,
    heads=frozenset({0}),
    hazard=spliced,
    follow=FOLLOW_UPS,
)
# A body after a head that has none: 204 and 304 end at the end of their head.
for status, section, conditional in (
    (204, "15.3.5", ()),
    (304, "15.4.5", (("If-None-Match", '"x"'),)),
):
    up(
        f"PROXY-RESP-{status}-BODY",
        EXTRA_DATA + f"; RFC 9110 §{section} ({status} ends at the end of its head)",
        MUST,
        f"a body after a {status} head is not a response",
        ask(f"{status}-body", headers=conditional),
        reject(status, check=own(f"{status}-body"), label=str(status)),
        BAD_GATEWAY,
        hazard=spliced,
        follow=FOLLOW_UPS,
    )
up(
    "PROXY-RESP-CL-TE",
    S9112 + "6.3 (Transfer-Encoding overrides Content-Length; an intermediary MUST remove "
    "the Content-Length before forwarding)",
    MUST,
    "a response with Transfer-Encoding and a shorter Content-Length is framed by its chunks",
    ask("cl-te"),
    ok(check=own("cl-te", body=SPLICED)),
    BAD_GATEWAY,
    hazard=spliced,
    follow=FOLLOW_UPS,
)
up(
    "PROXY-RESP-CL-DIFFERENT",
    S9112 + "6.3 (an invalid Content-Length in a response: the proxy MUST close the "
    "connection to the server and answer 502)",
    MUST,
    "a response with two different Content-Length values is a 502",
    ask("cl-different"),
    BAD_GATEWAY,
    hazard=spliced,
    follow=FOLLOW_UPS,
)
up(
    "PROXY-RESP-INTERIM",
    S9110 + "15.2 (a client MUST parse 1xx responses before the final one)",
    MUST,
    "an interim 100 before the final response: the final one is this request's",
    ask("interim"),
    ok(check=own("interim")),
    hazard=spliced,
    follow=FOLLOW_UPS,
)

SCENARIOS = tuple(up.made)
