"""``--workers``: the supervisor and its worker processes (issue 12, section 1), for real, in
subprocesses. Every test waits on what the processes log, and kills its process group at the
end."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from ._proc import notify_socket
from ._procs import TREADLE, Tree, alive, started, wait_gone
from ._wire import Client

APP = """\
import os, time
VERSION = "{version}"
def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/exit":
        os._exit(3)
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or "1"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{{VERSION}} {{os.getpid()}}".encode()]
"""
READY = r"(\d+) workers? ready \(pids ([\d, ]+)\)"


def write_app(folder: Path, version: str = "one") -> None:
    (folder / "webapp.py").write_text(APP.format(version=version))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


def ready_pids(tree: Tree, start: int = 0) -> list[int]:
    return [int(pid) for pid in tree.wait_for(READY, start)[2].split(", ")]


def answer(tree: Tree, target: str = "/") -> tuple[str, int]:
    """(the app's VERSION, the worker's pid)."""
    response = tree.get(target)
    assert response.status == 200, response
    version, pid = response.body.decode().split()
    return version, int(pid)


@pytest.fixture
def workers(site: Path) -> Iterator[Tree]:
    argv = [*TREADLE, "--bind", "127.0.0.1:0", "-w", "2", "--stats-path", "/_stats", "webapp:app"]
    with started(argv, cwd=site) as tree:
        tree.listening()
        yield tree


def stats(tree: Tree, query: str = "") -> bytes:
    return tree.get("/_stats" + query).body


def test_workers_share_the_socket_and_stats_show_each_with_its_pid_and_the_total(
    workers: Tree,
) -> None:
    pids = ready_pids(workers)
    assert len(set(pids)) == 2 and os.getpid() not in pids
    for _ in range(4):
        version, pid = answer(workers)
        assert version == "one" and pid in pids
    # Every worker publishes its numbers once ready, and every half second after.
    doc = json.loads(stats(workers))
    assert sorted(w["pid"] for w in doc["workers"]) == sorted(pids)
    assert doc["threads"] == 10 == sum(w["threads"] for w in doc["workers"])
    assert doc["requests_served"] == sum(w["requests_served"] for w in doc["workers"])
    prometheus = stats(workers, "?format=prometheus").decode().splitlines()
    assert "treadle_threads 10" in prometheus
    for pid in pids:
        assert f'treadle_threads{{pid="{pid}"}} 5' in prometheus


def test_a_dead_worker_is_logged_with_its_status_and_replaced(workers: Tree) -> None:
    pids = ready_pids(workers)
    mark = workers.mark()
    os.kill(pids[0], signal.SIGKILL)
    workers.wait_for(rf"worker \d \(pid {pids[0]}\) was killed by SIGKILL while serving; "
                     r"starting another in 0\.1 s", mark)  # fmt: skip
    replacement = int(workers.wait_for(r"worker 3 \(pid (\d+)\) ready", mark)[1])
    with pytest.raises(ConnectionError):
        workers.get("/exit")  # one of the two exits with status 3
    workers.wait_for(r"exited with status 3 while serving; starting another in 0\.\d s", mark)
    workers.wait_for(r"worker 4 \(pid \d+\) ready", mark)
    assert pids[0] not in {answer(workers)[1] for _ in range(6)}
    assert replacement not in pids


def test_a_worker_that_keeps_failing_backs_off_and_recovers(site: Path) -> None:
    argv = [*TREADLE, "--bind", "127.0.0.1:0", "-w", "1", "webapp:app"]
    with started(argv, cwd=site) as tree:
        tree.listening()
        (pid,) = ready_pids(tree)
        (site / "webapp.py").write_text("raise RuntimeError('database down')\n")
        mark = tree.mark()
        os.kill(pid, signal.SIGTERM)  # from outside: not the supervisor's own stop
        tree.wait_for(rf"\(pid {pid}\) exited with status 0 while serving; starting another "
                      r"in 0\.1 s", mark)  # fmt: skip
        for delay in ("0.2", "0.4"):
            tree.wait_for(rf"exited with status 2 before it was ready; starting another in "
                          rf"{delay} s", mark)  # fmt: skip
        assert "RuntimeError: database down" in tree.text  # the worker's own error
        write_app(site, "two")
        tree.wait_for(r"worker \d+ \(pid \d+\) ready", tree.mark())
        assert answer(tree)[0] == "two"


def test_an_app_that_does_not_import_stops_the_supervisor_with_status_2(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def app(:\n")
    argv = [*TREADLE, "--bind", "127.0.0.1:0", "-w", "2", "broken:app"]
    with started(argv, cwd=tmp_path) as tree:
        assert tree.wait(20) == 2
        assert f'File "{tmp_path / "broken.py"}", line 1' in tree.text
        assert "before it was ready: stopping" in tree.text


def test_sigterm_drains_every_worker(workers: Tree) -> None:
    ready_pids(workers)
    clients = [workers.connect() for _ in range(2)]
    for client in clients:
        client.send(b"GET /sleep?1.5 HTTP/1.1\r\nHost: t\r\n\r\n")
    deadline = time.monotonic() + 10
    while json.loads(stats(workers))["busy_threads"] < 2:  # both are in the app
        assert time.monotonic() < deadline
    workers.signal(signal.SIGTERM)
    for client in clients:
        assert client.read_response().status == 200
        client.close()
    assert workers.wait() == 0
    assert workers.count(r"worker \d \(pid \d+\) stopped$") == 2
    assert "every worker has stopped" in workers.text


def test_sigint_stops_every_worker_at_once(workers: Tree) -> None:
    pids = ready_pids(workers)
    client = workers.connect()
    client.send(b"GET /sleep?30 HTTP/1.1\r\nHost: t\r\n\r\n")
    deadline = time.monotonic() + 10
    while json.loads(stats(workers))["busy_threads"] < 1:
        assert time.monotonic() < deadline
    started_at = time.monotonic()
    workers.signal(signal.SIGINT)
    assert workers.wait() == 0
    assert time.monotonic() - started_at < 8  # not the sleeper's 30 s
    wait_gone(pids)
    assert "1 cut: 'GET /sleep?30 HTTP/1.1'" in workers.text
    client.close()


def test_sighup_reloads_new_code_with_no_refused_connection(workers: Tree, site: Path) -> None:
    old = ready_pids(workers)
    failures: list[BaseException] = []
    answers: list[tuple[str, int]] = []
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            try:
                answers.append(answer(workers))
            except BaseException as exc:
                failures.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        write_app(site, "two")
        mark = workers.mark()
        workers.signal(signal.SIGHUP)
        new = [
            int(p)
            for p in workers.wait_for(r"reloaded: .* ready \(pids ([\d, ]+)\)", mark)[1].split(", ")
        ]
        for pid in old:
            workers.wait_for(rf"worker \d \(pid {pid}\) stopped$", mark)
        count = len(answers)
        while len(answers) < count + 20:  # some answers from the new workers alone
            assert thread.is_alive()
    finally:
        done.set()
        thread.join(10)
    assert not failures, failures[:3]
    assert {pid for version, pid in answers if version == "one"} <= set(old)
    assert {pid for version, pid in answers if version == "two"} <= set(new)
    assert answers[-1][0] == "two" and answers[0][0] == "one"


def test_a_reload_that_does_not_import_leaves_the_old_workers_serving(
    workers: Tree, site: Path
) -> None:
    old = ready_pids(workers)
    (site / "webapp.py").write_text("VERSION = (\n")
    mark = workers.mark()
    workers.signal(signal.SIGHUP)
    workers.wait_for(r"reload failed: worker \d \(pid \d+\) exited with status 2 before it "
                     r"was ready; the workers already serving go on", mark)  # fmt: skip
    assert f'File "{site / "webapp.py"}", line 1' in workers.text
    assert {answer(workers)[1] for _ in range(4)} <= set(old)
    write_app(site, "three")
    mark = workers.mark()
    workers.signal(signal.SIGHUP)  # fixed: this one goes through
    workers.wait_for("reloaded:", mark)
    for pid in old:  # until they stop, the old workers may still take a connection
        workers.wait_for(rf"worker \d \(pid {pid}\) stopped$", mark)
    assert answer(workers)[0] == "three"


def test_sigttin_and_sigttou_add_and_remove_a_worker(workers: Tree) -> None:
    first = ready_pids(workers)
    mark = workers.mark()
    workers.signal(signal.SIGTTIN)
    workers.wait_for("SIGTTIN: 3 workers", mark)
    third = int(workers.wait_for(r"worker 3 \(pid (\d+)\) ready", mark)[1])
    mark = workers.mark()
    workers.signal(signal.SIGTTOU)
    workers.wait_for("SIGTTOU: 2 workers", mark)
    gone = int(workers.wait_for(r"worker \d \(pid (\d+)\) stopped$", mark)[1])
    assert gone == first[0]  # the oldest goes
    wait_gone([gone])
    assert all(alive(pid) for pid in (first[1], third))


def test_max_requests_replaces_a_worker_once_its_replacement_is_ready(site: Path) -> None:
    argv = [*TREADLE, "--bind", "127.0.0.1:0", "--max-requests", "3", "webapp:app"]
    with started(argv, cwd=site) as tree:
        tree.listening()
        (first,) = ready_pids(tree)
        pids = [answer(tree)[1] for _ in range(3)]
        assert pids == [first] * 3
        tree.wait_for(rf"worker 1 \(pid {first}\) reached --max-requests: starting its "
                      r"replacement")  # fmt: skip
        second = int(tree.wait_for(r"worker 2 \(pid (\d+)\) ready")[1])
        tree.wait_for(rf"worker 1 \(pid {first}\) stopped$")
        assert answer(tree)[1] == second


FAKE_WORKER = """\
import json, os, signal, sys, time
spec = json.loads(os.environ["TREADLE_SUPERVISED"])
record = {"spec": spec, "notify": os.environ.get("NOTIFY_SOCKET")}
with open(os.path.join(sys.argv[1], f"{os.getpid()}.json"), "w") as f:
    json.dump(record, f)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
os.write(spec["pipe"], b"R")
while True:
    time.sleep(1)
"""


def test_jitter_spreads_max_requests_and_workers_do_not_notify_systemd(
    tmp_path: Path,
) -> None:
    """The supervisor alone, with stand-in workers that record what they were given."""
    from treadle.supervisor import Supervisor

    script = tmp_path / "fake.py"
    script.write_text(FAKE_WORKER)
    code = (
        "import sys\n"
        "from treadle.supervisor import Supervisor\n"
        f"s = Supervisor([{str(tmp_path)!r}], ['127.0.0.1:0'], workers=8, max_requests=100,\n"
        f"    max_requests_jitter=50, command=[sys.executable, {str(script)!r}])\n"
        "import logging; logging.basicConfig(level='INFO')\n"
        "sys.exit(s.run())\n"
    )
    assert Supervisor  # importable as a library
    with (
        notify_socket(tmp_path) as (notify, env),
        started([sys.executable, "-c", code], env=env) as tree,
    ):
        tree.wait_for("8 workers ready")
        assert notify.recv(4096).startswith(b"READY=1\nSTATUS=8 workers listening on")
        tree.signal(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"
        assert tree.wait() == 0
    records = [json.loads(p.read_text()) for p in tmp_path.glob("[0-9]*.json")]
    assert len(records) == 8
    limits = [r["spec"]["max_requests"] for r in records]
    assert all(100 <= limit <= 150 for limit in limits) and len(set(limits)) > 1
    assert all(r["notify"] is None for r in records)
    assert len({r["spec"]["number"] for r in records}) == 8


def test_a_worker_that_never_gets_ready_is_killed(tmp_path: Path) -> None:
    code = (
        "import logging, sys\n"
        "from treadle.supervisor import Supervisor\n"
        "logging.basicConfig(level='INFO')\n"
        "s = Supervisor([], ['127.0.0.1:0'], boot_timeout=0.5,\n"
        "    command=[sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "sys.exit(s.run())\n"
    )
    with started([sys.executable, "-c", code]) as tree:
        assert tree.wait() == 1
        assert tree.count(r"worker 1 \(pid \d+\) not ready after 0\.5 s: killed") == 1
        tree.wait_for("was killed by SIGKILL before it was ready: stopping")


def test_an_idle_supervisor_sleeps(workers: Tree) -> None:
    """It looks at its workers twice a second, not a hundred times."""
    ready_pids(workers)
    before = wakeups(workers.proc.pid)
    time.sleep(1.0)  # the time being measured, not a wait for the server
    assert wakeups(workers.proc.pid) - before < 10


def wakeups(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


def test_ready_is_sent_to_systemd_once_every_worker_is_ready(site: Path) -> None:
    with notify_socket(site) as (notify, env):
        argv = [*TREADLE, "--bind", "127.0.0.1:0", "-w", "2", "webapp:app"]
        with started(argv, cwd=site, env=env) as tree:
            host, port = tree.listening()
            message = notify.recv(4096).decode()
            tree.wait_for(READY)  # logged just before it was sent
            assert message == f"READY=1\nSTATUS=2 workers listening on http://{host}:{port}"
            tree.signal(signal.SIGHUP)
            assert notify.recv(4096) == b"RELOADING=1"
            assert notify.recv(4096).startswith(b"READY=1")
            tree.signal(signal.SIGTERM)
            assert notify.recv(4096) == b"STOPPING=1"
            assert tree.wait() == 0


def test_workers_carry_tls_and_plain_binds_through(site: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(site / "server.pem"))
    argv = [*TREADLE, "--bind", "127.0.0.1:0", "--bind", "http://127.0.0.1:0", "-w", "2",
            "--certfile", "server.pem", "webapp:app"]  # fmt: skip
    with started(argv, cwd=site) as tree:
        match = tree.wait_for(r"listening on https://127\.0\.0\.1:(\d+), http://127\.0\.0\.1:(\d+)")
        ready_pids(tree)
        tree.addr = ("127.0.0.1", int(match[2]))
        assert answer(tree)[0] == "one"  # plain
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with (
            socket.create_connection(("127.0.0.1", int(match[1])), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK") and b"\r\n\r\none " in data


def test_workers_stop_when_the_supervisor_is_killed(workers: Tree) -> None:
    pids = ready_pids(workers)
    os.kill(workers.proc.pid, signal.SIGKILL)
    wait_gone(pids, timeout=10)


def test_unix_socket_is_shared_and_removed_at_the_end(site: Path) -> None:
    path = site / "w.sock"
    argv = [*TREADLE, "--bind", str(path), "-w", "2", "webapp:app"]
    with started(argv, cwd=site) as tree:
        ready_pids(tree)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            client = Client(sock)
            response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert response.body.startswith(b"one ")
            client.close()
        tree.signal(signal.SIGTERM)
        assert tree.wait() == 0
    assert not path.exists()


def test_bad_process_arguments_are_one_line_and_exit_2() -> None:
    for args, message in (
        (["-w", "0"], "argument -w/--workers: '0' must be at least 1"),
        (["--max-requests-jitter", "5"], "--max-requests-jitter needs --max-requests"),
        (["--max-requests", "x"], "argument --max-requests: 'x' is not a whole number"),
    ):
        out = subprocess.run(
            [*TREADLE, *args, "webapp:app"], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 2
        assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr


def test_socket_activated_workers_share_systemds_socket(site: Path) -> None:
    from .test_systemd import ACTIVATE

    with socket.create_server(("127.0.0.1", 0)) as listener:
        fd = listener.fileno()
        argv = [sys.executable, "-c", ACTIVATE, str(fd), "-w", "2", "webapp:app"]
        with started(argv, cwd=site, pass_fds=[fd]) as tree:
            assert tree.listening() == listener.getsockname()
            pids = ready_pids(tree)
            assert {answer(tree)[1] for _ in range(4)} <= set(pids)
            tree.signal(signal.SIGTERM)
            assert tree.wait() == 0
