"""``serve()`` and the foreground runner under it: the startup line, signals, sd_notify."""

from __future__ import annotations

import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from treadle.demo import app
from treadle.foreground import run
from treadle.server import HttpServer

from ._proc import notify_socket, spawned
from ._wire import Client

SERVE = """
from treadle import serve
from treadle.demo import app
serve(app, ("127.0.0.1", 0), stats_path="/_stats")
"""


def test_serve_logs_its_address_notifies_and_drains_on_sigterm() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="tr-") as short_dir,
        notify_socket(Path(short_dir)) as (notify, env),
        spawned([sys.executable, "-c", SERVE], env=env) as (proc, url),
    ):
        assert notify.recv(4096).startswith(b"READY=1\n")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = Client(socket.create_connection((host, int(port)), timeout=10))
        client.send(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 10
        while httpx.get(url + "/_stats").json()["busy_threads"] < 1:  # the sleeper is in a worker
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"
        assert client.read_response().body == b"slept 300 ms\n"  # drained, not cut off
        assert proc.wait(10) == 0
        client.close()


def test_run_off_the_main_thread_leaves_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    server = HttpServer(("127.0.0.1", 0), app)
    server.prepare()
    thread = threading.Thread(target=run, args=(server, 1.0))
    thread.start()
    try:
        url = server.describe(server.sockets[0])
        assert httpx.get(url + "/hello").status_code == 200
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    finally:
        server.interrupt()
        thread.join(10)
    assert not thread.is_alive() and not server.sockets
