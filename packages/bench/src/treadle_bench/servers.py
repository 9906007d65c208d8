"""The servers under test: one table of commands, and starting/stopping them safely.

Every server runs as its own process group on 127.0.0.1, hosts ``treadle_bench.app:app`` and
gets 10 ways to run the app at once (threads, or worker processes for gunicorn sync); the
``-w2`` variants run two worker processes of 10 threads each. Each one's idle keep-alive
timeout is raised to KEEP_ALIVE_SECONDS so that scenario 6's idle connections outlive the
measurement; under wrk's load no connection is ever idle, so the other scenarios do not notice.

``treadle-py312`` and ``treadle-py313`` run treadle from its source tree under another
interpreter (treadle and the app need nothing but the standard library): ``python3.12`` on
PATH (scripts/_venv links pyenv's there), else pyenv's newest 3.12.x.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

APP = "treadle_bench.app:app"
THREADS = 10
KEEP_ALIVE_SECONDS = 300
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to start one server: ``{port}``, ``{threads}``, ``{app}``, ``{bin}`` (the venv's
    scripts) and ``{python}`` are filled in at start."""

    name: str
    template: str  # split on spaces first, then each word formatted
    note: str
    keeps_alive: bool = True
    tls_template: str = ""  # what serves HTTPS with {cert} and {key}; "" when it cannot
    python: str = ""  # "3.12": {python} is that interpreter, running treadle from its source

    def interpreter(self) -> str:
        if not self.python:
            return sys.executable
        found = find_python(self.python)
        if found is None:
            raise RuntimeError(f"no python{self.python} found (PATH, pyenv)")
        return found

    def command(self, port: int, tls: TlsFiles | None = None) -> list[str]:
        bindir = os.path.dirname(sys.executable)
        fill = {"port": port, "threads": THREADS, "app": APP, "bin": bindir}
        words = self.template.split()
        if tls is not None:
            fill.update(cert=str(tls.cert), key=str(tls.key))
            words[-1:-1] = self.tls_template.split()  # options before the app argument
        python = self.interpreter() if "{python}" in words else sys.executable
        return [python if word == "{python}" else word.format(**fill) for word in words]

    def environ(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.python:  # the source trees of treadle and this harness, not the venv's
            import treadle
            import treadle_bench

            roots = [
                os.path.dirname(os.path.dirname(m.__file__ or "")) for m in (treadle, treadle_bench)
            ]
            env["PYTHONPATH"] = os.pathsep.join(roots)
        return env

    def shown(self, tls: bool = False) -> str:
        """The command as the docs print it: no path of this machine, $PORT for the port."""
        fill = {"port": "$PORT", "threads": THREADS, "app": APP, "bin": ""}
        fill.update(cert="server.pem", key="server.key")
        words = self.template.split()
        if tls:
            words[-1:-1] = self.tls_template.split()
        python = f"python{self.python}" if self.python else "python"
        return " ".join(
            python if word == "{python}" else word.replace("{bin}/", "").format(**fill)
            for word in words
        )


def find_python(minor: str) -> str | None:
    """``python3.12`` that runs: on PATH, else the newest of pyenv's 3.12.x."""
    candidates = [shutil.which(f"python{minor}")]
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    if shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10)
            root = out.stdout.strip() or root
    pattern = os.path.join(root, "versions", f"{minor}.*", "bin", f"python{minor}")
    candidates += sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for path in candidates:
        if path and _runs(path, minor):
            return path
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = path.split(os.sep)[-3]
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def _runs(path: str, minor: str) -> bool:
    """pyenv's shims are on PATH too, and refuse a version that is not activated."""
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == minor


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate for 127.0.0.1 and its key (PKCS#8 PEM, which every server reads)."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path) -> TlsFiles:
        import trustme

        issued = trustme.CA().issue_cert("127.0.0.1", "localhost")
        files = cls(folder / "server.pem", folder / "server.key")
        issued.cert_chain_pems[0].write_to_path(str(files.cert))
        issued.private_key_pem.write_to_path(str(files.key))
        return files


_KA = KEEP_ALIVE_SECONDS
SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "treadle",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads}"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "a fixed pool of 10 worker threads",
            tls_template="--certfile {cert} --keyfile {key}",
        ),
        ServerSpec(
            "treadle-max64",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads} --max-threads 64"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "10 worker threads that may grow to 64 (scenario 5 only)",
        ),
        ServerSpec(
            "waitress",
            "{bin}/waitress-serve --listen=127.0.0.1:{port} --threads={threads}"
            f" --connection-limit=4000 --channel-timeout={_KA} {{app}}",
            "10 worker threads; connection limit raised from 100 so 1,000 idle connections fit",
        ),
        ServerSpec(
            "cheroot",
            "{python} -m treadle_bench.cheroot_launch {port} {threads}",
            "cheroot.wsgi.Server(numthreads=10, timeout=300), keep_alive_conn_limit raised "
            "from 10; run by a small launcher (cheroot has no command line for a WSGI app)",
        ),
        ServerSpec(
            "gunicorn-gthread",
            "{bin}/gunicorn -k gthread -w 1 --threads {threads} --worker-connections 4000"
            f" --keep-alive {_KA} -b 127.0.0.1:{{port}} --log-level warning {{app}}",
            "one worker process with 10 threads; worker-connections raised from 1,000",
            tls_template="--certfile {cert} --keyfile {key}",
        ),
        ServerSpec(
            "gunicorn-sync",
            "{bin}/gunicorn -k sync -w {threads} -b 127.0.0.1:{port} --log-level warning {app}",
            "10 single-threaded worker processes: '10 threads' read as 10 requests at once. "
            "Sync workers close every connection (no keep-alive), so scenario 6 leaves it out",
            keeps_alive=False,
        ),
        ServerSpec(
            "granian",
            "{bin}/granian --interface wsgi --http 1 --host 127.0.0.1 --port {port}"
            " --workers 1 --blocking-threads {threads} --log-level warning {app}",
            "Rust server, the non-Python reference: 1 worker, 10 blocking threads run the app",
            tls_template="--ssl-certificate {cert} --ssl-keyfile {key}",
        ),
        ServerSpec(
            "treadle-w2",
            "{python} -m treadle --workers 2 --bind 127.0.0.1:{port} --threads {threads}"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "2 worker processes of 10 threads under treadle's supervisor, on one shared socket",
        ),
        ServerSpec(
            "gunicorn-treadle",
            "{bin}/gunicorn -k treadle.gunicorn.Worker -w 1 --threads {threads}"
            f" --worker-connections 4000 --keep-alive {_KA} -b 127.0.0.1:{{port}}"
            " --log-level warning {app}",
            "treadle's gunicorn worker class: gunicorn's arbiter, 1 worker of 10 treadle threads",
        ),
        ServerSpec(
            "gunicorn-treadle-w2",
            "{bin}/gunicorn -k treadle.gunicorn.Worker -w 2 --threads {threads}"
            f" --worker-connections 4000 --keep-alive {_KA} -b 127.0.0.1:{{port}}"
            " --log-level warning {app}",
            "the same, 2 workers",
        ),
        ServerSpec(
            "gunicorn-gthread-w2",
            "{bin}/gunicorn -k gthread -w 2 --threads {threads} --worker-connections 4000"
            f" --keep-alive {_KA} -b 127.0.0.1:{{port}} --log-level warning {{app}}",
            "2 worker processes with 10 threads each",
        ),
        ServerSpec(
            "granian-w2",
            "{bin}/granian --interface wsgi --http 1 --host 127.0.0.1 --port {port}"
            " --workers 2 --blocking-threads {threads} --log-level warning {app}",
            "2 workers, 10 blocking threads each",
        ),
        ServerSpec(
            "treadle-py311",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads}"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "treadle on CPython 3.11 (from the source tree, like 3.12 and 3.13), otherwise as "
            "treadle",
            python="3.11",
        ),
        ServerSpec(
            "treadle-py312",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads}"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "treadle on CPython 3.12 (from the source tree), otherwise as treadle",
            python="3.12",
        ),
        ServerSpec(
            "treadle-py313",
            "{python} -m treadle --bind 127.0.0.1:{port} --threads {threads}"
            f" --keep-alive {_KA} --log-level warning {{app}}",
            "treadle on CPython 3.13 (from the source tree), otherwise as treadle",
            python="3.13",
        ),
    )
}
DEFAULT_SERVERS = ("treadle", "waitress", "cheroot", "gunicorn-gthread", "gunicorn-sync", "granian")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Running:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def check_alive(self) -> None:
        """Raise with the end of the server's log when it has exited under us."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited ({self.proc.returncode}): {_tail(self.log, 1)}")


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Connect until the port answers; bounded, and give up at once if the server died."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not listening after {READY_TIMEOUT:.0f} s: {_tail(log)}")


def _tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group we created, then SIGKILL it if it has not gone within the timeout."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    # Children (gunicorn and granian workers) may outlive their parent; the group holds only
    # processes this harness started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running(spec: ServerSpec, logdir: Path, tls: TlsFiles | None = None) -> Iterator[Running]:
    """Start ``spec`` on a free port (serving HTTPS with ``tls``), wait until it accepts, and
    always stop it afterwards."""
    port = free_port()
    fd, name = tempfile.mkstemp(prefix=f"{spec.name}-", suffix=".log", dir=logdir)
    log = Path(name)
    env = spec.environ()
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(
            spec.command(port, tls),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, port, log)
        yield Running(spec, proc, port, log, tls is not None)
    finally:
        _stop(proc)


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (KiB), from /proc."""
    total = 0
    for current in _tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy so far (all processes, and time the
    hypervisor gave to other guests: steal), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    busy = sum(fields[:8]) - idle  # guest time is already inside user time
    return busy / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its living descendants."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
