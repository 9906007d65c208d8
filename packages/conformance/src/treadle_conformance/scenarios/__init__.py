"""The catalogue: every scenario, grouped by category, in a stable order.

`CATALOGUE` runs against every target; `UPSTREAM` (what a proxy does with a backend's bad
responses) only in proxy mode, where the harness's own backend can misbehave."""

from __future__ import annotations

from treadle_conformance.model import Scenario
from treadle_conformance.scenarios import (
    chunked,
    connections,
    framing,
    headers,
    limits,
    random_requests,
    request_line,
    responses,
    upstream,
    vectors,
)

CATALOGUE: tuple[Scenario, ...] = (
    *request_line.SCENARIOS,
    *headers.SCENARIOS,
    *framing.SCENARIOS,
    *chunked.SCENARIOS,
    *connections.SCENARIOS,
    *responses.SCENARIOS,
    *limits.SCENARIOS,
    *vectors.SCENARIOS,
    *random_requests.SCENARIOS,
)

UPSTREAM: tuple[Scenario, ...] = upstream.SCENARIOS
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(s.category for s in CATALOGUE + UPSTREAM))


def by_id() -> dict[str, Scenario]:
    return {s.id: s for s in CATALOGUE + UPSTREAM}
