"""https:// targets: a tiny TLS server hosting the reflection app, certificates from trustme."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from treadle_conformance.plugin import EXIT_NO_TARGET
from treadle_conformance.reflect import app

trustme = pytest.importorskip("trustme")


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: trustme.CA) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treadle_conformance", "--report-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


SELECTION = "RL-ORIGIN and not bytes and not random or HDR-HOST-CASE"


def test_https_with_the_ca_file(ca: trustme.CA, tls_server: int, tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    url = f"https://127.0.0.1:{tls_server}"
    done = cli(tmp_path, "--url", url, "--ca-file", str(pem), "-k", SELECTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_https_insecure(tls_server: int, tmp_path: Path) -> None:
    done = cli(tmp_path, "--url", f"https://127.0.0.1:{tls_server}", "--insecure", "-k", SELECTION)
    assert done.returncode == 0, done.stdout + done.stderr


def test_https_unverified_certificate_is_one_line(tls_server: int, tmp_path: Path) -> None:
    done = cli(tmp_path, "--url", f"https://127.0.0.1:{tls_server}", "-k", SELECTION)
    assert done.returncode == EXIT_NO_TARGET
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr and done.stderr.count("\n") == 1
