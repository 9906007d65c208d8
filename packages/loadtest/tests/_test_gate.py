"""The check bites: against a seed-style pool, every attack and every step fails.

The run goes through scripts/with-server (server on port 0, URL read from its startup line) and
`locust -f packages/loadtest`, as `scripts/loadtest` does, with a short plan. Its passing twin,
treadle in Locust's distributed mode, runs from the README's own commands (_test_readme.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REPORTS = ROOT / "reports" / "loadtest"
SEEDSTYLE = Path(__file__).resolve().parents[1] / "_seedstyle.py"
ATTACKS = ("silent", "half-head", "slow-body", "idle-keep-alive", "no-read")


def test_seed_style_pool_fails_every_attack_and_starves_new_connections() -> None:
    prefix = REPORTS / "seedstyle"
    server = f"{sys.executable} {SEEDSTYLE} --bind 127.0.0.1:0 --threads 5"
    command = [
        sys.executable, str(ROOT / "scripts" / "_with_server.py"),
        "--server-log", f"{prefix}_server.log", "--server", server, "--",
        sys.executable, "-m", "locust", "-f", str(ROOT / "packages" / "loadtest"),
        "--headless", "--only-summary", "--server-name", "seed-style", "--report-prefix",
        str(prefix), "--steps", "1", "--step-seconds", "2", "--attack-seconds", "2",
        "--probe-ms", "100", "--request-timeout", "2",
    ]  # fmt: skip
    REPORTS.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150)
    verdict = Path(f"{prefix}_verdict.txt")
    text = verdict.read_text() if verdict.exists() else ""
    print(text or done.stderr[-3000:])
    assert done.returncode == 1, done.stderr[-3000:]
    assert text.startswith("seed-style: closed mode, 5 threads")
    for attack in ATTACKS:
        assert any(line.startswith(attack) and line.endswith("FAIL") for line in text.splitlines())
    assert "FAIL: new connections starved by " + ", ".join(ATTACKS) in text
    assert "new connections got no answer while 10 idle keep-alive connections were open" in text
    assert "keep-alive starvation" in text
