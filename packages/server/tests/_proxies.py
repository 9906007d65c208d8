"""Real reverse proxies (nginx, HAProxy) in front of treadle: started by the test in the
foreground with a config in a temporary directory, on a free loopback port, and stopped by
their own PID. ``scripts/test`` installs them where it can; elsewhere the tests skip."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

READY_TIMEOUT = 10.0
# A port picked free may be taken before the proxy binds it: try again with another.
BIND_ATTEMPTS = 3


def find_binary(name: str) -> str | None:
    """``name`` on PATH, or in the sbin directories a non-root PATH may lack."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def require_binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/test installs it with apt as root)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """Connect-retry until the proxy accepts on ``port``: True; False if it exited first."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            pass
        try:
            proc.wait(0.05)  # the pause between attempts, cut short if it exits
            return False
        except subprocess.TimeoutExpired:
            pass
    stop(proc)
    raise AssertionError(f"no listener on port {port} after {READY_TIMEOUT} s: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def nginx(
    tmp_path: Path, http_blocks: Callable[[list[int]], str], ports: int = 1
) -> Iterator[list[int]]:
    """Run nginx with ``http_blocks(free_ports)`` inside its ``http`` block (upstreams and
    servers listening on those ports); yield the ports."""
    binary = require_binary("nginx")
    # As root, workers would drop to "nobody", who cannot read the private temporary
    # directory: they keep the current user instead.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    for _ in range(BIND_ATTEMPTS):
        numbers = [free_port() for _ in range(ports)]
        blocks = http_blocks(numbers)
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            f"""
worker_processes 1;
{user}
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/client_body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
{blocks}
}}
"""
        )
        log = tmp_path / "nginx.stderr"
        command = [binary, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"]
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        try:
            if wait_until_listening(proc, numbers[0], log):
                yield numbers
                return
            if b"Address already in use" not in log.read_bytes():
                raise AssertionError(f"nginx exited: {log.read_text()}")
        finally:
            stop(proc)
    raise AssertionError(f"nginx found no free port in {BIND_ATTEMPTS} attempts")
