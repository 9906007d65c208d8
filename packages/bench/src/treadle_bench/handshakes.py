"""``python -m treadle_bench.handshakes``: does a crowd of stalled TLS handshakes delay others?

Starts treadle serving HTTPS (5 threads, a trustme certificate), times a normal HTTPS client
(a new connection, a full handshake and one request, sequentially) with nothing else going on,
then again while N other clients hold TCP connections open having sent half a ClientHello or
nothing at all, and prints both latency distributions and the difference of their medians.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from treadle_bench.idle import raise_fd_limit
from treadle_bench.servers import SERVERS, TlsFiles, running


def _timed_requests(port: int, context: ssl.SSLContext, count: int) -> list[float]:
    times = []
    request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for _ in range(count):
        started = time.perf_counter()
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass
        times.append((time.perf_counter() - started) * 1000)
    return times


def _half_hello(context: ssl.SSLContext) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def _describe(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{label}: p50 {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms, "
        f"max {ordered[-1]:.2f} ms ({len(ordered)} requests)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treadle_bench.handshakes")
    parser.add_argument("--stalled", type=int, default=1000, help="stalled clients (1000)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests (200)")
    args = parser.parse_args(argv)
    raise_fd_limit(args.stalled * 2 + 256)
    with tempfile.TemporaryDirectory() as folder:
        files = TlsFiles.create(Path(folder))
        context = ssl.create_default_context()
        context.check_hostname = False  # the client only needs the server's work, not trust
        context.verify_mode = ssl.CERT_NONE
        with running(SERVERS["treadle"], Path(folder), files) as server:
            _timed_requests(server.port, context, 20)  # warm-up
            quiet = _timed_requests(server.port, context, args.requests)
            half = _half_hello(context)
            stalled = []
            try:
                for index in range(args.stalled):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                    if index % 2:
                        sock.sendall(half)
                    stalled.append(sock)
                crowded = _timed_requests(server.port, context, args.requests)
                server.check_alive()
            finally:
                for sock in stalled:
                    sock.close()
    print(_describe("no stalled handshakes", quiet))
    print(_describe(f"{args.stalled} stalled handshakes", crowded))
    delta = statistics.median(crowded) - statistics.median(quiet)
    print(f"median delay added: {delta:+.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
