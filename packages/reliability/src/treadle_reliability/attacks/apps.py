"""An app that raises ``BaseException``s: ``SystemExit``, ``KeyboardInterrupt``,
``GeneratorExit`` and a plain ``BaseException`` subclass, from inside the request.

Two waves of as many requests as the server has threads (so every worker meets one), then a
wave of ten ``/hello``. A server that catches only ``Exception`` loses a worker thread per
request and ends up answering nothing; it should answer 500 (or close), log the failure, and
keep the worker. Every wave runs concurrently with a per-request deadline, so a server that
hangs costs seconds, not minutes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..harness import Outcome, Target
from ..servers import THREADS
from ..wire import WireError, exchange, request

KINDS = ("SystemExit", "KeyboardInterrupt", "AppAbort", "GeneratorExit")
TIMEOUT = 5.0


def _ask(target: Target, path: str) -> str:
    try:
        return str(exchange(target.address, request("GET", path, close=True), TIMEOUT).status)
    except WireError as exc:
        return "closed" if exc.reason in ("eof", "reset") else exc.reason


def base_exceptions(target: Target, waves: int = 2, hellos: int = 10) -> Outcome:
    lines_before = target.server.log_lines()
    paths = [f"/raise?exc={KINDS[i % len(KINDS)]}" for i in range(THREADS * waves)]
    raised: list[str] = []
    with target.probe(interval=0.25) as probe, ThreadPoolExecutor(max(THREADS, hellos)) as pool:
        for wave in range(waves):
            batch = paths[wave * THREADS : (wave + 1) * THREADS]
            raised.extend(pool.map(lambda p: _ask(target, p), batch))
        after = list(pool.map(lambda p: _ask(target, p), ["/hello"] * hellos))
    logged = target.server.log_lines() - lines_before
    answered = sum(1 for a in after if a == "200")
    summary = {kind: raised.count(kind) for kind in sorted(set(raised))}
    outcome = Outcome(probe=probe.figures, sent=hellos, lost=hellos - answered)
    outcome.notes.append(
        f"{len(raised)} raising requests got {summary}; then {answered}/{hellos} /hello "
        f"answered; {logged} log lines"
    )
    outcome.check(
        "every raising request is answered or closed in time",
        all(r != "timeout" for r in raised),
        str(summary),
    )
    outcome.check(f"all {hellos} /hello answered afterwards", answered == hellos, f"{answered}")
    outcome.check("the failures were logged", logged > 0, f"{logged} lines")
    return outcome
