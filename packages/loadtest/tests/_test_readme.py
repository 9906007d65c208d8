"""Every load-test command the READMEs show works from a clean copy of the repository.

The copy holds what a commit would (tracked files and new ones git does not ignore), without
.venv or reports. It lives at reports/readme-check/clone, and the .venv its scripts make at
reports/readme-check/venv (through TREADLE_VENV), so that later runs reuse the installed
packages; the copy's own .tox is kept for the same reason. The set-up is the README's:
`scripts/serve` (here on a free port; it creates the .venv as `scripts/test` would), which stays
up for the command aimed at "any server". Then each command runs as written, with these
changes only:

- LOCUST_... variables shorten the plan (Locust reads every option from one): one step of
  2.5 s and the silent attack for 2 s, with a newcomer every 100 ms; the distributed run
  (`--processes 2`) is the one the gate relies on for treadle passing the whole check: two
  steps and every attack;
- `http://127.0.0.1:8080` and `PID` become the served treadle's URL and PID;
- a `scripts/loadtest-peers` without `--servers` gets `--servers treadle --out
  reports/loadtest/peers.md`, so it is bounded and writes inside the copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from _plan import ATTACKS

ROOT = Path(__file__).resolve().parents[3]
READMES = (ROOT / "README.md", ROOT / "packages" / "loadtest" / "README.md")
WORK = ROOT / "reports" / "readme-check"
CLONE = WORK / "clone"
COMMAND = re.compile(r"^ {4}(scripts/(?:loadtest|with-server)\b.*?)(?:\s+#.*)?$")
LISTENING = re.compile(r"listening on (http://\S+)")
SHORT = {
    "LOCUST_STEPS": "0.75",
    "LOCUST_STEP_SECONDS": "2.5",
    "LOCUST_ATTACKS": "silent",
    "LOCUST_ATTACK_SECONDS": "2",
    "LOCUST_PROBE_MS": "100",
}
FULL_CHECK = "scripts/loadtest --headless --processes 2"
WHOLE = {"LOCUST_STEPS": "0.75,2", "LOCUST_ATTACKS": ",".join(ATTACKS)}
SETUP_TIMEOUT = 600  # seconds: the first run makes the .venv
COMMAND_TIMEOUT = 420  # the peers command may make its tox env first


def readme_commands() -> list[str]:
    commands: list[str] = []
    for readme in READMES:
        for line in readme.read_text().splitlines():
            match = COMMAND.match(line)
            if match:
                commands.append(match.group(1))
    return commands


def fresh_copy() -> None:
    """CLONE := the repository's files as a commit would hold them; its .tox survives."""
    CLONE.mkdir(parents=True, exist_ok=True)
    for entry in CLONE.iterdir():
        if entry.name != ".tox":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (CLONE / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, CLONE / name)  # mtimes kept: the scripts reinstall only on change


def clean_env() -> dict[str, str]:
    """The caller's environment without this tox env or any LOCUST_ setting of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))
    )
    env["TREADLE_VENV"] = str(WORK / "venv")
    return env


@contextmanager
def served(env: dict[str, str]) -> Iterator[tuple[int, str]]:
    """`scripts/serve` on a free port: its PID and URL; SIGTERM (to our child) at the end."""
    proc = subprocess.Popen(
        ["scripts/serve", "--bind", "127.0.0.1:0"], cwd=CLONE, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + SETUP_TIMEOUT
    try:
        for line in proc.stdout:
            if match := LISTENING.search(line):
                break
            assert time.monotonic() < deadline, "scripts/serve gave no URL in time"
        else:
            raise AssertionError(f"scripts/serve exited with {proc.wait()}")
        yield proc.pid, match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def as_run(command: str, url: str, pid: int) -> str:
    command = command.replace("http://127.0.0.1:8080", url).replace(" PID", f" {pid}")
    if command.startswith("scripts/loadtest-peers") and "--servers" not in command:
        command += " --servers treadle --out reports/loadtest/peers.md"
    return command


def bounded(command: str, env: dict[str, str]) -> tuple[int, str]:
    """Run a shell command in a session of its own; past COMMAND_TIMEOUT, end that session
    (the command and the servers and workers it started), so a hang fails the test instead of
    leaving processes that hold the pipes open."""
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=CLONE, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            try:
                output, _ = proc.communicate(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        raise AssertionError(f"{command!r} ran past {COMMAND_TIMEOUT} s") from None
    return proc.returncode, output


def check_reports(prefix: Path) -> None:
    """The whole check ran, and left every report; the server was sampled both ways."""
    verdict = Path(f"{prefix}_verdict.txt").read_text()
    assert all(f"\n{attack} " in verdict for attack in ATTACKS), verdict
    for suffix in (".png", "_summary.json", "_server_stats.csv"):
        assert Path(f"{prefix}{suffix}").stat().st_size > 0
    samples = Path(f"{prefix}_server_stats.csv").read_text().splitlines()[0]
    assert "busy_threads" in samples and "proc_busy_threads" in samples


@pytest.mark.timeout(SETUP_TIMEOUT + 12 * COMMAND_TIMEOUT)
def test_readme_load_test_commands_work_from_a_clean_copy() -> None:
    commands = readme_commands()
    for needed in ("scripts/loadtest --headless", FULL_CHECK, "scripts/loadtest-peers"):
        assert needed in commands, f"the README no longer shows {needed!r}"
    fresh_copy()
    env = clean_env()
    with served(env) as (pid, url):
        runs = list(dict.fromkeys(as_run(command, url, pid) for command in commands))
        for run in runs:
            short = {**SHORT, **(WHOLE if run == FULL_CHECK else {})}
            started = time.monotonic()
            returncode, output = bounded(run, {**env, **short})
            print(f"$ {run}   ({time.monotonic() - started:.0f} s, exit {returncode})")
            print(output[output.rfind("treadle.loadtest: treadle: ") :][:2500])
            assert returncode == 0, output[-3000:]
            if not run.startswith("scripts/loadtest-peers"):
                assert "\nPASS" in output, output[-3000:]
            if run == FULL_CHECK:
                check_reports(CLONE / "reports" / "loadtest" / "treadle-closed")
    assert "| treadle |" in (CLONE / "reports" / "loadtest" / "peers.md").read_text()
