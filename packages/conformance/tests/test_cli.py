"""The command line as CI sees it: exit statuses and the one line that explains them."""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from treadle_conformance.plugin import EXIT_NO_TARGET, EXIT_TARGET_DIED
from treadle_conformance.target import free_port

PY = shlex.quote(sys.executable)
DYING = shlex.quote(str(Path(__file__).with_name("_dying.py")))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI; its reports go to a temporary directory unless the test names one."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = [] if "--report-dir" in args else ["--report-dir", tmp]
        return subprocess.run(
            [sys.executable, "-m", "treadle_conformance", *args, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )


def test_a_dead_port_is_one_line_and_exit_6() -> None:
    done = cli("--url", f"http://127.0.0.1:{free_port()}", "-k", "RL-ORIGIN")
    assert done.returncode == EXIT_NO_TARGET
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "does not answer" in done.stderr


def test_a_missing_server_command_is_one_line() -> None:
    done = cli("--server-cmd", "no-such-server-xyz --port {port}")
    assert done.returncode == EXIT_NO_TARGET
    assert "'no-such-server-xyz' was not found on PATH" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stdout + done.stderr


def test_a_program_on_path_is_found(tmp_path: Path) -> None:
    tool = tmp_path / "my-server"
    tool.write_text(f'#!/bin/sh\nexec {PY} {DYING} "$1" 1000\n')
    tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = cli(
        "--server-cmd", "my-server {port}", "-k", "RL-ORIGIN and not bytes and not random", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_server_that_dies_mid_run_stops_the_run() -> None:
    done = cli("--server-cmd", f"{PY} {DYING} {{port}} 12", "-k", "HDR-")
    assert done.returncode == EXIT_TARGET_DIED, done.stdout + done.stderr
    assert "the target died during the run" in done.stderr
    assert done.stdout.count("could not talk") <= 1


def test_select_by_category_level_and_section(tmp_path: Path) -> None:
    done = cli(
        "--category",
        "smuggling",
        "--level",
        "MUST",
        "--section",
        "9112/6.1",
        "--report-dir",
        str(tmp_path),
        "--collect-only",
        "-q",
    )
    ids = [line.split("[", 1)[1].rstrip("]") for line in done.stdout.splitlines() if "[" in line]
    assert ids and "SMUG-CL-TE" in ids and "SMUG-TE-HTTP10" in ids
    assert all(i.startswith("SMUG-") for i in ids), ids
    assert "SMUG-CL-DUP-DIFFERENT" not in ids  # 6.3, not 6.1


def test_parallel_runs_are_refused() -> None:
    pytest.importorskip("xdist")
    done = cli("-n", "2", "-k", "RL-ORIGIN")
    assert done.returncode == 4
    assert "refuses parallel runs" in done.stderr


def test_reports_junit_json_and_html(tmp_path: Path) -> None:
    done = cli("-k", "PIPE-TWO and not bytes and not random", "--report-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    junit = ElementTree.parse(tmp_path / "conformance.xml").getroot()
    case = next(junit.iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {
        "level": "MUST",
        "section": "RFC 9112 §9.3.2",
        "category": "pipelining",
        "safety": "safe",
        "strict": "pass",
        "verdict": "pass",
    }
    data = json.loads((tmp_path / "conformance.json").read_text())
    (result,) = data["results"]
    sent = base64.b64decode(result["request_bytes"]["base64"])
    got = base64.b64decode(result["response_bytes"]["base64"])
    assert sent.startswith(b"GET /1 HTTP/1.1\r\n") and b"GET /__sentinel" in sent
    assert got.count(b"HTTP/1.1 200 ") == 3
    page = (tmp_path / "conformance.html").read_text()
    assert "<details" in page and "pipelining" in page


@pytest.mark.timeout(120)
def test_sigterm_ends_the_run_and_the_server_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    server = (
        f"sh -c 'echo $$ > {shlex.quote(str(pidfile))}; exec {PY} -m treadle --threads 5 "
        "--bind 127.0.0.1:{port} treadle_conformance.reflect:app'"
    )
    # A scenario that waits out the server's head timeout: the run is inside it when signalled.
    args = ["--server-cmd", server, "-k", "TIME-SLOW-HEAD-CLOSED", "-v", "--idle-bound", "30"]
    args += ["--report-dir", str(tmp_path)]
    with subprocess.Popen(
        [sys.executable, "-u", "-m", "treadle_conformance", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as run:
        assert run.stdout is not None
        seen = ""
        # pytest -v names a test as it starts it (the line ends when the test does).
        while "TIME-SLOW-HEAD-CLOSED" not in seen and (char := run.stdout.read(1)):
            seen += char
        run.terminate()
        rest = run.communicate(timeout=60)[0]
    server_pid = int(pidfile.read_text())
    try:
        os.kill(server_pid, signal.SIGTERM)  # it should be gone; if not, end it and fail
    except ProcessLookupError:
        left = False
    else:
        left = True
    assert not left, "the server outlived the run"
    assert run.returncode != 0, rest
