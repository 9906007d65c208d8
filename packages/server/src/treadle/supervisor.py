"""``treadle --workers N``: a supervisor that keeps N worker processes serving.

One treadle process uses about one core (the GIL); N processes can use N. The supervisor binds
every listening socket itself and starts each worker as ``python -m treadle`` with the same
command line, the sockets inherited (``fd://N`` binds) and a pipe back to the supervisor
(``supervised.py`` is the worker's side). Each worker is a whole treadle: acceptor, poller and
thread pool. The supervisor never imports the app, so a worker started after a change on disk
runs the new code, and it serves nothing itself: it only starts, watches and stops workers.

Why one shared listening socket rather than ``SO_REUSEPORT`` (a socket per worker): with a
shared socket there is one accept queue, and whichever worker polls first takes the next
connection, so a busy or stopping worker takes none; a worker that stops or dies loses nothing
queued, because the supervisor and the other workers still hold the socket, which is what lets
a reload refuse no connection. With ``SO_REUSEPORT`` Linux hashes each connection to one
worker's queue whatever that worker is doing, and resets what is queued at a worker whose
socket closes. The shared socket also works unchanged for Unix sockets and systemd's sockets.

The workers' lives::

    BOOTING   started; becomes READY when it writes "R" (listening, app imported)
    READY     serving; becomes RETIRING when it writes "M" (--max-requests reached)
    RETIRING  serving while its replacement boots; stopped once the replacement is ready
    DRAINING  sent SIGTERM (or SIGINT): serving what has arrived; SIGKILL past its deadline

Signals to the supervisor:

- SIGTERM: every worker stops gracefully (within ``--graceful-timeout``), then the supervisor;
  SIGINT, or a second signal, stops every worker at once.
- SIGHUP: reload. A new generation of workers starts; once all are ready, the old ones drain.
  A new worker that fails to start (an import error) cancels the reload: the old workers go on.
- SIGTTIN / SIGTTOU: one worker more / one fewer (at least one).

A worker that exits unbidden is logged with its exit status and replaced after a back-off that
doubles from 0.1 s up to 10 s with each failure, and starts again from 0.1 s once a worker has
served for ``STABLE_AFTER``. A worker that cannot start while the supervisor starts ends the
supervisor, with the worker's exit status (2 for an app that does not import), except under
``--reload``, which waits for the next change instead.

With ``NOTIFY_SOCKET`` set the supervisor (not the workers) tells systemd ``READY=1`` once
every worker is ready, ``RELOADING=1`` and ``READY=1`` around a reload, ``STOPPING=1``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from types import FrameType

from . import __version__, systemd
from .reloader import Watcher
from .server import (
    BACKLOG,
    BindAddr,
    bind_scheme,
    describe_socket,
    file_identity,
    open_listener,
    parse_bind_addr,
    remove_unix_socket,
)
from .supervised import ENV_VAR, READY, RECYCLE, StatsBoard

error_log = logging.getLogger("treadle.error")

# A worker not ready this long after it started is killed (and counts as a failed start).
BOOT_TIMEOUT = 60.0
# After its graceful timeout a stopping worker has this much longer before SIGKILL.
KILL_MARGIN = 5.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
# A worker that served this long before it died resets the back-off.
STABLE_AFTER = 5.0
# The supervisor looks at its workers at least this often.
TICK = 0.5


class State(Enum):
    BOOTING = 1
    READY = 2
    RETIRING = 3
    DRAINING = 4


@dataclass(eq=False, slots=True)
class Worker:
    number: int
    generation: int
    proc: subprocess.Popen[bytes]
    pipe: int  # read end; "R" ready, "M" recycle me, EOF when the worker is gone
    slot: int  # its place on the stats board
    started: float
    state: State = State.BOOTING
    ready_at: float = 0.0
    deadline: float = 0.0  # DRAINING: SIGKILL after this
    stop_signal: int = 0  # the last stop signal sent

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __str__(self) -> str:
        return f"worker {self.number} (pid {self.pid})"


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass(frozen=True, slots=True)
class Listener:
    sock: socket.socket
    scheme: str
    unix_path: str | None  # a socket file made here, removed at the end if still ours
    identity: tuple[int, int, int] | None


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        binds: Sequence[BindAddr],
        *,
        workers: int = 1,
        graceful_timeout: float = 10.0,
        tls: bool = False,
        backlog: int = BACKLOG,
        unix_socket_mode: int | None = None,
        stats: bool = False,
        max_requests: int | None = None,
        max_requests_jitter: int = 0,
        watch: Sequence[str] | None = None,
        cwd: str | None = None,
        command: Sequence[str] = (sys.executable, "-m", "treadle"),
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> None:
        """``argv`` is the command line each worker gets (after ``command``); ``watch`` the
        directories ``--reload`` watches (None: no reloading); ``cwd`` the workers' directory."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.argv = list(argv)
        self.command = list(command)
        self.binds = list(binds)
        self.target = workers
        self.graceful_timeout = graceful_timeout
        self.tls = tls
        self.backlog = backlog
        self.unix_socket_mode = unix_socket_mode
        self.stats = stats
        self.max_requests = max_requests
        self.max_requests_jitter = max_requests_jitter
        self.watch = list(watch) if watch is not None else None
        self.cwd = cwd or os.getcwd()
        self.boot_timeout = boot_timeout
        self.listeners: list[Listener] = []
        self.workers: list[Worker] = []
        self.generation = 1
        self.live_generation = 0  # the last generation that had every worker ready
        self._numbers = 0
        self._failures = 0
        self._spawn_after = 0.0
        self._stopping = False
        self._status = 0
        self._signals: list[int] = []
        self._board: StatsBoard | None = None
        self._watcher: Watcher | None = None
        self._selector = selectors.DefaultSelector()
        self._on_ready: Callable[[], None] | None = None

    # -- the main loop -------------------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Bind, start the workers, supervise until a stop; the exit status. ``on_ready`` is
        called once every worker is ready (e.g. to write a pid file). ``OSError`` when an
        address cannot be had."""
        self._on_ready = on_ready
        self._listen()
        try:
            with self._signals_handled():
                if self.stats:
                    self._board = StatsBoard.create()
                if self.watch is not None:
                    self._watcher = Watcher(self.watch)
                    self._watcher.start()
                    self._selector.register(self._watcher, selectors.EVENT_READ)
                    error_log.info(
                        "--reload: watching %s for *.py changes (%s)",
                        ", ".join(self._watcher.dirs),
                        self._watcher.kind,
                    )
                where = ", ".join(describe_socket(lsn.sock, lsn.scheme) for lsn in self.listeners)
                error_log.info(
                    "treadle %s listening on %s (supervisor, pid %d): starting %d worker%s",
                    __version__,
                    where,
                    os.getpid(),
                    self.target,
                    "" if self.target == 1 else "s",
                )
                return self._loop()
        finally:
            self._kill_all()
            self._close()

    def _loop(self) -> int:
        while not (self._stopping and not self.workers):
            for key, _ in self._selector.select(self._timeout()):
                if key.fileobj is self._watcher:
                    self._changed()
                elif isinstance(key.data, Worker):
                    self._read_pipe(key.data)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(key.fd, 512)  # the signal wake-up pipe
            self._take_signals()
            self._reap()
            if self._stopping:
                self._enforce_deadlines()
            else:
                self._maintain()
        error_log.info("supervisor: every worker has stopped")
        return self._status

    def _timeout(self) -> float:
        """Until the next look: sooner when a back-off ends before the next tick."""
        wait = self._spawn_after - time.monotonic()
        return wait if not self._stopping and 0 < wait < TICK else TICK

    # -- signals -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals_handled(self) -> Iterator[None]:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._selector.register(read, selectors.EVENT_READ)
        handled = (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGCHLD,
        )
        previous = {signum: signal.signal(signum, self._on_signal) for signum in handled}
        old_wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                if handler is not None:
                    signal.signal(signum, handler)
            self._selector.unregister(read)
            os.close(read)
            os.close(write)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only noted here; the loop acts on it (and logs) when the wake-up pipe turns readable.
        if signum != signal.SIGCHLD:
            self._signals.append(signum)

    def _take_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if signum == signal.SIGTERM and not self._stopping:
                error_log.info(
                    "SIGTERM: stopping %d workers (up to %g s for in-flight requests)",
                    len(self.workers),
                    self.graceful_timeout,
                )
                self._stop(quick=False)
            elif signum in (signal.SIGTERM, signal.SIGINT):
                error_log.info("%s: stopping every worker now", name)
                self._stop(quick=True)
            elif self._stopping:
                continue
            elif signum == signal.SIGHUP:
                error_log.info("SIGHUP: reloading: starting %d new worker(s)", self.target)
                self._reload()
            elif signum == signal.SIGTTIN:
                self.target += 1
                error_log.info("SIGTTIN: %d workers", self.target)
            elif signum == signal.SIGTTOU:
                self.target = max(1, self.target - 1)
                error_log.info("SIGTTOU: %d workers", self.target)

    def _changed(self) -> None:
        assert self._watcher is not None
        changed = self._watcher.take()
        if changed and not self._stopping:
            shown = ", ".join(os.path.relpath(path) for path in changed[:5])
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            error_log.info("--reload: %s changed%s: reloading", shown, more)
            self._reload()

    # -- starting, reloading, stopping ---------------------------------------------------------

    def _reload(self) -> None:
        """A new generation: its workers start now; the others stop once it is all ready."""
        if self.live_generation:
            systemd.notify("RELOADING=1")
        self.generation += 1
        self._failures = 0
        self._spawn_after = 0.0
        for worker in self.workers:
            if worker.state is State.BOOTING:
                self._drain(worker)  # of a generation that will never serve

    def _stop(self, quick: bool, status: int = 0) -> None:
        if not self._stopping:
            systemd.notify("STOPPING=1")
            self._status = status
        self._stopping = True
        signum = signal.SIGINT if quick else signal.SIGTERM
        for worker in self.workers:
            self._drain(worker, signum)

    def _drain(self, worker: Worker, signum: int = signal.SIGTERM) -> None:
        """Tell ``worker`` to stop: SIGTERM to finish what it has, SIGINT to stop at once
        (SIGKILL while it boots)."""
        if worker.stop_signal in (signum, signal.SIGINT, signal.SIGKILL):
            return
        if worker.state is State.BOOTING:
            # Not accepting yet (it says "R" just before it does): nothing to lose.
            signum = signal.SIGKILL
        quick = signum != signal.SIGTERM
        deadline = time.monotonic() + (0.0 if quick else self.graceful_timeout) + KILL_MARGIN
        worker.deadline = min(worker.deadline, deadline) if worker.deadline else deadline
        worker.state = State.DRAINING
        worker.stop_signal = signum
        with contextlib.suppress(ProcessLookupError):
            worker.proc.send_signal(signum)

    def _spawn(self) -> None:
        self._numbers += 1
        number = self._numbers
        read, write = os.pipe()
        taken = {w.slot for w in self.workers}
        slot = next(i for i in range(len(taken) + 1) if i not in taken)
        limit = None
        if self.max_requests is not None:
            limit = self.max_requests + random.randint(0, self.max_requests_jitter)
        spec = {
            "fds": [[lsn.sock.fileno(), lsn.scheme] for lsn in self.listeners],
            "pipe": write,
            "stats_fd": self._board.fd if self._board is not None else None,
            "slot": slot,
            "ppid": os.getpid(),
            "number": number,
            "max_requests": limit,
        }
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)  # the supervisor speaks to systemd, not the workers
        env[ENV_VAR] = json.dumps(spec)
        fds = tuple(lsn.sock.fileno() for lsn in self.listeners)
        if self._board is not None:
            fds += (self._board.fd,)
        try:
            proc = subprocess.Popen(
                [*self.command, *self.argv], pass_fds=(*fds, write), env=env, cwd=self.cwd
            )
        except OSError as exc:
            os.close(read)
            self._back_off(None, f"worker {number} cannot be started: {exc}")
            return
        finally:
            os.close(write)  # the worker's end
        os.set_blocking(read, False)
        worker = Worker(number, self.generation, proc, read, slot, time.monotonic())
        self.workers.append(worker)
        self._selector.register(read, selectors.EVENT_READ, worker)
        error_log.debug("%s started", worker)

    def _read_pipe(self, worker: Worker) -> None:
        try:
            data = os.read(worker.pipe, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(worker.pipe)  # gone; _reap() finds out how
            return
        for message in (data[i : i + 1] for i in range(len(data))):
            if message == READY and worker.state is State.BOOTING:
                worker.state = State.READY
                worker.ready_at = time.monotonic()
                error_log.info("%s ready", worker)
            elif message == RECYCLE and worker.state is State.READY:
                worker.state = State.RETIRING
                error_log.info("%s reached --max-requests: starting its replacement", worker)

    # -- keeping the numbers right -------------------------------------------------------------

    def _maintain(self) -> None:
        now = time.monotonic()
        current = [
            w
            for w in self.workers
            if w.generation == self.generation and w.state in (State.BOOTING, State.READY)
        ]
        if len(current) < self.target and now >= self._spawn_after:
            for _ in range(self.target - len(current)):
                self._spawn()
        elif len(current) > self.target:  # SIGTTOU: the newest start first, then the oldest
            extra = sorted(current, key=lambda w: (w.state is State.READY, w.started))
            for worker in extra[: len(current) - self.target]:
                self._drain(worker)
        ready = [w for w in current if w.state is State.READY]
        if len(ready) >= self.target:
            for worker in self.workers:
                if worker.state is State.RETIRING or worker.generation != self.generation:
                    self._drain(worker)
            if self.live_generation != self.generation:
                self._now_live(ready)
        self._enforce_deadlines()

    def _now_live(self, ready: list[Worker]) -> None:
        first = not self.live_generation
        self.live_generation = self.generation
        pids = ", ".join(str(w.pid) for w in ready)
        workers = f"{len(ready)} worker{'' if len(ready) == 1 else 's'}"
        if first:
            error_log.info("%s ready (pids %s)", workers, pids)
        else:
            error_log.info(
                "reloaded: %s of the new code ready (pids %s); the old stop", workers, pids
            )
        where = ", ".join(describe_socket(lsn.sock, lsn.scheme) for lsn in self.listeners)
        systemd.notify(f"READY=1\nSTATUS={len(ready)} workers listening on {where}")
        if first and self._on_ready is not None:
            try:
                self._on_ready()
            except Exception as exc:
                error_log.error("supervisor: %s", exc)
                self._stop(quick=False, status=1)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.stop_signal == signal.SIGKILL:
                continue  # on its way out
            if worker.state is State.BOOTING and now - worker.started > self.boot_timeout:
                error_log.error("%s not ready after %g s: killed", worker, self.boot_timeout)
                self._kill(worker)
            elif worker.state is State.DRAINING and now > worker.deadline:
                error_log.warning("%s has not stopped in time: killed", worker)
                self._kill(worker)

    def _kill(self, worker: Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            worker.proc.kill()
        worker.stop_signal = signal.SIGKILL

    def _reap(self) -> None:
        for worker in list(self.workers):
            status = worker.proc.poll()
            if status is None:
                continue
            self._forget(worker)
            how = exit_description(status)
            if worker.state is State.DRAINING:
                error_log.info("%s stopped%s", worker, "" if status == 0 else f": {how}")
            elif self._stopping:
                error_log.info("%s %s", worker, how)
            elif worker.state is State.BOOTING:
                self._failed_start(worker, status, how)
            else:
                self._back_off(worker, f"{worker} {how} while serving")

    def _failed_start(self, worker: Worker, status: int, how: str) -> None:
        what = f"{worker} {how} before it was ready"
        if worker.generation != self.live_generation and self.live_generation:
            error_log.error("reload failed: %s; the workers already serving go on", what)
            systemd.notify("READY=1")
            self.generation = self.live_generation
            for other in self.workers:
                if other.generation != self.generation:
                    self._drain(other)
        elif self.live_generation:
            self._back_off(worker, what)
        elif self.watch is not None:
            error_log.error("%s: waiting for a change to try again", what)
            self._spawn_after = float("inf")
            for other in self.workers:
                if other.state is State.BOOTING:
                    self._drain(other)
        else:
            error_log.error("%s: stopping", what)
            self._stop(quick=True, status=status if 0 < status < 256 else 1)

    def _back_off(self, worker: Worker | None, what: str) -> None:
        now = time.monotonic()
        if worker is not None and worker.ready_at and now - worker.ready_at >= STABLE_AFTER:
            self._failures = 0
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self._failures)
        self._failures += 1
        self._spawn_after = max(self._spawn_after, now + delay)
        error_log.warning("%s; starting another in %.1f s", what, delay)

    def _forget(self, worker: Worker) -> None:
        self.workers.remove(worker)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.pipe)
        with contextlib.suppress(OSError):
            os.close(worker.pipe)
        if self._board is not None:
            with contextlib.suppress(OSError):
                self._board.clear(worker.slot)

    # -- sockets and the end -------------------------------------------------------------------

    def _listen(self) -> None:
        try:
            for addr in self.binds:
                scheme = bind_scheme(addr) or ("https" if self.tls else "http")
                sock = open_listener(addr, self.backlog, self.unix_socket_mode)
                family, where = parse_bind_addr(addr)
                path = where if family == socket.AF_UNIX else None
                identity = file_identity(path) if path is not None else None
                self.listeners.append(Listener(sock, scheme, path, identity))
        except OSError:
            self._close()
            raise

    def _kill_all(self) -> None:
        """Whatever is left when the loop ends early (an exception): no orphan workers."""
        for worker in list(self.workers):
            self._kill(worker)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(KILL_MARGIN)
            self._forget(worker)

    def _close(self) -> None:
        for lsn in self.listeners:
            lsn.sock.close()
            if lsn.unix_path is not None and lsn.identity is not None:
                remove_unix_socket(lsn.unix_path, lsn.identity)
        self.listeners = []
        if self._watcher is not None:
            self._selector.unregister(self._watcher)
            self._watcher.close()
            self._watcher = None
        if self._board is not None:
            self._board.close()
            self._board = None
        self._selector.close()
