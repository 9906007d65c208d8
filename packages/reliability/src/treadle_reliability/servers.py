"""The servers under attack: one table of commands, and starting and stopping them safely.

Each server hosts ``treadle_reliability.app:app`` with 5 threads (gunicorn: one gthread worker
with 5 threads) and otherwise its own defaults, since those are what an attacker meets. Each
runs in its own session (process group) on a free port of 127.0.0.1; it is ready when its port
accepts a connection, never after a sleep. It is stopped through its PID: SIGTERM to the group
it leads, then SIGKILL to the same group if it has not gone (the group holds only what we
started: the server and, for gunicorn, its worker).

An attack may start the server under resource limits (``ulimit -n``, ``ulimit -f``): the
command is then prefixed with ``python -m treadle_reliability.rlimit``, which sets them and
execs the server, so nothing runs between fork and exec in this (threaded) process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

APP = "treadle_reliability.app:app"
THREADS = 5
READY_TIMEOUT = 30.0
STOP_GRACE = 3.0
KILL_WAIT = 10.0

_SHELL_ULIMIT = {"NOFILE": "-n", "FSIZE": "-f"}


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server. The template is split on spaces, then each word formatted with
    ``{port}``, ``{threads}``, ``{app}``; ``{python}`` is this interpreter, ``{bin}`` its
    scripts directory."""

    name: str
    template: str
    note: str

    def command(self, port: int) -> list[str]:
        fill = {
            "port": port,
            "threads": THREADS,
            "app": APP,
            "bin": os.path.dirname(sys.executable),
        }
        return [
            sys.executable if word == "{python}" else word.format(**fill)
            for word in self.template.split()
        ]

    def shown(self) -> str:
        """The command as the docs print it: no path of this machine, $PORT for the port."""
        fill = {"port": "$PORT", "threads": THREADS, "app": APP, "bin": ""}
        return " ".join(
            "python" if word == "{python}" else word.replace("{bin}/", "").format(**fill)
            for word in self.template.split()
        )


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "treadle",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads} {app}",
            "5 worker threads, defaults otherwise",
        ),
        ServerSpec(
            "waitress",
            "{bin}/waitress-serve --listen=127.0.0.1:{port} --threads={threads} {app}",
            "5 worker threads, defaults otherwise (connection limit 100)",
        ),
        ServerSpec(
            "gunicorn",
            "{bin}/gunicorn -k gthread -w 1 --threads {threads} -b 127.0.0.1:{port} {app}",
            "one gthread worker process with 5 threads, defaults otherwise",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Launch:
    """What an attack needs from the server's process: soft resource limits (``NOFILE``,
    ``FSIZE`` in bytes) and extra environment."""

    rlimits: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    def prefix(self) -> list[str]:
        if not self.rlimits:
            return []
        return [
            sys.executable,
            "-m",
            "treadle_reliability.rlimit",
            *(f"{name}={value}" for name, value in sorted(self.rlimits.items())),
            "--",
        ]

    def shown(self) -> str:
        parts = []
        for name, value in sorted(self.rlimits.items()):
            shell = value // 1024 if name == "FSIZE" else value  # ulimit -f counts KiB
            parts.append(f"ulimit {_SHELL_ULIMIT[name]} {shell}")
        parts.extend(f"{key}={value}" for key, value in sorted(self.env.items()))
        return "; ".join(parts)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    """A running server: its process, port and log."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])

    def log_lines(self) -> int:
        try:
            with self.log.open("rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the server's own PID (not its group)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Connect until the port answers; bounded, and give up at once if the server died."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.02)  # between connection attempts, not instead of one
    raise RuntimeError(f"server not listening after {READY_TIMEOUT:.0f} s: {_tail(log)}")


def _tail(log: Path, lines: int = 6) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM the group this harness created, then SIGKILL it if it has not gone in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    # A gunicorn worker may outlive its master; the group holds only what we started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_WAIT)


@contextlib.contextmanager
def running(spec: ServerSpec, logdir: Path, launch: Launch | None = None) -> Iterator[Server]:
    """Start ``spec`` on a free port, wait until it accepts, and always stop it afterwards."""
    launch = launch or Launch()
    port = free_port()
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{spec.name}-{port}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", **launch.env)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*launch.prefix(), *spec.command(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_ready(proc, port, log)
        yield Server(spec, proc, port, log, time.monotonic())
    finally:
        stop(proc)
