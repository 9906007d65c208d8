"""Slow readers: clients that never read a large response, and one that reads slowly but
steadily.

Never-readers: one more client than the server has threads asks for a huge streamed response
and reads nothing (with a small receive buffer, so the server's sends block early). A server
whose worker waits on the send is out of workers; the probe shows it.

The steady reader reads a streamed response at ~50 KiB/s, a slow mobile link: it is making
progress the whole time, so it must get every byte. A send-stall timer that waits for the
socket to be writable (which Linux reports only after much of a large send buffer drains)
instead of measuring bytes sent cuts it off.
"""

from __future__ import annotations

import select
import socket
import time

from ..harness import Outcome, Target
from ..servers import THREADS
from ..wire import Reader, WireError, request
from ._sockets import close_all, open_many, send_some

KIB = 1024
MIB = 1024 * 1024
READER_RSS_BOUND_MIB = 64.0


def never_read(
    target: Target, clients: int = 6, size: int = 256 * MIB, seconds: float = 6.0
) -> Outcome:
    socks, failed = open_many(target.address, clients, rcvbuf=4096)
    try:
        for sock in socks:
            send_some(sock, request("GET", f"/stream?bytes={size}"))
        # The probe starts once the server is answering as many never-readers as it has
        # threads (their responses have begun to arrive): from then on those sends can only
        # block. The hold ends before a 10 s send timeout could free the workers.
        answering = _wait_readable(socks, min(len(socks), THREADS), 3.0)
        with target.probe() as probe:
            time.sleep(seconds)  # the attack is the never-readers' silence
    finally:
        close_all(socks, reset=True)
    usage = target.monitor.usage()
    outcome = Outcome(probe=probe.figures)
    outcome.notes.append(
        f"{len(socks)} clients ({failed} could not connect) never read {size // MIB} MiB each; "
        f"{answering} of them were being answered when the probe started"
    )
    outcome.check_probe()
    outcome.check(
        f"RSS growth <= {READER_RSS_BOUND_MIB:g} MiB (output buffered per slow reader is bounded)",
        usage.rss_growth_mib <= READER_RSS_BOUND_MIB,
        f"{usage.rss_growth_mib:.0f} MiB",
    )
    return outcome


def _wait_readable(socks: list[socket.socket], want: int, timeout: float) -> int:
    """Wait (bounded) until ``want`` of the sockets have something to read; how many do."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    waiting = len(socks)
    deadline = time.monotonic() + timeout
    while len(socks) - waiting < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            poller.unregister(fd)
            waiting -= 1
    return len(socks) - waiting


def steady_reader(
    target: Target, size: int = 8 * MIB, rate: int = 50 * KIB, slow_for: float = 15.0
) -> Outcome:
    """Read ``/stream?bytes=size`` at ``rate`` bytes per second (paced every 100 ms) for
    ``slow_for`` seconds, then the rest at full speed.

    A bounded stand-in for reading all of it slowly: the server's socket buffers take ~4 MiB
    on loopback, so a server that cuts a slow reader off does it during the slow phase, and
    the client sees the truncation (EOF before ``size``) once it drains those buffers."""
    sock = socket.create_connection(target.address, timeout=5.0)
    received = 0
    ended = "complete"
    started = time.monotonic()
    probe_figures = None
    try:
        sock.sendall(request("GET", f"/stream?bytes={size}", close=True))
        reader = Reader(sock)
        status, _ = reader.read_head(started + 10.0)
        if status != 200:
            raise WireError("garbled", f"status {status}")
        received = len(reader.buf)
        sock.settimeout(10.0)
        with target.probe(interval=0.25) as probe:
            while received < size:
                elapsed = time.monotonic() - started
                allowed = size
                if elapsed < slow_for:
                    allowed = int(elapsed * rate) - received
                    if allowed <= 0:
                        time.sleep(0.1)  # the reader's pace
                        continue
                try:
                    data = sock.recv(min(allowed, 256 * KIB))
                except TimeoutError:
                    ended = "stalled 10 s"
                    break
                except OSError as exc:
                    ended = f"reset ({exc.strerror or exc})"
                    break
                if not data:
                    ended = "EOF"
                    break
                received += len(data)
        probe_figures = probe.figures
    except (OSError, WireError) as exc:
        ended = f"failed: {exc}"
    finally:
        close_all([sock])
    elapsed = time.monotonic() - started
    outcome = Outcome(probe=probe_figures, sent=1, lost=0 if received >= size else 1)
    outcome.notes.append(
        f"received {received / KIB:.0f} of {size / KIB:.0f} KiB in {elapsed:.1f} s ({ended})"
    )
    outcome.check(
        "the steady reader gets the whole response",
        received >= size,
        f"{received} of {size} bytes, {ended} after {elapsed:.1f} s",
    )
    if probe_figures is not None:
        outcome.check_probe()
    return outcome
