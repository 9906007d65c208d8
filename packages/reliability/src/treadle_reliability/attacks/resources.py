"""Resource exhaustion: too few file descriptors, and a body spool that cannot be written.

fd exhaustion: the server runs under ``ulimit -n 64``; a keep-alive probe connection is opened
first, then 100 idle connections take every fd the server has left (the rest wait in its listen
backlog). While they hold, the server must not spin (``accept()`` failing with EMFILE on a
level-triggered listener is a busy loop), must not flood its log, and must keep serving the
connection that was already open; once they go, new connections must be served again.

Spool failure: the server runs under ``ulimit -f`` of 1 MiB, so a body spooled to a temporary
file past that fails to write (EFBIG; Python ignores SIGXFSZ). Uploads of 2 MiB then fail, and
each must fail alone (an error status or a closed connection); the server keeps serving.
"""

from __future__ import annotations

import time

from ..harness import Outcome, Target, fmt_seconds
from ..wire import WireError, exchange, request
from ._sockets import close_all, open_many

KIB = 1024
MIB = 1024 * 1024
FD_LIMIT = 64
FSIZE_LIMIT = MIB
# A server at its fd limit should back off: the bound is one log line a second; the
# CPU bound leaves room for serving the open connection on a noisy machine.
FD_CPU_BOUND = 50.0
FD_LOG_LINES_PER_SECOND = 2.0
RECOVERY_TIMEOUT = 5.0


def fd_exhaustion(target: Target, idle: int = 100, seconds: float = 5.0) -> Outcome:
    server = target.server
    with target.probe(keep_alive=True, interval=0.2) as probe:
        socks, failed = open_many(target.address, idle, timeout=0.5, budget=10.0)
        try:
            lines_before = server.log_lines()
            before = target.monitor.take()
            time.sleep(seconds)  # the attack is the idle connections holding every fd
            after = target.monitor.take()
            lines_after = server.log_lines()
        finally:
            close_all(socks, reset=True)
    cpu = 0.0
    if before is not None and after is not None and after.at > before.at:
        cpu = 100.0 * (after.cpu - before.cpu) / (after.at - before.at)
    log_rate = (lines_after - lines_before) / seconds
    recovered = _recovers(target, RECOVERY_TIMEOUT)
    outcome = Outcome(probe=probe.figures)
    outcome.notes.append(
        f"{len(socks)} idle connections ({failed} could not connect) under ulimit -n "
        f"{FD_LIMIT}: CPU {cpu:.0f} % and {log_rate:.0f} log lines/s while they held; "
        + (
            f"new connections served {recovered:.1f} s after they closed"
            if recovered is not None
            else "new connections still not served 5 s after they closed"
        )
    )
    if probe.figures.reconnects:
        outcome.notes.append(
            f"the keep-alive probe found its idle connection closed {probe.figures.reconnects} "
            "time(s) and was retried on a new one"
        )
    outcome.check(
        "probe: the client with a connection already open keeps being answered, p99 <= 1 s",
        probe.figures.all_within(1.0),
        f"{probe.figures.ok}/{probe.figures.total}, p99 {fmt_seconds(probe.figures.p99)}",
    )
    outcome.check(
        f"no busy loop at the fd limit (CPU <= {FD_CPU_BOUND:g} %)",
        cpu <= FD_CPU_BOUND,
        f"{cpu:.0f} %",
    )
    outcome.check(
        f"log rate-limited (<= {FD_LOG_LINES_PER_SECOND:g} lines/s)",
        log_rate <= FD_LOG_LINES_PER_SECOND,
        f"{log_rate:.0f} lines/s",
    )
    outcome.check(
        f"new connections served within {RECOVERY_TIMEOUT:g} s once fds are free",
        recovered is not None,
    )
    return outcome


def _recovers(target: Target, timeout: float) -> float | None:
    """Seconds until a new connection is answered again; None if not within ``timeout``."""
    started = time.monotonic()
    data = request("GET", "/hello", close=True)
    while True:
        left = started + timeout - time.monotonic()
        if left <= 0:
            return None
        try:
            if exchange(target.address, data, min(left, 1.0)).status == 200:
                return time.monotonic() - started
        except WireError:
            pass


def spool_failure(
    target: Target, uploads: int = 4, size: int = 2 * MIB, seconds: float = 3.0, pause: float = 0.1
) -> Outcome:
    """At least ``uploads`` uploads, and more (one per ``pause`` seconds, at most 50) until
    ``seconds`` have passed, so the probe sees the server while bodies keep failing to spool."""
    outcomes: list[str] = []
    body = b"s" * size
    end = time.monotonic() + seconds
    with target.probe(interval=0.2) as probe:
        while len(outcomes) < uploads or (time.monotonic() < end and len(outcomes) < 50):
            outcomes.append(_upload(target, body))
            if not target.server.alive():
                break
            time.sleep(pause)  # the attacker's pace
        after = [_hello(target) for _ in range(5)]
    outcome = Outcome(probe=probe.figures)
    tally = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    outcome.notes.append(
        f"{len(outcomes)} uploads of {size // MIB} MiB under ulimit -f {FSIZE_LIMIT // KIB}: "
        + ", ".join(f"{o} x {n}" for o, n in tally.items())
    )
    answered_or_closed = all(not o.startswith("no answer") for o in outcomes)
    outcome.check(
        "each upload is answered or closed within 10 s",
        answered_or_closed and len(outcomes) >= uploads,
        str(tally),
    )
    outcome.check("the server answers /hello after the failed uploads", all(after))
    outcome.check_probe()
    return outcome


def _upload(target: Target, body: bytes) -> str:
    try:
        response = exchange(target.address, request("POST", "/upload", body), timeout=10.0)
    except WireError as exc:
        return "closed" if exc.reason in ("eof", "reset") else f"no answer ({exc.reason})"
    return str(response.status)


def _hello(target: Target) -> bool:
    try:
        return exchange(target.address, request("GET", "/hello", close=True), 5.0).status == 200
    except WireError:
        return False
