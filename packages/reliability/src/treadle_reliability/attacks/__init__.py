"""The attacks, in the order the doc shows them. Each is a bounded function of a ``Target``
(and its own scale parameters, defaulting to the full run's) returning an ``Outcome``."""

from __future__ import annotations

from ..harness import Attack
from ..servers import Launch
from .apps import base_exceptions
from .floods import crlf_flood
from .fuzz import wire_fuzz
from .readers import never_read, steady_reader
from .resources import FD_LIMIT, FSIZE_LIMIT, fd_exhaustion, spool_failure
from .senders import slow_bodies, slowloris
from .shutdown import sigterm
from .soak import soak

ATTACKS: dict[str, Attack] = {
    attack.name: attack
    for attack in (
        Attack(
            "slowloris",
            "Slowloris",
            "1,000 connections each send a request line and then one header byte a second, "
            "for 8 s; the probe asks for /hello on new connections meanwhile.",
            slowloris,
        ),
        Attack(
            "slow-bodies",
            "Slow request bodies",
            "300 POSTs declare 1 MiB, send 480 KiB at once and then 1 KiB a second, for 8 s "
            "(~140 MiB of partial bodies held).",
            slow_bodies,
        ),
        Attack(
            "never-read",
            "Clients that never read",
            "6 clients (threads + 1) ask for a 256 MiB streamed response with a 4 KiB receive "
            "buffer and read nothing, for 6 s.",
            never_read,
        ),
        Attack(
            "steady-reader",
            "A steady slow reader",
            "One client reads an 8 MiB streamed response at 50 KiB/s for 15 s, then the rest "
            "at full speed (a server's ~4 MiB of socket buffers would hide a cut-off until "
            "then): it must get every byte.",
            steady_reader,
        ),
        Attack(
            "fd-exhaustion",
            "fd exhaustion",
            f"The server runs under `ulimit -n {FD_LIMIT}`; with a keep-alive probe connection "
            "already open, 100 idle connections hold for 5 s; then they close and new "
            "connections must be served again.",
            fd_exhaustion,
            Launch(rlimits={"NOFILE": FD_LIMIT}),
        ),
        Attack(
            "spool-failure",
            "Body spool failure",
            f"The server runs under `ulimit -f {FSIZE_LIMIT // 1024}` (KiB); uploads of 2 MiB "
            "one after another for 3 s (spooled bodies cannot be written past 1 MiB), then "
            "5 /hello.",
            spool_failure,
            Launch(rlimits={"FSIZE": FSIZE_LIMIT}),
        ),
        Attack(
            "crlf-flood",
            "CRLF flood",
            "One client sends `\\r\\n` x 32,768 again and again for 8 s, opening a new "
            "connection whenever one is refused; then a TLS ClientHello is sent to the plain "
            "port.",
            crlf_flood,
        ),
        Attack(
            "base-exceptions",
            "App raises BaseException",
            "Two waves of 5 concurrent requests whose app raises SystemExit, "
            "KeyboardInterrupt, GeneratorExit or a BaseException subclass; then 10 /hello.",
            base_exceptions,
        ),
        Attack(
            "sigterm",
            "SIGTERM under load",
            "200 requests (100 on served keep-alive connections, 100 on new ones; "
            "/sleep?ms=20) fully sent, then SIGTERM; plus 3 SIGTERMs the moment a fresh "
            "server accepts. No probe: the server is stopping, so *lost* is the figure.",
            sigterm,
            stops_server=True,
        ),
        Attack(
            "fuzz",
            "Wire fuzz",
            "20,000 seeded garbage requests (6 at a time, at most 15 s), each on its own "
            "connection, half-closed after sending.",
            wire_fuzz,
        ),
        Attack(
            "soak",
            "Soak",
            "6 clients loop over keep-alive, new-connection, 1 MiB download, 700 KiB upload, "
            "pipelined and rude requests for 30 s.",
            soak,
        ),
    )
}

__all__ = ["ATTACKS"]
