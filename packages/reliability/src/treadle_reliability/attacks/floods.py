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


def crlf_flood(target: Target, seconds: float = 8.0) -> Outcome:
    sock = socket.create_connection(target.address, timeout=1.0)
    sent = 0
    closed_after: float | None = None
    started = time.monotonic()
    try:
        with target.probe() as probe:
            while (elapsed := time.monotonic() - started) < seconds:
                try:
                    sent += sock.send(BLOCK)
                except TimeoutError:
                    pass  # the server is not reading: still open
                except OSError:
                    closed_after = elapsed
                    break
                if peer_closed(sock):
                    closed_after = time.monotonic() - started
                    break
    finally:
        close_all([sock], reset=True)
    outcome = Outcome(probe=probe.figures)
    if closed_after is None:
        outcome.notes.append(f"still open after {seconds:g} s, {sent / MIB:.1f} MiB of CRLF taken")
    else:
        outcome.notes.append(f"refused after {closed_after:.2f} s, {sent / KIB:.0f} KiB of CRLF")
    outcome.check(
        f"the flooding connection is refused within {REFUSE_BOUND:g} s",
        closed_after is not None and closed_after <= REFUSE_BOUND,
        "open at the end" if closed_after is None else f"{closed_after:.2f} s",
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
