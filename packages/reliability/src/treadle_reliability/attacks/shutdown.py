"""SIGTERM under load: nothing that had fully arrived may be lost, and the process must stop.

100 keep-alive connections are each served once, 100 more are opened fresh; then all 200 send
one request (``/sleep?ms=20``, so the pool is busy and requests queue) and the server gets
SIGTERM the moment the last byte is handed to loopback, which delivers it to the server's
socket at once. Every one of those requests had fully arrived before the signal, so each must
get a complete response (``Connection: close`` is fine, a reset is not), and the process must
exit within its graceful timeout.

A second figure: SIGTERM sent the moment a freshly started server accepts connections must
stop it too (a signal handler's "stop" overwritten by the end of start-up loses it).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..harness import Outcome, Target
from ..servers import ServerSpec, free_port, stop
from ..wire import Reader, WireError, request
from ._sockets import close_all, open_many

STOP_BOUND = 15.0  # treadle's default graceful timeout is 10 s
EARLY_STOP_BOUND = 5.0


def sigterm(
    target: Target,
    keep_alive: int = 100,
    fresh: int = 100,
    sleep_ms: int = 20,
    early_tries: int = 3,
) -> Outcome:
    server = target.server
    data = request("GET", f"/sleep?ms={sleep_ms}")
    warm, _ = open_many(target.address, keep_alive, timeout=2.0)
    warm_readers: list[tuple[socket.socket, Reader]] = []
    for sock in warm:
        reader = Reader(sock)
        with contextlib.suppress(OSError, WireError):
            sock.sendall(request("GET", "/hello"))
            reader.read_response(time.monotonic() + 5.0)
            warm_readers.append((sock, reader))
    new, _ = open_many(target.address, fresh, timeout=2.0)
    pending: list[tuple[str, socket.socket, Reader]] = []
    try:
        for kind, pairs in (("keep-alive", warm_readers), ("new", [(s, Reader(s)) for s in new])):
            for sock, reader in pairs:
                with contextlib.suppress(OSError):
                    sock.sendall(data)
                    pending.append((kind, sock, reader))
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        deadline = signalled + STOP_BOUND
        lost = {"keep-alive": 0, "new": 0}
        why: dict[str, int] = {}
        closing = 0
        for kind, _, reader in pending:
            try:
                response = reader.read_response(deadline)
            except WireError as exc:
                lost[kind] += 1
                why[exc.reason] = why.get(exc.reason, 0) + 1
                continue
            closing += response.closes
    finally:
        close_all(warm + new, reset=True)
    exited_after: float | None = None
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(max(0.1, deadline - time.monotonic()))
        exited_after = time.monotonic() - signalled
    early = _early_sigterm(server.spec, server.log.parent, early_tries)
    total_lost = sum(lost.values())
    outcome = Outcome(sent=len(pending), lost=total_lost)
    outcome.notes.append(
        f"{len(pending)} requests in flight at SIGTERM: lost {lost['keep-alive']} on keep-alive "
        f"and {lost['new']} on new connections{f' {why}' if why else ''}; {closing} answers said "
        "Connection: close; "
        + (
            f"exited after {exited_after:.1f} s with status {server.proc.returncode}"
            if exited_after is not None
            else f"still running {STOP_BOUND:g} s after SIGTERM"
        )
    )
    outcome.notes.append(f"SIGTERM at start-up stopped the server in {early}/{early_tries} tries")
    outcome.check("no request that had arrived is lost", total_lost == 0, f"{total_lost} lost")
    outcome.check(
        f"the process exits within {STOP_BOUND:g} s of SIGTERM",
        exited_after is not None,
        "still running" if exited_after is None else f"{exited_after:.1f} s",
    )
    outcome.check(
        f"SIGTERM right at start-up stops the server within {EARLY_STOP_BOUND:g} s",
        early == early_tries,
        f"{early}/{early_tries}",
    )
    return outcome


def _early_sigterm(spec: ServerSpec, logdir: Path, tries: int) -> int:
    """Start the server ``tries`` times; SIGTERM it the moment its port accepts; how many of
    those stopped within the bound."""
    stopped = 0
    for attempt in range(tries):
        port = free_port()
        with (logdir / f"{spec.name}-early-{attempt}-{port}.log").open("wb") as out:
            proc = subprocess.Popen(
                spec.command(port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            if _accepts_soon(proc, port, 30.0):
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(EARLY_STOP_BOUND)
                    stopped += 1
        finally:
            stop(proc, grace=0.5)
    return stopped


def _accepts_soon(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Connect in a tight loop (a refused connect costs microseconds) so that the signal
    lands as close as possible after the server starts listening."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.001)
    return False
