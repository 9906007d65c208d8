"""Proxy mode, the backend's side: responses that must not splice into the next client's.

The backend's wrong answers (`splicing.answers`) are pinned against two stand-in proxies: a
transparent relay, which hands the hidden extra response to the same client (caught by the
sentinel), and a naive pooling proxy, which hands it to the next client (caught by the
follow-ups on fresh connections). nginx and HAProxy run every upstream scenario, judged.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests._relays import naive_pool, real_proxy, relay
from treadle_conformance import proxies
from treadle_conformance.backend import running
from treadle_conformance.runner import run
from treadle_conformance.scenarios import UPSTREAM, by_id
from treadle_conformance.splicing import SPLICED, answers
from treadle_conformance.target import PROXY_SENTINEL, Settings, Target

QUICK = Settings(timeout=2.0, close_wait=0.5, path=PROXY_SENTINEL)
ORDINARY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Backend-Path: /p\r\n\r\nok"


@pytest.mark.parametrize("kind", ["extra", "head-body", "204-body", "304-body", "cl-different"])
def test_each_wrong_answer_hides_a_whole_response_where_a_wrong_framing_leaves_it(
    kind: str,
) -> None:
    data = answers(kind, ORDINARY, "/p")
    assert data is not None and data.endswith(SPLICED)
    # Framed by the first head and the first Content-Length alone, SPLICED is what is left.
    end = data.index(b"\r\n\r\n") + 4
    length = int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert kind in ("head-body", "204-body", "304-body") or data[end + length :] == SPLICED
    assert kind not in ("head-body", "204-body", "304-body") or data[end:] == SPLICED


def test_the_cl_te_answer_leaves_the_extra_response_to_a_content_length_reader() -> None:
    data = answers("cl-te", ORDINARY, "/p")
    assert data is not None
    end = data.index(b"\r\n\r\n") + 4
    length = int(data.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert data[end + length :].startswith(SPLICED)


@contextlib.contextmanager
def behind(stand_in: str) -> Iterator[Target]:
    with running() as backend:
        make = relay if stand_in == "relay" else naive_pool
        with make(backend.port) as port:
            target = Target("127.0.0.1", port, settings=QUICK, backend=backend)
            target.preflight()
            yield target


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scenario_id", ["PROXY-RESP-EXTRA", "PROXY-RESP-204-BODY"])
def test_a_proxy_handing_the_extra_response_to_the_same_client_is_unsafe(scenario_id: str) -> None:
    with behind("relay") as target:
        result = run(by_id()[scenario_id], target)
    assert result.unsafe, result.observed
    assert "extra response reached the client" in result.safety_reason


@pytest.mark.timeout(60)
def test_a_proxy_handing_the_extra_response_to_the_next_client_is_unsafe() -> None:
    with behind("naive-pool") as target:
        result = run(by_id()["PROXY-RESP-EXTRA"], target)
    assert result.unsafe, result.observed
    assert "follow-up 1, on a fresh connection, got the backend's extra response" in (
        result.safety_reason
    )


@pytest.mark.timeout(60)
def test_a_proxy_taking_an_interim_100_for_the_answer_is_unsafe() -> None:
    # The naive proxy hands on the 100 as the whole answer and leaves the final 200 to the
    # next client: the follow-up gets another request's answer.
    with behind("naive-pool") as target:
        result = run(by_id()["PROXY-RESP-INTERIM"], target)
    assert result.unsafe and result.strict == "miss"
    assert "follow-up 1, on a fresh connection, asked for" in result.safety_reason
    assert "got the answer to /__backend/interim" in result.safety_reason


@pytest.mark.timeout(60)
def test_an_ordinary_request_through_the_naive_pool_is_safe() -> None:
    with behind("naive-pool") as target:
        plain = run(by_id()["RL-ORIGIN"], target)
    assert (plain.safety, plain.strict) == ("safe", "pass"), plain.reason


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", proxies.PROXIES)
def test_real_proxies_run_every_upstream_scenario_with_follow_ups(name: str) -> None:
    with real_proxy(name, QUICK) as target:
        results = [run(s, target) for s in UPSTREAM]
    for r in results:
        assert r.strict != "skip", r.reason
        # Each scenario's own request reached the backend, and the follow-ups were judged.
        assert "/__backend/" in r.observed
        assert "follow-ups each answered for itself" in r.observed or "follow-up" in r.safety_reason


def test_upstream_cases_run_only_in_proxy_mode() -> None:
    def collected(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "treadle_conformance", "--collect-only", "-q", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout

    assert "PROXY-RESP-EXTRA" not in collected()
    assert "PROXY-RESP-EXTRA" in collected("--proxy", "haproxy")
    # Behind a proxy with a real origin there is no backend to misbehave.
    assert "PROXY-RESP-EXTRA" not in collected("--proxy", "haproxy", "--origin-cmd", "treadle")
