"""A short soak: a mixed, mildly abusive workload for ``seconds``, with the server's RSS,
threads and fds sampled throughout.

Six clients loop over: a keep-alive burst of ``/hello``, a ``/hello`` on a new connection, a
1 MiB streamed response read whole, a 700 KiB upload (spooled by treadle and waitress), a
pipelined pair, and two rude exits (a reset in the middle of a response, a head cut short).
Every polite request must be answered; after the first quarter (warm-up) RSS may not keep
growing, threads may not pile up, and once the clients stop the fds go back to where they were.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from ..harness import Outcome, Target
from ..monitor import MIB
from ..wire import Reader, WireError, connect, exchange, request
from ._sockets import close_all, warm_up

RSS_GROWTH_BOUND_MIB = 16.0
THREAD_SLACK = 2
FD_SLACK = 4
SETTLE = 5.0
TIMEOUT = 10.0


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.lost = 0
        self.reasons: dict[str, int] = {}

    def add(self, sent: int, lost: int = 0, reason: str = "") -> None:
        with self.lock:
            self.sent += sent
            self.lost += lost
            if lost:
                self.reasons[reason] = self.reasons.get(reason, 0) + lost


def _keep_alive(address: tuple[str, int], tally: _Tally) -> None:
    sock = connect(address)
    reader = Reader(sock)
    try:
        for i in range(5):
            sock.sendall(request("GET", "/hello", close=i == 4))
            reader.read_response(time.monotonic() + TIMEOUT)
            tally.add(1)
    finally:
        close_all([sock])


def _fresh(address: tuple[str, int], tally: _Tally) -> None:
    exchange(address, request("GET", "/hello", close=True), TIMEOUT)
    tally.add(1)


def _stream(address: tuple[str, int], tally: _Tally) -> None:
    response = exchange(address, request("GET", f"/stream?bytes={MIB}", close=True), TIMEOUT)
    if len(response.body) != MIB:
        raise WireError("eof", "short body")
    tally.add(1)


def _upload(address: tuple[str, int], tally: _Tally) -> None:
    size = 700 * 1024
    response = exchange(address, request("POST", "/upload", b"p" * size, close=True), TIMEOUT)
    if response.body.strip() != str(size).encode():
        raise WireError("garbled", f"upload echoed {response.body[:20]!r}")
    tally.add(1)


def _pipelined(address: tuple[str, int], tally: _Tally) -> None:
    sock = connect(address)
    try:
        sock.sendall(request("GET", "/hello") + request("GET", "/hello", close=True))
        reader = Reader(sock)
        for _ in range(2):
            reader.read_response(time.monotonic() + TIMEOUT)
            tally.add(1)
    finally:
        close_all([sock])


def _rude(address: tuple[str, int], tally: _Tally) -> None:
    """Reset in the middle of a large response, then leave a head half-sent."""
    sock = connect(address)
    with contextlib.suppress(OSError):
        sock.sendall(request("GET", f"/stream?bytes={8 * MIB}"))
        sock.recv(4096)
    close_all([sock], reset=True)
    sock = connect(address)
    with contextlib.suppress(OSError):
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: so")
    close_all([sock])


STEPS: tuple[Callable[[tuple[str, int], _Tally], None], ...] = (
    _keep_alive,
    _fresh,
    _stream,
    _upload,
    _pipelined,
    _rude,
)


def soak(target: Target, seconds: float = 30.0, clients: int = 6) -> Outcome:
    tally = _Tally()
    end = time.monotonic() + seconds

    def client(offset: int) -> None:
        i = offset
        while time.monotonic() < end:
            step = STEPS[i % len(STEPS)]
            i += 1
            try:
                step(target.address, tally)
            except (OSError, WireError) as exc:
                reason = exc.reason if isinstance(exc, WireError) else type(exc).__name__
                tally.add(1, 1, f"{step.__name__}: {reason}")

    warm_up(target)
    base = target.monitor.take()
    started = time.monotonic()
    with target.probe(interval=0.25) as probe:
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 2 * TIMEOUT)
    samples = [s for s in target.monitor.samples if s.at >= started]
    warm = [s for s in samples if s.at >= started + seconds / 4]
    settled = None
    if base is not None:
        fds = base.fds
        settled = target.monitor.wait_for(lambda s: s.fds <= fds + FD_SLACK, SETTLE)
    outcome = Outcome(probe=probe.figures, sent=tally.sent, lost=tally.lost)
    if not warm or base is None or settled is None:
        outcome.check("the server lived through the soak", False)
        return outcome
    growth = (max(s.rss for s in warm) - warm[0].rss) / MIB
    threads_max = max(s.threads for s in samples)
    outcome.notes.append(
        f"{tally.sent} requests, {tally.lost} lost{f' {tally.reasons}' if tally.reasons else ''}; "
        "RSS "
        f"{warm[0].rss / MIB:.0f} -> {max(s.rss for s in warm) / MIB:.0f} MiB after warm-up; "
        f"threads {base.threads} -> max {threads_max}; fds {base.fds} -> {settled.fds} after"
    )
    outcome.check("every polite request answered", tally.lost == 0, f"{tally.lost} lost")
    outcome.check(
        f"RSS growth after warm-up <= {RSS_GROWTH_BOUND_MIB:g} MiB",
        growth <= RSS_GROWTH_BOUND_MIB,
        f"{growth:.1f} MiB",
    )
    outcome.check(
        f"threads stay within {THREAD_SLACK} of the warm count",
        threads_max <= warm[0].threads + THREAD_SLACK,
        f"{warm[0].threads} -> {threads_max}",
    )
    outcome.check(
        "fds return to their starting count once the clients stop",
        settled.fds <= base.fds + FD_SLACK,
        f"{base.fds} -> {settled.fds}",
    )
    outcome.check_probe()
    return outcome
