"""``ThreadPool`` and its ``WorkerThread``s: the seed's queue-and-workers shape.

The acceptor ``put()``s connections that hold a complete request; each ``WorkerThread`` loops
``get()`` -> ``conn.communicate()``. The queue is bounded: ``put()`` refuses when it is full
and the acceptor answers 503 with Retry-After. The pool starts ``min`` threads, adds one (up to
``max``) when work is queued and no thread is idle, and a thread above ``min`` that sat idle for
``idle_timeout`` seconds leaves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
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


class WorkerThread(threading.Thread):
    def __init__(self, pool: ThreadPool, number: int) -> None:
        super().__init__(name=f"treadle-worker-{number}", daemon=True)
        self.pool = pool
        self.busy = False
        self.served = 0  # written by this thread only, so no lock is needed
        self.conn: HttpConnection | None = None

    def run(self) -> None:
        pool = self.pool
        while True:
            conn = pool.get(self)
            if conn is None:
                return
            self.busy = True
            self.conn = conn
            try:
                self.served += conn.communicate()
            except Exception:
                error_log.exception("unexpected error serving %s", conn.remote_addr)
                conn.close()
            finally:
                self.conn = None
                self.busy = False


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
        self._numbered = 0
        self._last_note = 0.0
        self._retired_served = 0

    def start(self) -> None:
        for _ in range(self.min):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            if len(self._threads) >= self.max:
                return
            self._numbered += 1
            worker = WorkerThread(self, self._numbered)
            self._threads.append(worker)
        worker.start()

    def put(self, conn: HttpConnection) -> bool:
        """Queue a connection for a worker; False when the queue is full."""
        depth = self._queue.qsize()
        if depth >= self.queue_size:
            return False
        self._queue.put(conn)
        if depth:
            self._note_waiting(depth + 1)
        if len(self._threads) < self.max and self.busy + depth >= len(self._threads):
            self._spawn()
        return True

    def _note_waiting(self, depth: int) -> None:
        now = time.monotonic()
        if now - self._last_note < QUEUE_LOG_INTERVAL:
            return
        busy = self.busy
        if busy < len(self._threads):
            return  # a thread is free and just waking up: that is not saturation
        self._last_note = now
        queue_log.info(
            "%d requests waiting for a thread (%d of %d busy, max %d)",
            depth,
            busy,
            len(self._threads),
            self.max,
        )

    def get(self, worker: WorkerThread) -> HttpConnection | None:
        """The next connection for ``worker``; None tells it to leave."""
        if len(self._threads) <= self.min:
            return self._queue.get()
        try:
            return self._queue.get(timeout=self.idle_timeout)
        except queue.Empty:
            with self._lock:
                if len(self._threads) > self.min:
                    self._threads.remove(worker)
                    self._retired_served += worker.served
                    return None
            return self._queue.get()

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def busy(self) -> int:
        return sum(1 for worker in list(self._threads) if worker.busy)

    @property
    def idle(self) -> int:
        return len(self._threads) - self.busy

    @property
    def served(self) -> int:
        with self._lock:
            return self._retired_served + sum(w.served for w in self._threads)

    @property
    def qsize(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float) -> list[HttpConnection]:
        """Let queued and running work finish within ``timeout``; return the connections of
        threads still stuck after it (the caller closes them)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            threads = list(self._threads)
            self.min = 0
        for _ in threads:
            self._queue.put(None)
        for worker in threads:
            worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [w.conn for w in threads if w.is_alive() and w.conn is not None]
        with self._lock:
            self._threads = [w for w in self._threads if w.is_alive()]
        return stuck
