"""The judge and the exchange runner fail on what they should fail on."""

from __future__ import annotations

import pytest

from tests._canned import canned
from treadle_conformance.model import Expect, Level, Scenario
from treadle_conformance.runner import Result, exchange, run
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import Target

OK_JSON = b'{"reflect": "treadle-conformance", "path": "/"}'
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(OK_JSON) + OK_JSON
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


def outcome_of(scenario: Scenario, reply: bytes, *, close: bool) -> Result:
    with canned(reply, close=close) as (host, port):
        target = Target(host, port, reflect=True)
        return run(scenario, target)


def simple(*expect: Expect) -> Scenario:
    return Scenario(
        "T-ONE", "test", "RFC 9112 §0", Level.MUST, "t", (b"GET / HTTP/1.1\r\n\r\n",), expect
    )


def test_passes_when_an_alternative_matches() -> None:
    s = simple(Expect((frozenset({400}),)), Expect((frozenset({200}),)))
    assert outcome_of(s, OK, close=False).status == "pass"


def test_wrong_status_fails() -> None:
    assert outcome_of(simple(Expect((frozenset({400}),))), OK, close=False).status == "fail"


def test_a_second_response_fails() -> None:
    result = outcome_of(simple(Expect((frozenset({200}),))), OK + OK, close=False)
    assert result.status == "fail" and "bytes after" in result.reason


def test_close_required_but_open_fails() -> None:
    s = simple(Expect((frozenset({400}),), close=True))
    assert outcome_of(s, BAD, close=False).status == "fail"
    assert outcome_of(s, BAD, close=True).status == "pass"


def test_open_required_but_closed_fails() -> None:
    s = simple(Expect((frozenset({200}),), close=False))
    assert outcome_of(s, OK, close=True).status == "fail"


def test_body_on_head_shows_as_an_error() -> None:
    s = by_id()["RESP-HEAD-NO-BODY"]
    assert outcome_of(s, OK + OK, close=False).status == "fail"


@pytest.mark.parametrize("scenario_id", ["SMUG-CL-TE", "SMUG-TE-HTTP10", "CHUNK-SIZE-NEGATIVE"])
def test_smuggling_scenarios_fail_when_the_server_answers_200_and_stays_open(
    scenario_id: str,
) -> None:
    assert outcome_of(by_id()[scenario_id], OK, close=False).status == "fail"


def test_reflect_scenarios_skip_without_the_app() -> None:
    s = by_id()["RL-ORIGIN"]
    result = run(s, Target("127.0.0.1", 9, reflect=False))
    assert result.status == "skip"


def test_exchange_reads_interim_then_final() -> None:
    s = simple(Expect((frozenset({200}),)))
    with canned(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, close=False) as (host, port):
        outcome = exchange(s, Target(host, port))
    assert outcome.responses[0].interim == (100,)


def test_status_sets_are_written_compactly() -> None:
    from treadle_conformance.model import statuses

    assert statuses(frozenset(range(400, 500))) == "400-499"
    assert statuses(frozenset({400, 505})) == "400, 505"
