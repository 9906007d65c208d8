"""The judge and the exchange runner fail on what they should fail on."""

from __future__ import annotations

import pytest

from tests._canned import BASELINE, SENTINEL_OK, canned, json_ok, judged, plain
from treadle_conformance.model import Expect, Level, Scenario
from treadle_conformance.runner import exchange, run
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import Settings, Target

OK = json_ok("/")
BAD = plain(400)
BAD_CLOSE = plain(400, close=True)


def simple(*expect: Expect) -> Scenario:
    return Scenario(
        "T-ONE", "test", "RFC 9112 §0", Level.MUST, "t", (b"GET / HTTP/1.1\r\n\r\n",), expect
    )


def test_passes_when_an_alternative_matches() -> None:
    s = simple(Expect((frozenset({400}),)), Expect((frozenset({200}),)))
    result = judged(s, OK)
    assert (result.safety, result.strict, result.status) == ("safe", "pass", "pass")


def test_wrong_status_is_a_strict_miss_not_unsafe() -> None:
    result = judged(simple(Expect((frozenset({400}),))), OK)
    assert (result.safety, result.strict, result.status) == ("safe", "miss", "fail")


def test_a_second_response_is_unsafe() -> None:
    result = judged(simple(Expect((frozenset({200}),))), OK + OK)
    assert result.unsafe and "3 responses to 1 request(s) and the sentinel" in result.safety_reason


def test_a_late_stray_response_is_caught_by_the_sentinel() -> None:
    # The stray answer comes only after the client wrote again: no waiting window catches it.
    result = judged(simple(Expect((frozenset({400}),))), BAD, after=json_ok("/x") + SENTINEL_OK)
    assert result.unsafe and "sentinel" in result.safety_reason


def test_a_sentinel_answered_differently_is_unsafe() -> None:
    result = judged(simple(Expect((frozenset({400}),))), BAD, after=plain(400, close=True))
    assert result.unsafe and "status 400, a fresh connection gets 200" in result.safety_reason


def test_a_swallowed_sentinel_is_unsafe() -> None:
    s = simple(Expect((frozenset({400}),)))
    with canned(BAD, close=False, after=None) as (host, port):
        target = Target(host, port, reflect=True, baseline=BASELINE, settings=Settings(timeout=0.5))
        result = run(s, target)
    assert result.unsafe and "no answer to the sentinel" in result.safety_reason


def test_close_required_but_open_is_a_strict_miss() -> None:
    s = simple(Expect((frozenset({400}),), close=True))
    assert judged(s, BAD).strict == "miss"
    result = judged(s, BAD_CLOSE, close=True)
    assert (result.safety, result.strict) == ("safe", "pass")


def test_bytes_before_the_close_are_unsafe() -> None:
    s = simple(Expect((frozenset({400}),), close=True))
    result = judged(s, BAD_CLOSE + OK, close=True)
    assert result.unsafe and "bytes after" in result.safety_reason


def test_open_required_but_closed_fails() -> None:
    s = simple(Expect((frozenset({200}),), close=False))
    assert judged(s, OK, close=True).strict == "miss"


def test_body_on_head_is_unsafe() -> None:
    result = judged(by_id()["RESP-HEAD-NO-BODY"], OK + OK)
    assert result.unsafe


@pytest.mark.parametrize("scenario_id", ["SMUG-CL-TE", "SMUG-TE-HTTP10", "CHUNK-SIZE-NEGATIVE"])
def test_smuggling_scenarios_fail_when_the_server_answers_the_smuggled_request(
    scenario_id: str,
) -> None:
    result = judged(by_id()[scenario_id], OK + json_ok("/smuggled"))
    assert result.unsafe and result.status == "fail"


def test_a_refusal_that_closes_without_reading_is_safe() -> None:
    # nginx's way: an error status and a close, nothing read after the head.
    result = judged(by_id()["CHUNK-SIZE-NOT-HEX"], plain(404, close=True), close=True)
    assert result.safety == "safe"


def test_scenarios_needing_the_app_skip_without_it() -> None:
    result = run(by_id()["RESP-204-NO-BODY"], Target("127.0.0.1", 9, reflect=False))
    assert result.status == "skip"


def test_app_view_checks_are_not_judged_without_the_app() -> None:
    result = judged(by_id()["RL-ORIGIN"], plain(404), reflect=False)
    assert (result.safety, result.strict) == ("safe", "pass")
    assert result.note


def test_exchange_reads_interim_then_final() -> None:
    s = simple(Expect((frozenset({200}),)))
    with canned(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, close=False) as (host, port):
        outcome = exchange(s, Target(host, port, baseline=BASELINE))
    assert outcome.responses[0].interim == (100,)


def test_status_sets_are_written_compactly() -> None:
    from treadle_conformance.model import statuses

    assert statuses(frozenset(range(400, 500))) == "400-499"
    assert statuses(frozenset({400, 505})) == "400, 505"
