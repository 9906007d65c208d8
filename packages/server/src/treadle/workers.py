"""``ThreadPool`` and its ``WorkerThread``s: the seed's queue-and-workers shape.

The acceptor ``put()``s connections that hold a complete request; each ``WorkerThread`` loops
``get()`` -> ``conn.communicate()``. The queue is bounded: ``put()`` refuses when it is full
and the acceptor answers 503 with Retry-After.

Growth is decided from two counters kept under one lock: ``_backlog`` (work put and not yet
claimed by a thread) and ``_idle`` (threads that will claim work without being told). A worker
claims an item by lowering both at once, so a request in transit between the queue and a
thread is counted exactly once: ``_backlog - _idle`` is the work that no thread will take, and
while it is positive the pool adds threads up to its limit. A thread above ``min`` that sat
idle for ``idle_timeout`` seconds leaves.

A response that fits the connection's output buffer never makes a worker wait (output.py).
A worker writing past it to a client that stopped reading is *stalled*: it still waits,
within the send deadline, but it no longer counts against the pool's limit, so the pool may
start a replacement for it, up to ``2 * max`` threads in all. Six clients that never read a
large response therefore cannot starve a seventh on five threads.

A worker never dies of what it runs: an application's ``BaseException`` of any kind fails one
response (``HttpRequest.respond``), anything else fails one connection. Should a thread end
all the same, it leaves the pool's count on its way out and is replaced.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import HttpConnection
    from .server import HttpServer

error_log = logging.getLogger("treadle.error")
queue_log = logging.getLogger("treadle.queue")

# How long a thread above the minimum waits for work before it leaves.
IDLE_TIMEOUT = 30.0
# At most one treadle.queue note per this many seconds.
QUEUE_LOG_INTERVAL = 1.0
# How often stop() looks at its deadline, which a second signal may bring forward.
STOP_SLICE = 0.05


class WorkerThread(threading.Thread):
    def __init__(self, pool: ThreadPool, number: int) -> None:
        super().__init__(name=f"treadle-worker-{number}", daemon=True)
        self.pool = pool
        self.busy = False
        self.stalled = False
        self.served = 0  # written by this thread only, so no lock is needed
        self.conn: HttpConnection | None = None

    def run(self) -> None:
        pool = self.pool
        try:
            while True:
                conn = pool.get(self)
                if conn is None:
                    return
                self.conn = conn
                try:
                    self.served += conn.communicate()
                except BaseException:  # this connection fails, not the thread
                    error_log.exception("unexpected error serving %s", conn.remote_addr)
                    conn.close()
                finally:
                    self.conn = None
                    pool.done(self)
        finally:
            pool.leave(self)


class ThreadPool:
    def __init__(
        self,
        server: HttpServer,
        min: int = 5,
        max: int | None = None,
        queue_size: int = 1024,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        if min < 1:
            raise ValueError("a thread pool needs at least one thread")
        max = min if max is None else max
        if max < min:
            raise ValueError("max threads must be at least min threads")
        self.server = server
        self.min = min
        self.max = max
        self.queue_size = queue_size
        self.idle_timeout = idle_timeout
        self._queue: queue.SimpleQueue[HttpConnection | None] = queue.SimpleQueue()
        self._threads: list[WorkerThread] = []
        self._lock = threading.Lock()
        self._backlog = 0  # put and not yet claimed by a thread
        self._idle = 0  # threads that will claim work (waiting in get(), or just started)
        self._stalled = 0
        self._numbered = 0
        self._last_note = 0.0
        self._retired_served = 0
        self._stopping = False

    def start(self) -> None:
        with self._lock:
            self._stopping = False
            for _ in range(self.min):
                self._spawn_locked()

    def _limit(self) -> int:
        return min(self.max + self._stalled, 2 * self.max)

    def _spawn_locked(self) -> WorkerThread | None:
        if len(self._threads) >= self._limit() or self._stopping:
            return None
        self._numbered += 1
        worker = WorkerThread(self, self._numbered)
        self._threads.append(worker)
        self._idle += 1  # it will claim work as soon as it runs
        worker.start()
        return worker

    def _grow_locked(self) -> None:
        """Add threads while work waits that no thread will take (caller holds the lock)."""
        while self._backlog > self._idle and self._spawn_locked() is not None:
            pass

    def put(self, conn: HttpConnection) -> bool:
        """Queue a connection for a worker; False when the queue is full."""
        with self._lock:
            waiting = self._backlog - self._idle
            if waiting >= self.queue_size:
                return False
            self._backlog += 1
            self._queue.put(conn)
            self._grow_locked()
        if waiting > 0:
            self._note_waiting(waiting + 1)
        return True

    def _note_waiting(self, depth: int) -> None:
        now = time.monotonic()
        if now - self._last_note < QUEUE_LOG_INTERVAL:
            return
        self._last_note = now
        queue_log.info(
            "%d requests waiting for a thread (%d of %d busy, max %d)",
            depth,
            self.busy,
            len(self._threads),
            self.max,
        )

    def get(self, worker: WorkerThread) -> HttpConnection | None:
        """The next connection for ``worker``; None tells it to leave."""
        while True:
            try:
                if len(self._threads) <= self.min:
                    conn = self._queue.get()
                else:
                    conn = self._queue.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if len(self._threads) > self.min and self._backlog <= self._idle - 1:
                        self._retire_locked(worker)
                        self._idle -= 1
                        return None
                continue
            if conn is None:
                return None  # stop(): leave() keeps the count
            with self._lock:
                self._backlog -= 1
                self._idle -= 1
                worker.busy = True
            return conn

    def done(self, worker: WorkerThread) -> None:
        with self._lock:
            worker.busy = False
            self._idle += 1

    def leave(self, worker: WorkerThread) -> None:
        """A thread is ending (told to, or by accident): keep the counts true."""
        with self._lock:
            if worker not in self._threads:
                return  # retired already
            self._retire_locked(worker)
            if worker.busy:  # it died mid-work; a busy thread is not counted idle
                worker.busy = False
                self._idle += 1
            self._idle -= 1
            if len(self._threads) < self.min:
                self._spawn_locked()
            self._grow_locked()

    def _retire_locked(self, worker: WorkerThread) -> None:
        self._threads.remove(worker)
        self._retired_served += worker.served

    def stall(self, worker: WorkerThread | None) -> None:
        """``worker`` waits on a client that does not read: let the pool replace it."""
        if worker is None:
            return
        with self._lock:
            worker.stalled = True
            self._stalled += 1
            self._grow_locked()

    def unstall(self, worker: WorkerThread | None) -> None:
        if worker is None:
            return
        with self._lock:
            worker.stalled = False
            self._stalled -= 1

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def busy(self) -> int:
        return sum(1 for worker in list(self._threads) if worker.busy)

    @property
    def stalled(self) -> int:
        return self._stalled

    @property
    def idle(self) -> int:
        return len(self._threads) - self.busy

    @property
    def served(self) -> int:
        with self._lock:
            return self._retired_served + sum(w.served for w in self._threads)

    @property
    def qsize(self) -> int:
        return max(0, self._backlog - self._idle)

    def in_flight(self) -> list[HttpConnection]:
        return [conn for w in list(self._threads) if (conn := w.conn) is not None]

    def stop(self, deadline: Callable[[], float]) -> list[HttpConnection]:
        """Let queued and running work finish until ``deadline()`` (a monotonic time, which may
        move earlier while this waits); return the connections of threads still at work
        after it (the caller closes them)."""
        with self._lock:
            threads = list(self._threads)
            self.min = 0
            self._stopping = True
        for _ in threads:
            self._queue.put(None)
        for worker in threads:
            while worker.is_alive() and time.monotonic() < deadline():
                worker.join(min(STOP_SLICE, max(0.0, deadline() - time.monotonic())))
        return [w.conn for w in threads if w.is_alive() and w.conn is not None]
