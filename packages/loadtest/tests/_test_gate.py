"""The gate, end to end: the check passes against treadle and fails against a seed-style pool.

Both runs go through `scripts/with-server` (server on port 0, URL read from its startup line)
and `locust -f packages/loadtest`, exactly as `tox -e loadtest` does, with shorter steps. The
treadle run is the short load test of `scripts/test`; its reports land in reports/loadtest/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REPORTS = ROOT / "reports" / "loadtest"
SEEDSTYLE = Path(__file__).resolve().parents[1] / "_seedstyle.py"


def run_check(
    name: str, step_seconds: float, server: list[str]
) -> subprocess.CompletedProcess[str]:
    prefix = REPORTS / name
    command = [
        sys.executable, str(ROOT / "scripts" / "with-server"),
        "--server-log", f"{prefix}_server.log", *server, "--",
        sys.executable, "-m", "locust", "-f", str(ROOT / "packages" / "loadtest"),
        "--headless", "--only-summary", "--step-seconds", str(step_seconds),
        "--csv", str(prefix), "--html", f"{prefix}.html",
    ]  # fmt: skip
    REPORTS.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=20 + 6 * step_seconds
    )
    verdict = Path(f"{prefix}_verdict.txt")
    print(verdict.read_text() if verdict.exists() else done.stderr[-3000:])
    return done


def test_seed_style_pool_fails_with_keep_alive_starvation() -> None:
    server = ["--server", f"{sys.executable} {SEEDSTYLE} --bind 127.0.0.1:0 --threads 5"]
    done = run_check("seedstyle", 2.0, server)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "FAIL: new connections got no answer" in done.stderr
    assert "keep-alive starvation" in done.stderr


def test_treadle_passes_the_short_load_test() -> None:
    done = run_check("short", 5.0, ["--threads", "5"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\nPASS" in done.stderr
    for suffix in (".html", "_stats.csv", ".png", "_server_stats.csv"):
        assert Path(f"{REPORTS / 'short'}{suffix}").stat().st_size > 0
