"""scripts/with-server's Python: start a server on port 0, run a command with its URL, stop it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WITH_SERVER = [sys.executable, str(ROOT / "scripts" / "_with_server.py")]

# The command: report what it was given, ask the server for its stats, exit 7.
PROBE = """
import json, os, sys, urllib.request
seen = {k: os.environ.get(k) for k in ("TREADLE_URL", "LOCUST_HOST", "TREADLE_STATS_URL",
                                       "TREADLE_SERVER_PID", "LOCUST_SERVER_PID")}
seen["stats"] = json.load(urllib.request.urlopen(seen["TREADLE_STATS_URL"], timeout=5))
print(json.dumps(seen))
sys.exit(7)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runs_the_command_against_treadle_and_stops_it() -> None:
    done = subprocess.run(
        [*WITH_SERVER, "--threads", "3", "--", sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 7, done.stderr
    seen = json.loads(done.stdout)
    assert seen["TREADLE_URL"].startswith("http://127.0.0.1:")
    assert not seen["TREADLE_URL"].endswith(":0")
    assert seen["LOCUST_HOST"] == seen["TREADLE_URL"]
    assert seen["TREADLE_STATS_URL"] == seen["TREADLE_URL"] + "/_treadle/stats"
    assert seen["stats"]["threads"] == 3
    assert seen["LOCUST_SERVER_PID"] == seen["TREADLE_SERVER_PID"]
    assert not alive(int(seen["TREADLE_SERVER_PID"]))


def test_another_server_and_extra_server_arguments() -> None:
    seedstyle = ROOT / "packages" / "loadtest" / "_seedstyle.py"
    done = subprocess.run(
        [*WITH_SERVER, "--server", f"{sys.executable} {seedstyle}", "--threads", "2", "--",
         sys.executable, "-c", "import os; print(os.environ['TREADLE_URL'])"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://127.0.0.1:")
    assert "seed-style server listening on" in done.stderr


def test_a_server_that_never_starts_is_reported() -> None:
    done = subprocess.run(
        [*WITH_SERVER, "--server", f"{sys.executable} -c 'import sys; sys.exit(4)'", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "exited with 4" in done.stderr


def test_the_command_is_required() -> None:
    done = subprocess.run([*WITH_SERVER, "--threads", "2"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "give the command after `--`" in done.stderr


HOSTED = """
import json, os, urllib.request
url = os.environ["LOCUST_HOST"]
with urllib.request.urlopen(url + "/hello", timeout=5) as r:
    server = r.headers["Server"]
with urllib.request.urlopen(url + "/_treadle/stats", timeout=5) as r:
    print(json.dumps({"server": server, "threads": json.load(r)["threads"]}))
"""


def test_the_peers_host_serves_treadle_with_its_stats() -> None:
    host = ROOT / "packages" / "loadtest" / "_host.py"
    done = subprocess.run(
        [*WITH_SERVER, "--server", f"{sys.executable} {host} treadle --threads 2", "--",
         sys.executable, "-c", HOSTED],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["server"].startswith("treadle/")
    assert seen["threads"] == 2
