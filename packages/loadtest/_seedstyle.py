"""A deliberately seed-style HTTP/1.1 server: the stand-in that the load test must fail.

Theory of operation (the design treadle replaced): a fixed pool of worker threads takes accepted
connections from a queue, and each worker keeps its connection until the client closes it. An idle
keep-alive connection therefore pins a thread, and once every thread holds one, new connections
wait in the queue without an answer: keep-alive starvation. The routes mimic ``treadle.demo``
(``/hello``, ``/sleep?ms=N``, ``/echo``) so the same locustfiles run against both servers.

Standard library only, loopback only. It prints the same startup line as treadle
(``listening on http://HOST:PORT`` on stderr) so ``scripts/with-server --server`` can start it::

    python packages/loadtest/_seedstyle.py --bind 127.0.0.1:0 --threads 5
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import socket
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 16 * 1024


def route(target: str, body: bytes) -> tuple[str, bytes]:
    """Answer a request the way the demo app would: (status line, body)."""
    parts = urlsplit(target)
    if parts.path == "/hello":
        return "200 OK", b"Hello, world!"
    if parts.path == "/echo":
        return "200 OK", body
    if parts.path == "/sleep":
        ms = int(parse_qs(parts.query).get("ms", ["0"])[0])
        time.sleep(ms / 1000)
        return "200 OK", f"slept {ms} ms".encode()
    return "404 Not Found", b"not found"


def read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    """Read one request head. None when the peer closed."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    del buf[:end]
    return head


def read_body(sock: socket.socket, buf: bytearray, length: int) -> bytes | None:
    """Read a Content-Length body, at the client's pace. None when the peer closed."""
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    body = bytes(buf[:length])
    del buf[:length]
    return body


def content_length(fields: str) -> int:
    for line in fields.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip() or 0)
    return 0


def serve_connection(sock: socket.socket) -> None:
    """The seed's worker loop: keep this connection, and so this thread, until the client leaves."""
    buf = bytearray()
    with sock:
        while True:
            head = read_head(sock, buf)
            if head is None:
                return
            request_line, _, fields = head.decode("latin-1").partition("\r\n")
            target = request_line.split(" ")[1] if request_line.count(" ") == 2 else "/"
            received = read_body(sock, buf, content_length(fields))
            if received is None:
                return
            status, body = route(target, received)
            close = "connection: close" in fields.lower()
            sock.sendall(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
                + body
            )
            if close:
                return


def worker(jobs: queue.Queue[socket.socket]) -> None:
    while True:
        sock = jobs.get()
        with contextlib.suppress(OSError):  # a client that went away frees the thread
            serve_connection(sock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bind", default="127.0.0.1:0", help="HOST:PORT (port 0: any free port)")
    parser.add_argument("--threads", type=int, default=5, help="worker threads (default 5)")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    listener = socket.create_server((host, int(port)), backlog=128)
    jobs: queue.Queue[socket.socket] = queue.Queue()
    for _ in range(args.threads):
        threading.Thread(target=worker, args=(jobs,), daemon=True).start()
    bound_host, bound_port = listener.getsockname()[:2]
    print(f"seed-style server listening on http://{bound_host}:{bound_port}", file=sys.stderr)
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            conn, _ = listener.accept()
            jobs.put(conn)
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
