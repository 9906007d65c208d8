"""``gunicorn -k treadle.gunicorn.Worker`` (issue 12, section 1), with the real gunicorn in a
subprocess on a free port: its arbiter supervises, treadle serves, gunicorn's settings apply."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme

from treadle.limits import Limits
from treadle.testing import running

from ._procs import Tree, started
from ._wire import Client
from .conftest import hello_app

pytest.importorskip("gunicorn")

APP = """\
import os, sys, threading, time
barrier = threading.Barrier(3, timeout=5)
def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        print("sleeping", file=sys.stderr, flush=True)
        time.sleep(float(environ["QUERY_STRING"]))
    if path == "/together":  # only three threads at once get through
        barrier.wait()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""
LISTENING = r"Listening at: http(?:s)?://127\.0\.0\.1:(\d+)"


@contextmanager
def gunicorn(tmp_path: Path, *args: str) -> Iterator[Tree]:
    (tmp_path / "gapp.py").write_text(APP)
    argv = [sys.executable, "-m", "gunicorn", "-k", "treadle.gunicorn.Worker",
            "-b", "127.0.0.1:0", "--log-level", "info", *args, "gapp:app"]  # fmt: skip
    with started(argv, cwd=tmp_path) as tree:
        tree.addr = ("127.0.0.1", int(tree.wait_for(LISTENING)[1]))
        tree.wait_for(r"Booting worker with pid: \d+")
        yield tree


def pid_of(tree: Tree, target: str = "/") -> int:
    response = tree.get(target)
    assert response.status == 200, response
    return int(response.body)


def test_serves_with_gunicorns_threads(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--threads", "3") as tree:
        clients = [tree.connect() for _ in range(3)]
        for client in clients:
            client.send(b"GET /together HTTP/1.1\r\nHost: t\r\n\r\n")
        # With fewer than three threads the barrier breaks after 5 s and the app fails.
        assert [client.read_response().status for client in clients] == [200, 200, 200]
        for client in clients:
            client.close()


def test_gunicorns_request_limits_apply(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--limit-request-line", "100", "--limit-request-fields", "5") as tree:
        assert tree.get("/" + "x" * 200).status == 414
        client = tree.connect()
        fields = "".join(f"X-{i}: y\r\n" for i in range(10))
        response = client.request(f"GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n".encode())
        assert response.status == 431
        client.close()
        assert tree.get("/" + "x" * 50).status == 200


def test_heartbeat_keeps_an_idle_worker_alive_past_gunicorns_timeout(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--timeout", "1") as tree:
        first = pid_of(tree)
        client = tree.connect()
        client.send(b"GET /sleep?2.5 HTTP/1.1\r\nHost: t\r\n\r\n")  # a busy worker thread...
        assert client.read_response().status == 200  # ...and an acceptor that beats on
        client.close()
        assert pid_of(tree) == first
        assert "WORKER TIMEOUT" not in tree.text


def test_max_requests_replaces_the_worker_without_a_failed_request(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--max-requests", "3") as tree:
        pids = [pid_of(tree) for _ in range(8)]  # every request succeeds
        assert pids[:3] == [pids[0]] * 3 and pids[3:6] == [pids[3]] * 3
        assert len(set(pids)) == 3
        assert tree.count("Autorestarting worker after current request") >= 2


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--graceful-timeout", "10") as tree:
        client = tree.connect()
        client.send(b"GET /sleep?1 HTTP/1.1\r\nHost: t\r\n\r\n")
        tree.wait_for("sleeping")
        tree.signal(signal.SIGTERM)
        response = client.read_response()
        assert response.status == 200 and response.header("Connection") == "close"
        client.close()
        assert tree.wait() == 0
        assert re.search(r"stopped: \d+ requests served while stopping, none cut", tree.text)


def test_keep_alive_0_closes_after_every_response(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "--keep-alive", "0") as tree:
        client = tree.connect()
        response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert response.header("Connection") == "close" and client.at_eof()
        client.close()


def test_keep_alive_timeout_0_in_treadle_itself() -> None:
    with running(hello_app, limits=Limits(keep_alive_timeout=0)) as server:
        client = Client(socket.create_connection(server.bind_addr, timeout=5))
        response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert response.header("Connection") == "close" and client.at_eof()
        client.close()


def test_gunicorns_tls_settings(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with gunicorn(tmp_path, "--certfile", "cert.pem", "--keyfile", "key.pem") as tree:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with (
            socket.create_connection(tree.addr, timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            client = Client(tls)  # type: ignore[arg-type]
            response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert response.status == 200 and response.body.isdigit()
            client.file.close()
