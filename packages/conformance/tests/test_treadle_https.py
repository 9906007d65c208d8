"""treadle terminating TLS itself passes the whole catalogue over https:// (RFC 9112 is the
same on a TLS connection: bodies, pipelining, 100-continue, chunked, lingering close)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

trustme = pytest.importorskip("trustme")
treadle_testing = pytest.importorskip("treadle.testing")
treadle_tls = pytest.importorskip("treadle.tls")
treadle_limits = pytest.importorskip("treadle.limits")


def test_treadle_over_https_passes_every_case(tmp_path: Path) -> None:
    from treadle_conformance.reflect import app

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    context = treadle_tls.server_context(str(cert), str(key))
    # As the harness starts treadle for plain HTTP: 5 threads, 3 s deadlines.
    limits = treadle_limits.Limits(timeout=3.0, keep_alive_timeout=3.0)
    with treadle_testing.running(app, threads=5, ssl_context=context, limits=limits) as server:
        url = server.describe(server.sockets[0])
        assert url.startswith("https://")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "treadle_conformance",
                "--url",
                url,
                "--ca-file",
                str(ca_file),
                "--report-dir",
                str(tmp_path / "reports"),
                "-rs",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last and "error" not in last, last
    # The only cases left out are those whose client must half-close TCP under TLS.
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("half-close" in line for line in skips), skips
