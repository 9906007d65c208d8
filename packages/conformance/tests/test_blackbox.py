"""Black-box mode: servers without the reflection app still get nearly the whole catalogue.

Each server here serves one static answer (nginx a file, Node a hello, `python -m http.server`
a directory). Skips are decided before any I/O, so the share of skipped cases is checked for
the whole catalogue; a few framing, smuggling and pipelining scenarios are run for real.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from treadle_conformance import blackbox, report
from treadle_conformance.runner import Result, run, variants
from treadle_conformance.scenarios import CATALOGUE, by_id
from treadle_conformance.target import Settings, Target, started

SAMPLE = ["SMUG-CL-TE", "SMUG-CL-DUP-DIFFERENT", "CHUNK-BASIC", "PIPE-TWO", "HDR-HOST-MISSING"]


def _skips(target: Target) -> list[Result]:
    return [run(s, target, v) for s, v in variants(CATALOGUE) if s.needs_app and not target.reflect]


@pytest.mark.parametrize("name", blackbox.SERVERS)
def test_at_most_15_percent_skipped_and_framing_is_judged(name: str) -> None:
    with contextlib.ExitStack() as stack:
        try:
            command, port = stack.enter_context(blackbox.serving(name))
        except blackbox.Missing as exc:
            pytest.skip(str(exc))
        target = stack.enter_context(
            started(command, name=name, port=port, settings=Settings(close_wait=1.0))
        )
        target.preflight()
        assert not target.reflect and target.baseline is not None
        skipped = _skips(target)
        total = sum(1 for _ in variants(CATALOGUE))
        assert len(skipped) <= 0.15 * total, report.skip_summary(skipped)
        for scenario_id in SAMPLE:
            result = run(by_id()[scenario_id], target)
            assert result.strict != "skip", scenario_id
            assert result.safety == "safe", (scenario_id, result.safety_reason)


def test_the_summary_names_how_many_were_skipped_and_why() -> None:
    with blackbox.serving("http.server") as (command, _):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "treadle_conformance",
                "--server-cmd",
                command,
                "-k",
                "PIPE-TWO or RESP-204-NO-BODY",
                "-p",
                "no:warnings",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    lines = [line for line in done.stdout.splitlines() if "cases skipped" in line]
    assert lines == [
        "3 of 6 cases skipped (50%): 3 need the reflection app's /_/ routes; "
        "3 more ran without the app's view checked"
    ], done.stdout
