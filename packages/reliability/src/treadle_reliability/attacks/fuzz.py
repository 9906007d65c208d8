"""A bounded wire fuzz: seeded garbage, each case on its own connection, a few at a time.

Cases are random bytes, valid requests with bytes flipped, inserted, dropped or cut, heads
with odd framing fields (huge, negative, hex or 5,000-digit Content-Lengths, unknown or doubled
Transfer-Encodings, bad chunk sizes), bare LFs, long lines and a TLS ClientHello. The client
sends a case, half-closes, and reads what comes back. Garbage earns a 4xx or a close, never a
5xx (501 and 505 name what was sent, so they count as 4xx here); and once the fuzz is over the
server holds no more threads and fds than before it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable

from ..harness import Outcome, Target
from ..monitor import Sample
from ._sockets import warm_up
from .floods import TLS_HELLO

ALLOWED_5XX = (501, 505)
LEAK_WAIT = 5.0
FD_SLACK = 2

_VALID = (
    b"GET /hello HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /upload HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET /hello HTTP/1.0\r\n\r\n",
)
_FIELDS = (
    b"Content-Length: -1",
    b"Content-Length: 0x10",
    b"Content-Length: 1, 2",
    b"Content-Length: " + b"9" * 5000,
    b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked, chunked",
    b"Transfer-Encoding: \x0bchunked",
    b"Host: a\r\nHost: b",
    b"X: \x00",
    b"X : y",
    b" folded",
    b"Expect: 100-continue",
    b"Connection: close, upgrade",
)


def _flip(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]


def _drop(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 8) :]


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def _field(rng: random.Random, data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    return head + b"\r\n" + rng.choice(_FIELDS) + b"\r\n\r\n" + body


def _chunk_size(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice([b"-1", b"fffffffffffffffff", b"5 ;x", b"0x5", b" 5", b"g", b"5" * 40])
    return _VALID[2].replace(b"\r\n5\r\n", b"\r\n" + size + b"\r\n")


def _lf_only(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _long_line(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"/hello", b"/" + b"a" * rng.choice([9000, 70000]), 1)


def _random(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(rng.randint(1, 300))


def _tls(rng: random.Random, data: bytes) -> bytes:
    return TLS_HELLO


Mutator = Callable[[random.Random, bytes], bytes]
MUTATORS: tuple[Mutator, ...] = (
    _flip,
    _insert,
    _drop,
    _cut,
    _field,
    _field,
    _chunk_size,
    _lf_only,
    _long_line,
    _random,
    _random,
    _tls,
)


def cases(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.choice(MUTATORS)(rng, rng.choice(_VALID)) for _ in range(count)]


def first_status(raw: bytes) -> int | None:
    """The first final status in ``raw`` (interim 1xx answers skipped); None for no answer."""
    while raw.startswith(b"HTTP/") and len(raw) >= 12 and raw[9:12].isdigit():
        status = int(raw[9:12])
        if status >= 200:
            return status
        _, found, raw = raw.partition(b"\r\n\r\n")
        if not found:
            return status
    return None


def _one(address: tuple[str, int], case: bytes, timeout: float) -> bytes:
    """Send ``case``, half-close, read until EOF or ``timeout``; what came back."""
    got = bytearray()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            deadline = time.monotonic() + timeout
            with contextlib.suppress(OSError):
                sock.sendall(case)
                sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0 and len(got) < 65536:
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    break
                got += data
    except OSError:
        pass
    return bytes(got)


def wire_fuzz(
    target: Target, count: int = 20_000, seconds: float = 15.0, workers: int = 6, seed: int = 9
) -> Outcome:
    warm_up(target)
    baseline = target.monitor.take()
    todo = cases(seed, count)
    statuses: dict[int | None, int] = {}
    bad: list[bytes] = []
    lock = threading.Lock()
    done = 0
    end = time.monotonic() + seconds

    def work(offset: int) -> None:
        nonlocal done
        for case in todo[offset::workers]:
            if time.monotonic() >= end:
                return
            status = first_status(_one(target.address, case, 2.0))
            with lock:
                done += 1
                statuses[status] = statuses.get(status, 0) + 1
                if status is not None and status >= 500 and status not in ALLOWED_5XX:
                    bad.append(case)

    with target.probe(interval=0.25) as probe:
        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 10.0)
    assert baseline is not None
    after = _settled(
        target,
        lambda s: s.fds <= baseline.fds + FD_SLACK and s.threads <= baseline.threads,
    )
    shown = ", ".join(
        f"{'none' if k is None else k}: {v}" for k, v in sorted(statuses.items(), key=_order)
    )
    outcome = Outcome(probe=probe.figures)
    outcome.notes.append(f"{done} cases (seed {seed}); first status seen: {shown}")
    outcome.check(
        "no 5xx (other than 501/505) from garbage",
        not bad,
        f"{len(bad)} cases, e.g. {bad[0][:60]!r}" if bad else "",
    )
    if after is None:
        outcome.check("no thread or fd leak", False, "the process is gone")
    else:
        outcome.notes.append(
            f"threads {baseline.threads} -> {after.threads}, fds {baseline.fds} -> {after.fds}"
        )
        outcome.check(
            "no thread or fd leak",
            after.threads <= baseline.threads and after.fds <= baseline.fds + FD_SLACK,
            f"threads {baseline.threads} -> {after.threads}, fds {baseline.fds} -> {after.fds}",
        )
    outcome.check_probe()
    return outcome


def _order(item: tuple[int | None, int]) -> int:
    return -1 if item[0] is None else item[0]


def _settled(target: Target, ok: Callable[[Sample], bool]) -> Sample | None:
    """The server's footprint once idle: its lingering closes and keep-alive timers are given
    up to ``LEAK_WAIT`` seconds to run out."""
    return target.monitor.wait_for(ok, LEAK_WAIT)
