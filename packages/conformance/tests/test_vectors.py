"""Each new vector catches a server that falls for it (issue 10, section 3).

`_lax.lax_server` is strict by default; each case turns on the one leniency the vector is
about and checks the harness's verdict: unsafe where the leniency desynchronises, a miss of the
scenario's level where it only breaks the RFC's preferred answer. The strict server passes
every vector's safety check, so each catch is the flag's doing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._lax import lax_server
from treadle_conformance.runner import Result, run
from treadle_conformance.scenarios import by_id, vectors
from treadle_conformance.target import Settings, Target

QUICK = Settings(timeout=1.0, close_wait=0.2)
UNSAFE, MISS = "unsafe", "miss"

CASES = [
    ("CHUNK-LAST-THEN-JUNK", "skip-2", UNSAFE),
    ("CHUNK-SIZE-BARE-CR", "size-prefix", UNSAFE),
    ("CHUNK-EXTENSION-BARE-CR", "size-prefix", UNSAFE),
    ("CHUNK-SIZE-CR-CR", "size-prefix", UNSAFE),
    ("CHUNK-SIZE-JUNK-SUFFIX", "size-prefix", UNSAFE),
    ("CHUNK-SIZE-0-JUNK", "size-prefix", UNSAFE),
    ("CHUNK-TRAILER-NO-COLON", "trailer-lax", UNSAFE),
    ("SMUG-TE-FF-BEFORE", "strip", UNSAFE),
    ("SMUG-TE-FF-AFTER", "strip", UNSAFE),
    ("SMUG-TE-NBSP-BEFORE", "strip", UNSAFE),
    ("SMUG-TE-NBSP-AFTER", "strip", UNSAFE),
    ("SMUG-TE-NEL-BEFORE", "strip", UNSAFE),
    ("SMUG-TE-NEL-AFTER", "strip", UNSAFE),
    ("SMUG-TE-FF-BYTE-BEFORE", "te-substring", UNSAFE),
    ("SMUG-TE-FF-BYTE-AFTER", "te-substring", UNSAFE),
    ("SMUG-TE-SINGLE-QUOTED", "te-substring", UNSAFE),
    ("SMUG-TE-TRAILING-COMMA", "te-exact", UNSAFE),
    ("SMUG-TE-UPPER-NAME", "exact-names", UNSAFE),
    ("SMUG-CL-UPPER-NAME", "exact-names", UNSAFE),
    ("SMUG-CL-NAME-HIGH-BYTE", "name-strip", UNSAFE),
    ("SMUG-TE-NAME-HIGH-BYTE", "name-strip", UNSAFE),
    ("SMUG-TE-SPLIT-CHUNKED-FIRST", "te-first", UNSAFE),
    ("SMUG-TE-SPLIT-CHUNKED-LAST", "te-first+te-exact", UNSAFE),
    ("SMUG-TE-IN-FOLD", "fold-new+te-over-cl", UNSAFE),
    ("SMUG-CL-NEGATIVE-ZERO", "cl-prefix", UNSAFE),
    ("SMUG-CL-OCTAL-PREFIX", "cl-prefix", UNSAFE),
    ("SMUG-CL-EXPONENT", "cl-prefix", UNSAFE),
    ("SMUG-CL-LETTER-SUFFIX", "cl-prefix", UNSAFE),
    ("SMUG-CL-ZERO-TRAILING", "cl-prefix", UNSAFE),
    ("SMUG-CL-EMPTY-THEN-VALUE", "cl-skip-empty", UNSAFE),
    ("BODY-HEAD-WITH-CL", "head-no-body", UNSAFE),
    ("BODY-OPTIONS-WITH-CL", "head-no-body", UNSAFE),
    ("BODY-PAUSE-BEFORE-BODY", "body-timeout", UNSAFE),
    ("CHUNK-TRAILER-HOST", "merge-trailers", MISS),
    ("CHUNK-TRAILER-AUTHORIZATION", "merge-trailers", MISS),
    ("CHUNK-TRAILER-CONTENT-TYPE", "merge-trailers", MISS),
    ("HDR-END-CR-X", "cr", UNSAFE),
    ("RL-LF-SEPARATOR", "rl-split", MISS),
    ("PROTO-EXPECT-UNKNOWN-BODY", "expect-417", UNSAFE),
    ("PROTO-EXPECT-OBFUSCATED", "expect-417", UNSAFE),
    ("PROTO-H2-PREFACE", "hang-version", MISS),
    ("PROTO-UPGRADE-H2C", "h2c-101", UNSAFE),
    ("PROTO-CONNECT", "connect-200", MISS),
    ("PROTO-BINARY-GARBAGE", "garbage-200", MISS),
    ("PROTO-TLS-ON-PLAIN", "wait-line", MISS),
]


def against(flags: tuple[str, ...], scenario_id: str) -> Result:
    with lax_server(*flags) as (host, port):
        target = Target(host, port, settings=QUICK)
        target.preflight()
        return run(by_id()[scenario_id], target)


def test_every_new_vector_has_a_case() -> None:
    assert {s.id for s in vectors.SCENARIOS} == {c[0] for c in CASES}


@pytest.mark.parametrize(("scenario_id", "flag", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_the_vector_catches_a_server_that_falls_for_it(
    scenario_id: str, flag: str, verdict: str
) -> None:
    result = against(tuple(flag.split("+")), scenario_id)
    if verdict == UNSAFE:
        assert result.unsafe, (result.observed, result.strict_reason)
    else:
        assert result.strict == "miss", result.observed


@pytest.fixture(scope="module")
def strict_target() -> Iterator[Target]:
    with lax_server() as (host, port):
        target = Target(host, port, settings=QUICK)
        target.preflight()
        yield target


@pytest.mark.parametrize("scenario_id", [c[0] for c in CASES])
def test_the_strict_server_is_safe(strict_target: Target, scenario_id: str) -> None:
    result = run(by_id()[scenario_id], strict_target)
    assert not result.unsafe, (result.observed, result.safety_reason)
