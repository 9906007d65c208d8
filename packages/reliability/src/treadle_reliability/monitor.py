"""What the server costs while it is attacked: RSS, CPU, threads and fds of its process tree.

Sampled from /proc (through psutil) every ``interval`` seconds in a thread. The tree is the
server's PID and its descendants (a gunicorn master and its worker), summed: that is what the
machine pays. CPU is reported as percent of one core over the monitored span, so a spinning
acceptor shows as ~100 % whatever the attack's length.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

INTERVAL = 0.2
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    rss: int  # bytes
    threads: int
    fds: int
    cpu: float  # seconds of CPU used so far (user + system)
    pids: frozenset[int]


class Tree:
    """The server's process tree; keeps psutil handles so CPU times stay cumulative."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._procs: dict[int, psutil.Process] = {}
        self._gone_cpu = 0.0
        self._last_cpu: dict[int, float] = {}

    def sample(self) -> Sample | None:
        """None once the root process is gone."""
        try:
            root = self._procs.get(self.pid) or psutil.Process(self.pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        if root.status() == psutil.STATUS_ZOMBIE:
            return None
        rss = threads = fds = 0
        cpu = 0.0
        seen: dict[int, psutil.Process] = {}
        for member in members:
            proc = self._procs.get(member.pid, member)
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    fds += proc.num_fds()
                    times = proc.cpu_times()
            except psutil.Error:
                continue
            used = times.user + times.system
            self._last_cpu[proc.pid] = used
            cpu += used
            seen[proc.pid] = proc
        for pid in set(self._procs) - set(seen):  # a worker that died: keep what it used
            self._gone_cpu += self._last_cpu.pop(pid, 0.0)
        self._procs = seen
        return Sample(time.monotonic(), rss, threads, fds, cpu + self._gone_cpu, frozenset(seen))


@dataclass(frozen=True, slots=True)
class Usage:
    rss_start: int
    rss_peak: int
    rss_end: int
    cpu_percent: float
    threads_start: int
    threads_max: int
    fds_start: int
    fds_max: int
    fds_end: int
    samples: tuple[Sample, ...]

    @property
    def rss_peak_mib(self) -> float:
        return self.rss_peak / MIB

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_peak - self.rss_start) / MIB


class Monitor:
    """``with Monitor(pid) as mon: ...``; then ``mon.usage()``."""

    def __init__(self, pid: int, interval: float = INTERVAL) -> None:
        self.tree = Tree(pid)
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._lock = threading.Lock()

    def take(self) -> Sample | None:
        with self._lock:
            sample = self.tree.sample()
            if sample is not None:
                self.samples.append(sample)
            return sample

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.take()

    def __enter__(self) -> Monitor:
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        with contextlib.suppress(psutil.Error):
            self.take()

    def usage(self) -> Usage:
        samples = tuple(self.samples)
        if not samples:
            return Usage(0, 0, 0, 0.0, 0, 0, 0, 0, 0, ())
        first, last = samples[0], samples[-1]
        span = last.at - first.at
        cpu = 100.0 * (last.cpu - first.cpu) / span if span > 0 else 0.0
        return Usage(
            rss_start=first.rss,
            rss_peak=max(s.rss for s in samples),
            rss_end=last.rss,
            cpu_percent=cpu,
            threads_start=first.threads,
            threads_max=max(s.threads for s in samples),
            fds_start=first.fds,
            fds_max=max(s.fds for s in samples),
            fds_end=last.fds,
            samples=samples,
        )

    def wait_for(self, predicate: Callable[[Sample], bool], timeout: float) -> Sample | None:
        """Sample until ``predicate(sample)`` holds or ``timeout`` passes; the last sample."""
        deadline = time.monotonic() + timeout
        sample = self.take()
        while sample is not None and not predicate(sample) and time.monotonic() < deadline:
            time.sleep(self.interval)
            sample = self.take()
        return sample
