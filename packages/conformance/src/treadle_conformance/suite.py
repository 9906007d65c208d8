"""The conformance suite as pytest tests: one test per scenario (and fragmentation variant)."""

from __future__ import annotations

import pytest

from treadle_conformance import report
from treadle_conformance.model import Scenario
from treadle_conformance.plugin import judge_result, target_died
from treadle_conformance.runner import Result, case_id, run, variants
from treadle_conformance.scenarios import CATALOGUE, UPSTREAM
from treadle_conformance.target import Target

# UPSTREAM's cases are deselected unless the run is in proxy mode (see the plugin).
CASES = [pytest.param(s, v, id=case_id(s, v)) for s, v in variants(CATALOGUE + UPSTREAM)]


@pytest.mark.parametrize(("scenario", "variant"), CASES)
def test_scenario(
    scenario: Scenario,
    variant: str,
    conformance_target: Target,
    conformance_results: list[Result],
    request: pytest.FixtureRequest,
) -> None:
    result = run(scenario, conformance_target, variant)
    target_died(request, conformance_target, result)
    request.node.user_properties.extend(report.properties(result))
    conformance_results.append(result)
    judge_result(result)
