"""Running wrk: one thread (so it takes at most one of the machine's cores), a bounded duration,
and a Lua ``done`` hook (summary.lua) that hands back exact figures as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources

WRK_TIMEOUT = "5s"  # wrk's per-request timeout: a slower answer counts as a timeout error
_MARK = "TREADLE_BENCH "


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / self.seconds / (1024 * 1024) if self.seconds else 0.0


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package first when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is missing: install it (apt-get install wrk) and run again")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def wrk_argv(url: str, connections: int, seconds: int, close: bool, script: str) -> list[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}"]
    if close:
        argv += ["-H", "Connection: close"]
    return [*argv, "-s", script, url]


def run_wrk(url: str, connections: int, seconds: int, close: bool = False) -> WrkResult:
    with resources.as_file(resources.files("treadle_bench") / "summary.lua") as script:
        argv = wrk_argv(url, connections, seconds, close, str(script))
        # wrk stops itself after `seconds`; the extra margin only guards against a wedged wrk.
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            break
    else:
        said = " ".join((out.stderr or out.stdout).split())[:300]
        raise RuntimeError(f"wrk gave no summary (exit {out.returncode}): {said}")
    kinds = ("connect", "read", "write", "status", "timeout")
    detail = ", ".join(f"{kind} {data[kind]}" for kind in kinds if data[kind])
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        errors=sum(data[kind] for kind in kinds),
        error_detail=detail,
    )
