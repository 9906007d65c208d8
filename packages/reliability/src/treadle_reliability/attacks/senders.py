"""Slow senders: a head that never ends (slowloris) and bodies that never end (slow uploads).

Both open their connections first, then keep them alive by trickling a few bytes per second
while the probe asks for ``/hello`` on fresh connections. A server that gives each of these
connections a thread, or a connection slot it has too few of, leaves the probe waiting; one
that buffers every body in memory shows it in RSS.
"""

from __future__ import annotations

import socket
import time

from ..harness import Outcome, Target
from ..wire import request
from ._sockets import close_all, open_many, send_some

KIB = 1024
MIB = 1024 * 1024
# Slow uploads: 300 connections x 480 KiB (each just under the 512 KiB at which treadle and
# waitress spool to disk) hold ~140 MiB of body. A server that keeps every partial body in
# memory grows by at least what it has received; one with an in-memory budget for uploads
# (treadle's is 64 MiB) grows by the budget plus its per-connection costs. The check allows
# this share of the body bytes the server took.
UPLOAD_RSS_SHARE = 0.8


def _trickle(socks: list[socket.socket], payload: bytes, seconds: float, every: float) -> int:
    """Send ``payload`` to each still-open socket every ``every`` seconds; how many the server
    closed."""
    closed: set[int] = set()
    end = time.monotonic() + seconds
    while True:
        for i, sock in enumerate(socks):
            if i not in closed and send_some(sock, payload) is None:
                closed.add(i)
        left = end - time.monotonic()
        if left <= 0:
            return len(closed)
        time.sleep(min(every, left))  # the trickle's pace


def slowloris(
    target: Target, connections: int = 1000, seconds: float = 8.0, every: float = 1.0
) -> Outcome:
    """``connections`` clients each send a request line, then one header byte per ``every``
    seconds: heads that never end."""
    socks, failed = open_many(target.address, connections)
    try:
        for sock in socks:
            send_some(sock, b"GET /hello HTTP/1.1\r\nHost: reliability\r\nX-Slow: ")
        with target.probe() as probe:
            closed = _trickle(socks, b"a", seconds, every)
    finally:
        close_all(socks, reset=True)
    outcome = Outcome(probe=probe.figures)
    outcome.notes.append(
        f"{len(socks)} connections held ({failed} could not connect), "
        f"{closed} closed by the server within {seconds:g} s"
    )
    outcome.check_probe()
    return outcome


def slow_bodies(
    target: Target,
    connections: int = 300,
    upfront: int = 480 * KIB,
    declared: int = MIB,
    seconds: float = 8.0,
    every: float = 1.0,
) -> Outcome:
    """``connections`` uploads declare ``declared`` bytes, send ``upfront`` of them as fast as
    the server takes them, then 1 KiB per ``every`` seconds."""
    socks, failed = open_many(target.address, connections)
    head = request("POST", "/upload", length=declared)
    try:
        for sock in socks:
            send_some(sock, head)
        chunk = b"u" * (64 * KIB)
        sent = [0] * len(socks)
        fill_until = time.monotonic() + 3.0
        while time.monotonic() < fill_until and any(n < upfront for n in sent):
            progress = False
            for i, sock in enumerate(socks):
                if sent[i] < upfront:
                    n = send_some(sock, chunk[: upfront - sent[i]])
                    if n:
                        sent[i] += n
                        progress = True
            if not progress:
                time.sleep(0.05)  # every socket is full: let the server read
        with target.probe() as probe:
            closed = _trickle(socks, b"u" * KIB, seconds, every)
    finally:
        close_all(socks, reset=True)
    usage = target.monitor.usage()
    outcome = Outcome(probe=probe.figures)
    outcome.notes.append(
        f"{len(socks)} uploads held ({failed} could not connect), "
        f"{sum(sent) / MIB:.0f} MiB of body sent up front, {closed} closed by the server"
    )
    outcome.check_probe()
    bound = UPLOAD_RSS_SHARE * sum(sent) / MIB
    outcome.check(
        f"RSS growth <= {UPLOAD_RSS_SHARE:.0%} of the body bytes sent (an in-memory budget)",
        usage.rss_growth_mib <= bound,
        f"{usage.rss_growth_mib:.0f} MiB for {sum(sent) / MIB:.0f} MiB sent",
    )
    return outcome
