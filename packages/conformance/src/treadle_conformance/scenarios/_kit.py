"""Small builders that keep the catalogue readable: requests as bytes, outcomes, and checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from treadle_conformance.model import AppCheck, Check, Expect, Level, Scenario, Script
from treadle_conformance.wire import Response

MUST, SHOULD, MAY = Level.MUST, Level.SHOULD, Level.MAY
S9112 = "RFC 9112 §"
S9110 = "RFC 9110 §"

Headers = Sequence[tuple[str, str] | bytes]


def req(
    method: str = "GET",
    target: str = "/",
    version: str = "HTTP/1.1",
    headers: Headers = (),
    body: bytes = b"",
    host: str | None = "example.test",
) -> bytes:
    """A request as bytes; headers given as bytes are written verbatim (with CRLF added)."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if host is not None:
        lines.append(f"Host: {host}".encode())
    for h in headers:
        lines.append(h if isinstance(h, bytes) else f"{h[0]}: {h[1]}".encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(target: str, body: bytes, headers: Headers = (), version: str = "HTTP/1.1") -> bytes:
    return req("POST", target, version, [("Content-Length", str(len(body))), *headers], body)


def chunked(
    target: str, raw_body: bytes, headers: Headers = (), version: str = "HTTP/1.1"
) -> bytes:
    return req("POST", target, version, [("Transfer-Encoding", "chunked"), *headers], raw_body)


def codes(*values: int) -> frozenset[int]:
    return frozenset(values)


CLIENT_ERRORS = frozenset(range(400, 500))
OK = codes(200)
ANY = frozenset(range(100, 600))


def ok(
    n: int = 1, close: bool | None = None, check: Check | None = None, label: str = ""
) -> Expect:
    return Expect(tuple(OK for _ in range(n)), close=close, check=check, label=label or "accept")


def reject(
    *statuses: int, close: bool | None = None, check: Check | None = None, label: str = ""
) -> Expect:
    allowed = frozenset(statuses) if statuses else codes(400)
    return Expect((allowed,), close=close, check=check, label=label or "reject")


def http2(label: str = "HTTP/2") -> Expect:
    """The server answers the HTTP/2 preface in HTTP/2: a SETTINGS frame (RFC 9113 §3.4)."""
    return Expect((), http2=True, label=label)


def seq(
    *statuses: frozenset[int],
    close: bool | None = None,
    check: Check | None = None,
    label: str = "",
    incomplete: bool = False,
) -> Expect:
    return Expect(tuple(statuses), close=close, check=check, label=label, incomplete=incomplete)


def _json(responses: Sequence[Response], i: int) -> dict[str, Any] | str:
    if i >= len(responses):
        return f"no response {i + 1}"
    data = responses[i].json()
    if data is None:
        return f"response {i + 1} is not the reflection app's JSON: {responses[i].body[:100]!r}"
    return data


def saw(i: int = 0, **fields: object) -> Check:
    """The reflection app, for response i, saw these values (method, path, query, body, ...)."""

    def check(responses: Sequence[Response]) -> str | None:
        data = _json(responses, i)
        if isinstance(data, str):
            return data
        for key, want in fields.items():
            if data.get(key) != want:
                return f"the app saw {key}={data.get(key)!r}, sent {want!r}"
        return None

    return AppCheck(check)


def saw_one_of(key: str, *allowed: object, i: int = 0) -> Check:
    """The reflection app, for response i, saw one of these values for key."""

    def check(responses: Sequence[Response]) -> str | None:
        data = _json(responses, i)
        if isinstance(data, str):
            return data
        got = data.get(key)
        return None if got in allowed else f"the app saw {key}={got!r}, expected one of {allowed}"

    return AppCheck(check)


def seen_header(data: dict[str, Any], name: str) -> list[str]:
    return [v for n, v in data["headers"] if n == name]


def saw_header(name: str, allowed: Callable[[list[str]], bool], what: str, i: int = 0) -> Check:
    def check(responses: Sequence[Response]) -> str | None:
        data = _json(responses, i)
        if isinstance(data, str):
            return data
        values = seen_header(data, name)
        return None if allowed(values) else f"the app saw {name}={values!r}, expected {what}"

    return AppCheck(check)


def paths(*want: str) -> Check:
    """Each response came from the reflection app for these paths, in this order."""

    def check(responses: Sequence[Response]) -> str | None:
        for i, path in enumerate(want):
            data = _json(responses, i)
            if isinstance(data, str):
                return data
            if data["path"] != path:
                return f"response {i + 1} answers {data['path']!r}, expected {path!r}"
        return None

    return AppCheck(check)


def all_of(*checks: Check) -> Check:
    """Every check; it reads the app's view (and is skipped without the app) if any part does."""

    def check(responses: Sequence[Response]) -> str | None:
        for c in checks:
            why = c(responses)
            if why:
                return why
        return None

    return AppCheck(check) if any(isinstance(c, AppCheck) for c in checks) else check


def later(check: Check, skip: int = 1) -> Check:
    """check applied to the responses after the first `skip`."""

    def shifted(responses: Sequence[Response]) -> str | None:
        return check(responses[skip:])

    return AppCheck(shifted) if isinstance(check, AppCheck) else shifted


def no_header(name: str) -> Check:
    def check(responses: Sequence[Response]) -> str | None:
        for r in responses:
            if r.header(name) is not None:
                return f"response {r.status} carries a {name} header line"
        return None

    return check


class Maker:
    """Builds scenarios for one category."""

    def __init__(self, category: str) -> None:
        self.category = category
        self.made: list[Scenario] = []

    def __call__(
        self,
        id: str,
        section: str,
        level: Level,
        title: str,
        send: bytes | tuple[bytes, ...],
        *expect: Expect,
        reflect: bool = False,
        fragment: bool = False,
        heads: frozenset[int] = frozenset(),
        shutdown_write: bool = False,
        wait: float | None = None,
        requests: int = 0,
        hazard: Check | None = None,
        pause: float = 0.0,
        follow: int = 0,
    ) -> Scenario:
        scenario = Scenario(
            id=id,
            category=self.category,
            section=section,
            level=level,
            title=title,
            send=send if isinstance(send, tuple) else (send,),
            expect=expect,
            reflect=reflect,
            fragment=fragment,
            heads=heads,
            shutdown_write=shutdown_write,
            wait=wait,
            requests=requests,
            hazard=hazard,
            pause=pause,
            follow=follow,
        )
        self.made.append(scenario)
        return scenario

    def script(
        self,
        id: str,
        section: str,
        level: Level,
        title: str,
        script: Script,
        text: str,
        *,
        reflect: bool = True,
        routes: bool = False,
    ) -> Scenario:
        scenario = Scenario(
            id=id,
            category=self.category,
            section=section,
            level=level,
            title=title,
            script=script,
            script_text=text,
            reflect=reflect,
            routes=routes,
        )
        self.made.append(scenario)
        return scenario
