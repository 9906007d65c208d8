"""CRLF flood: one client sends ``\\r\\n`` x 32,768 (64 KiB of empty lines) again and again;
then a TLS ClientHello sent to the plain port.

RFC 9112 §2.2 lets a server ignore "at least one" empty line before a request line; it does
not ask it to ignore unboundedly many. A server that skips them without counting them toward
the head, or rescans its whole buffer on every read, keeps the connection (and a core) busy for
as long as the client likes. It should refuse it (400, or a close) after a bounded number.
Likewise bytes that can never start a request line (TLS's 0x16) need not wait for the head
deadline.
"""

from __future__ import annotations

import socket
import time

from ..harness import Outcome, Target
from ._sockets import close_all, peer_closed

KIB = 1024
MIB = 1024 * 1024
BLOCK = b"\r\n" * 32_768
REFUSE_BOUND = 2.0
# A TLS 1.2 ClientHello's first bytes: a client that speaks TLS to the plain port. No request
# line starts with 0x16, so a server can refuse it at once instead of at its head deadline.
TLS_HELLO = bytes.fromhex("160301002e0100002a0303") + bytes(32) + bytes.fromhex("000002002f0100")
TLS_REFUSE_BOUND = 1.0


def _flood_one(address: tuple[str, int], until: float) -> tuple[float | None, int]:
    """Flood one connection until the server refuses it or ``until``; (seconds until it was
    refused or None, bytes the server took)."""
    sock = socket.create_connection(address, timeout=1.0)
    sent = 0
    started = time.monotonic()
    try:
        while time.monotonic() < until:
            try:
                sent += sock.send(BLOCK)
            except TimeoutError:
                pass  # the server is not reading: still open
            except OSError:
                return time.monotonic() - started, sent
            if peer_closed(sock):
                return time.monotonic() - started, sent
        return None, sent
    finally:
        close_all([sock], reset=True)


def crlf_flood(
    target: Target, seconds: float = 8.0, connections: int = 500, pause: float = 0.05
) -> Outcome:
    """Flood for ``seconds``: when the server refuses a flooding connection, the attacker opens
    another ``pause`` seconds later (at most ``connections``), so the probe meets a flood the
    whole time."""
    refused: list[float] = []
    held: float | None = None
    sent = 0
    end = time.monotonic() + seconds
    with target.probe() as probe:
        while time.monotonic() < end and len(refused) < connections:
            after, taken = _flood_one(target.address, end)
            sent += taken
            if after is None:
                held = seconds
                break
            refused.append(after)
            time.sleep(pause)  # the attacker's pace
    outcome = Outcome(probe=probe.figures)
    slowest = max(refused, default=0.0)
    if held is not None:
        outcome.notes.append(
            f"{len(refused)} flooding connections refused, then one still open at the end; "
            f"{sent / MIB:.1f} MiB of CRLF sent"
        )
    else:
        outcome.notes.append(
            f"{len(refused)} flooding connections, each refused within {slowest:.2f} s; "
            f"{sent / MIB:.1f} MiB of CRLF sent"
        )
    outcome.check(
        f"every flooding connection is refused within {REFUSE_BOUND:g} s",
        held is None and slowest <= REFUSE_BOUND,
        "one open at the end" if held is not None else f"slowest {slowest:.2f} s",
    )
    tls_refused = _refused_after(target, TLS_HELLO, TLS_REFUSE_BOUND + 1.0)
    outcome.notes.append(
        "a TLS ClientHello was "
        + ("not refused" if tls_refused is None else f"refused after {tls_refused:.2f} s")
    )
    outcome.check(
        f"a TLS ClientHello to the plain port is refused within {TLS_REFUSE_BOUND:g} s",
        tls_refused is not None and tls_refused <= TLS_REFUSE_BOUND,
    )
    outcome.check_probe()
    return outcome


def _refused_after(target: Target, data: bytes, timeout: float) -> float | None:
    """Seconds until the server answers or closes after ``data``; None if it waits longer."""
    with socket.create_connection(target.address, timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        try:
            sock.recv(4096)
        except TimeoutError:
            return None
        except OSError:
            pass
        return time.monotonic() - started
