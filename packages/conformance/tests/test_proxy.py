"""Proxy mode: the recording backend, the judge of forwarded bytes, and real proxies.

The judge is pinned on bytes; the backend is fed by a transparent relay (a "proxy" that passes
every byte through unchanged), which the harness must call unsafe on the smuggling scenarios
because the ambiguous head reaches the backend as sent; nginx and HAProxy (from Debian, started
here in the foreground with a configuration in a temporary directory) run the smuggling
scenarios with both sides judged, and skip saying why when the program is missing.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._relays import real_proxy, relay
from treadle_conformance import proxies
from treadle_conformance.backend import Forwarded, forwarded_issues, judge_forwarded, running
from treadle_conformance.blackbox import Missing
from treadle_conformance.runner import run
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import PROXY_SENTINEL, Settings, Target, free_port

QUICK = Settings(timeout=2.0, close_wait=0.5, path=PROXY_SENTINEL)


def head(*fields: bytes) -> Forwarded:
    lines = b"".join(f + b"\r\n" for f in fields)
    return Forwarded(1, 1, b"POST /x HTTP/1.1\r\nHost: h\r\n" + lines + b"\r\n", b"")


def test_a_plain_forwarded_request_is_not_ambiguous() -> None:
    assert forwarded_issues(head(b"Content-Length: 5")) == []
    assert forwarded_issues(head(b"Transfer-Encoding: gzip, chunked")) == []
    assert forwarded_issues(head(b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked")) == []


@pytest.mark.parametrize("value", [b"chunked,", b", chunked", b"gzip ,\tchunked", b"chunked, ,"])
def test_rfc9110_5_6_1_empty_list_elements_and_ows_are_not_ambiguous(value: bytes) -> None:
    assert forwarded_issues(head(b"Transfer-Encoding: " + value)) == []


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ((b"Content-Length: 5", b"Transfer-Encoding: chunked"), "§6.3"),
        ((b"Content-Length: 5", b"Content-Length: 5"), "not one decimal value"),
        ((b"Content-Length: 5, 5",), "not one decimal value"),
        ((b"Transfer-Encoding: \x0bchunked",), "obfuscated"),
        ((b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"), "chunked twice"),
        ((b"Transfer-Encoding: chunked, gzip",), "not the final coding"),
        ((b"Transfer-Encoding: chunked;x=1",), "obfuscated"),
        ((b"X-A: a\nX-B: b",), "bare LF"),
        ((b"X-A: a\rb",), "bare LF or CR"),
        ((b"X-A: a\x00b",), "NUL"),
        ((b"X-A: a", b" folded"), "obs-fold"),
        ((b"Content-Length : 5",), "whitespace before the colon"),
    ],
)
def test_rfc9112_an_ambiguous_forwarded_head_is_named(fields: tuple[bytes, ...], why: str) -> None:
    issues = forwarded_issues(head(*fields))
    assert any(why in issue for issue in issues), issues


def test_more_requests_than_sent_or_the_smuggled_one_is_unsafe() -> None:
    one = Forwarded(1, 1, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", b"")
    smuggled = Forwarded(1, 2, b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n", b"")
    sentinel = Forwarded(1, 3, b"GET /__sentinel HTTP/1.1\r\nHost: h\r\n\r\n", b"")
    assert judge_forwarded([one, sentinel], 1, "/__sentinel") is None
    assert "smuggled request reached" in (judge_forwarded([one, smuggled], 1, "/__sentinel") or "")
    assert "2 requests reached" in (judge_forwarded([one, one, sentinel], 1, "/__sentinel") or "")


def test_the_backend_records_the_exact_bytes_and_frames_them() -> None:
    sent = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    with running() as backend:
        mark = backend.mark()
        with socket.create_connection(("127.0.0.1", backend.port), timeout=5) as sock:
            sock.sendall(sent)
            got = b""
            while got.count(b"treadle-conformance backend") < 2:
                got += sock.recv(65536)
        records = backend.since(mark)
    assert [r.path for r in records] == ["/a", "/b"]
    assert records[0].head + records[0].body + records[1].head == sent


def test_a_proxy_that_forwards_cl_and_te_unchanged_is_unsafe_behind_it() -> None:
    with running() as backend, relay(backend.port) as port:
        target = Target("127.0.0.1", port, settings=QUICK, backend=backend)
        target.preflight()
        result = run(by_id()["SMUG-CL-TE"], target)
    assert result.unsafe
    assert "behind the proxy" in result.safety_reason
    assert "both Transfer-Encoding and Content-Length forwarded" in result.safety_reason


# Framing and smuggling scenarios, a sample: the whole group runs in the peers env.
SAMPLE = [
    "SMUG-CL-TE",
    "SMUG-TE-CL",
    "SMUG-CL-DUP-DIFFERENT",
    "SMUG-TE-OBS-FOLD",
    "SMUG-TE-TRAILING-COMMA",
    "CHUNK-BASIC",
    "CHUNK-BARE-LF-SIZE",
    "PIPE-TWO",
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", proxies.PROXIES)
def test_smuggling_scenarios_through_a_real_proxy_are_judged_on_both_sides(name: str) -> None:
    with real_proxy(name, QUICK) as target:
        assert not target.reflect and target.baseline is not None
        plain = run(by_id()["RL-ORIGIN"], target)
        assert plain.status == "pass", plain.reason
        assert "backend: 2 forwarded: b'GET /path/to?x=1&y=2 HTTP/1.1'" in plain.observed
        results = {i: run(by_id()[i], target) for i in SAMPLE}
    assert all(r.strict != "skip" and "backend:" in r.observed for r in results.values())
    cl_te = results["SMUG-CL-TE"]
    assert "both Transfer-Encoding and Content-Length forwarded" not in cl_te.safety_reason


def test_the_cli_starts_a_proxy_in_front_of_the_backend(tmp_path: Path) -> None:
    try:
        proxies.program("haproxy")
    except Missing as exc:
        pytest.skip(str(exc))
    args = ["--proxy", "haproxy", "-k", "RL-ORIGIN", "--report-dir", str(tmp_path)]
    args += ["--timeout", "1", "--close-wait", "0.5"]
    done = subprocess.run(
        [sys.executable, "-m", "treadle_conformance", *args, "-p", "no:warnings"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "recording backend on 127.0.0.1:" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cli_judges_a_running_proxy_in_front_of_the_backend_port(tmp_path: Path) -> None:
    backend_port = free_port()
    with relay(backend_port) as port:
        args = ["--proxy", f"http://127.0.0.1:{port}", "--backend-port", str(backend_port)]
        args += ["-k", "SMUG-CL-TE and not TE-", "--report-dir", str(tmp_path)]
        args += ["--timeout", "1", "--close-wait", "0.5"]
        done = subprocess.run(
            [sys.executable, "-m", "treadle_conformance", *args, "-p", "no:warnings"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert f"recording backend on 127.0.0.1:{backend_port}" in done.stdout, done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    assert "behind the proxy" in done.stdout and "1 failed" in done.stdout
