"""The command line as CI sees it: exit statuses and the one line that explains them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from treadle_conformance.plugin import EXIT_NO_TARGET, EXIT_TARGET_DIED
from treadle_conformance.target import free_port

PY = shlex.quote(sys.executable)
DYING = shlex.quote(str(Path(__file__).with_name("_dying.py")))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treadle_conformance", *args],
        capture_output=True,
        text=True,
        timeout=120,
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
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "treadle_conformance",
            "--server-cmd",
            "my-server {port}",
            "-k",
            "RL-ORIGIN and not bytes and not random",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_server_that_dies_mid_run_stops_the_run() -> None:
    done = cli("--server-cmd", f"{PY} {DYING} {{port}} 12", "-k", "HDR-")
    assert done.returncode == EXIT_TARGET_DIED, done.stdout + done.stderr
    assert "the target died during the run" in done.stderr
    assert done.stdout.count("could not talk") <= 1
