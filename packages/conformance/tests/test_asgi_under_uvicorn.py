"""The ASGI reflection app under a real ASGI server: the catalogue's app-dependent part runs.

uvicorn (a test dependency; its h11 parser, whatever else is installed) hosts
`reflect_asgi:app`. Every scenario that needs the app's `/_/` routes and every request the
app's view is checked on with fragmentation variants runs once, whole. No check of the app's
view may fail: what uvicorn delivers, the JSON reports as the WSGI app would (an absolute-form
target excepted, which uvicorn hands over whole as the path). The routes must all run (but the
one ASGI cannot express) and every well-behaved route must pass; the misbehaving ones
(`/_/bad/...`) test uvicorn, not the app, so only their safety is asserted.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys

import pytest

from treadle_conformance.runner import run
from treadle_conformance.scenarios import CATALOGUE
from treadle_conformance.target import Settings, started

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed"
)

UVICORN = (
    f"{shlex.quote(sys.executable)} -m uvicorn --http h11 --host 127.0.0.1 --port {{port}} "
    "--timeout-keep-alive 5 --no-access-log --lifespan on treadle_conformance.reflect_asgi:app"
)


@pytest.mark.timeout(120)
def test_the_app_dependent_catalogue_runs_against_reflect_asgi_under_uvicorn() -> None:
    chosen = [s for s in CATALOGUE if s.needs_app or s.fragment]
    with started(UVICORN, name="uvicorn", settings=Settings(timeout=2.0, close_wait=1.0)) as t:
        t.preflight()
        assert (t.reflect, t.interface) == (True, "asgi")
        results = {s.id: run(s, t) for s in chosen}
    skipped = sorted(i for i, r in results.items() if r.strict == "skip")
    assert skipped == ["RESP-APP-STATUS-CRLF"]
    passed = 0
    for s in chosen:
        r = results[s.id]
        passed += r.status == "pass"
        bad = any(b"/_/bad/" in data for data in s.send)
        if s.send and s.send[0].split(b" ")[1].startswith(b"http://"):
            # uvicorn hands an absolute-form target to the app whole, as its path: the app
            # reports it, and the scenario is uvicorn's miss, not the app's.
            assert r.status == "pass" or "the app saw path='http://" in r.reason, r.reason
            continue
        # Whatever uvicorn refuses is uvicorn's verdict; what it delivers, the app reports as
        # the catalogue's checks expect.
        assert "the app saw" not in r.reason and "reflection app's JSON" not in r.reason, (
            s.id,
            r.reason,
        )
        assert not r.unsafe or bad, (s.id, r.safety_reason)
        if s.needs_app and not bad and s.id not in skipped:
            assert r.status == "pass", (s.id, r.reason)
    assert passed >= 0.8 * len(chosen)
