from __future__ import annotations

import re
from collections import Counter

from treadle_conformance.model import Level
from treadle_conformance.scenarios import CATALOGUE, CATEGORIES

REQUIRED_CATEGORIES = {
    "request-line",
    "headers",
    "framing",
    "chunked",
    "pipelining",
    "connection",
    "expect",
    "responses",
    "limits",
    "timeouts",
    "concurrency",
    "property",
}


def test_at_least_120_scenarios() -> None:
    assert len(CATALOGUE) >= 120


def test_ids_are_unique_and_shaped() -> None:
    ids = [s.id for s in CATALOGUE]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    for scenario_id in ids:
        assert re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)+", scenario_id), scenario_id


def test_every_scenario_has_a_section_level_and_expectation() -> None:
    for s in CATALOGUE:
        assert s.section.strip() and s.title.strip(), s.id
        assert isinstance(s.level, Level)
        if s.script is None:
            assert s.send and all(s.send), s.id
            assert s.expect, s.id
        else:
            assert s.script_text, s.id


def test_categories_cover_the_issue() -> None:
    assert set(CATEGORIES) >= REQUIRED_CATEGORIES


def test_required_topics_are_present() -> None:
    ids = {s.id for s in CATALOGUE}
    for needed in [
        "SMUG-CL-TE",
        "SMUG-TE-HTTP10",
        "SMUG-CL-DUP-DIFFERENT",
        "CHUNK-TRAILER",
        "CHUNK-EXTENSION",
        "HDR-OBS-FOLD",
        "HDR-SPACE-BEFORE-COLON",
        "HDR-HOST-MISSING",
        "RL-ABSOLUTE",
        "RL-ASTERISK-OPTIONS",
        "RESP-HEAD-NO-BODY",
        "RESP-204-NO-BODY",
        "RESP-304-NO-BODY",
        "EXPECT-100-CONTINUE",
        "CONC-KEEPALIVE-6",
        "CONC-KEEPALIVE-8",
        "CONC-KEEPALIVE-12",
        "CONC-NEW-WHILE-IDLE",
        "PIPE-AFTER-CHUNKED",
        "PIPE-AFTER-ERROR",
        "PROP-RANDOM-REQUESTS",
    ]:
        assert needed in ids, needed


def test_fragmented_scenarios_are_valid_requests_checked_by_the_app() -> None:
    for s in CATALOGUE:
        if s.fragment:
            assert s.reflect and s.script is None, s.id


def test_levels_are_all_used() -> None:
    assert {s.level for s in CATALOGUE} == set(Level)
