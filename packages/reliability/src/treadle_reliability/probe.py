"""The probe client: a well-behaved user who keeps asking for ``/hello`` during an attack.

Every ``interval`` seconds (or as soon as the previous one ends, if it took longer) the probe
sends one request, by default on a new connection, and waits at most ``timeout`` for the whole
response. A request that gets no 200 in time is a failure, and its latency counts as infinite:
the percentiles of a starved server then read as "timeout" instead of quoting only the lucky.
With ``keep_alive`` the probe reuses one connection, opened before the attack starts (what
"connections already open keep being served" needs), and reconnects only when the server
closes it; a request that finds its idle connection closed is retried once on a new one, as
an HTTP client would (and counted in ``reconnects``).
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from dataclasses import dataclass, field

from .wire import Reader, Response, WireError, connect, exchange, request

INTERVAL = 0.1
TIMEOUT = 5.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; ``inf`` for an empty list."""
    if not values:
        return math.inf
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class ProbeFigures:
    ok: int = 0
    total: int = 0
    latencies: list[float] = field(default_factory=list)  # inf for a failure
    failures: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0  # keep-alive probe: a closed idle connection replaced by a new one

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    def record(self, latency: float | None, failure: str = "") -> None:
        self.total += 1
        if latency is None:
            self.latencies.append(math.inf)
            self.failures[failure] = self.failures.get(failure, 0) + 1
        else:
            self.ok += 1
            self.latencies.append(latency)

    def all_within(self, bound: float) -> bool:
        return self.total > 0 and self.ok == self.total and self.p99 <= bound


class Probe:
    """``with Probe(address) as probe: ...`` probes in a thread for the block's duration."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        interval: float = INTERVAL,
        timeout: float = TIMEOUT,
        keep_alive: bool = False,
        path: str = "/hello",
    ) -> None:
        self.address = address
        self.interval = interval
        self.timeout = timeout
        self.keep_alive = keep_alive
        self.data = request("GET", path, close=not keep_alive)
        self.figures = ProbeFigures()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self._sock: socket.socket | None = None
        self._reader: Reader | None = None
        if keep_alive:
            self._open()

    def _open(self) -> None:
        self._sock = connect(self.address, self.timeout)
        self._reader = Reader(self._sock)

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = self._reader = None

    def once(self) -> None:
        started = time.monotonic()
        try:
            if self.keep_alive:
                response = self._keep_alive_once(started + self.timeout)
            else:
                response = exchange(self.address, self.data, self.timeout)
        except WireError as exc:
            self.figures.record(None, exc.reason)
            return
        if response.status != 200:
            self.figures.record(None, f"status {response.status}")
        else:
            self.figures.record(time.monotonic() - started)

    def _keep_alive_once(self, deadline: float) -> Response:
        """One request on the open connection. If a *reused* connection fails before any byte
        of the answer (the server closed it while idle, as RFC 9112 §9.6 allows), retry once
        on a new connection, as HTTP clients do (§9.3.1); ``figures.reconnects`` counts it."""
        reused = self._sock is not None
        try:
            return self._send_and_read(deadline)
        except WireError as exc:
            if not (reused and exc.reason in ("eof", "reset") and exc.before_answer):
                raise
        self.figures.reconnects += 1
        return self._send_and_read(deadline)

    def _send_and_read(self, deadline: float) -> Response:
        if self._sock is None:
            try:
                self._open()
            except OSError as exc:
                raise WireError("refused", str(exc)) from None
        assert self._sock is not None and self._reader is not None
        try:
            self._sock.sendall(self.data)
            response = self._reader.read_response(deadline)
        except OSError as exc:
            self._drop()
            raise WireError("reset", str(exc), before_answer=True) from None
        except WireError:
            self._drop()
            raise
        if response.closes:
            self._drop()
        return response

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.once()
            self._stop.wait(max(0.0, started + self.interval - time.monotonic()))

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(self.timeout + 1.0)
        self._drop()
