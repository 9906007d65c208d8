"""systemd: socket activation (LISTEN_FDS / LISTEN_PID, --bind fd://N) and sd_notify."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from treadle import systemd

from ._proc import TREADLE, notify_socket, spawned, unix_get

# What systemd (or systemd-socket-activate) does between fork and exec: the listening socket
# becomes fd 3, LISTEN_PID names the process about to exec (exec keeps the pid).
ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
os.execv(sys.executable, [sys.executable, "-m", "treadle", *sys.argv[2:]])
"""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tr-") as name:
        yield Path(name)


def test_listen_fds_for_this_process_from_3_and_unsets_the_variables() -> None:
    env = {"LISTEN_FDS": "2", "LISTEN_PID": str(os.getpid()), "LISTEN_FDNAMES": "a:b", "X": "1"}
    assert systemd.listen_fds(env) == [3, 4]
    assert env == {"X": "1"}  # a process the app starts must not take them for its own


@pytest.mark.parametrize(
    "env",
    [
        {"LISTEN_FDS": "1", "LISTEN_PID": "1"},  # meant for another process
        {"LISTEN_FDS": "1"},
        {"LISTEN_FDS": "x", "LISTEN_PID": "{pid}"},
        {"LISTEN_FDS": "0", "LISTEN_PID": "{pid}"},
        {},
    ],
)
def test_listen_fds_not_for_us(env: dict[str, str]) -> None:
    env = {k: v.format(pid=os.getpid()) for k, v in env.items()}
    assert systemd.listen_fds(env) == []


def test_notify_sends_a_datagram_to_a_path(short_dir: Path) -> None:
    with notify_socket(short_dir) as (sock, env):
        assert systemd.notify("READY=1\nSTATUS=up", env)
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_notify_to_the_abstract_namespace() -> None:
    name = f"treadle-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


def test_notify_without_or_with_a_dead_socket_is_quiet(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not systemd.notify("READY=1", {})
    with caplog.at_level(logging.WARNING, "treadle.error"):
        assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(short_dir / "gone")})
        assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": "relative"})
    assert len(caplog.records) == 2


def test_socket_activated_with_notify(short_dir: Path) -> None:
    """No --bind: serve on systemd's socket; READY=1 once serving, STOPPING=1 on SIGTERM."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        notify_socket(short_dir) as (notify, env),
    ):
        port = listener.getsockname()[1]
        argv = [sys.executable, "-c", ACTIVATE, str(listener.fileno()), "treadle.demo:app"]
        with spawned(argv, env=env, pass_fds=[listener.fileno()]) as (proc, url):
            assert url == f"http://127.0.0.1:{port}"
            assert notify.recv(4096) == f"READY=1\nSTATUS=listening on {url}".encode()
            assert httpx.get(url + "/hello").text == "Hello, world!"
            proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096) == b"STOPPING=1"
            assert proc.wait(10) == 0


def test_bind_fd_serves_an_inherited_unix_socket_and_leaves_its_file(short_dir: Path) -> None:
    path = short_dir / "inherited.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        fd = listener.fileno()
        argv = [*TREADLE, "--bind", f"fd://{fd}", "treadle.demo:app"]
        with spawned(argv, pass_fds=[fd]) as (proc, where):
            assert where == f"unix:{path}"
            assert unix_get(path).body == b"Hello, world!"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        assert path.exists()  # whoever made the socket owns its file


def test_bind_fd_that_is_not_a_socket_is_exit_1() -> None:
    read_end, write_end = os.pipe()
    try:
        argv = [*TREADLE, "--bind", f"fd://{read_end}", "treadle.demo:app"]
        with spawned(argv, pass_fds=[read_end], ready=None) as (proc, _):
            assert proc.wait(10) == 1
            assert proc.stderr is not None
            assert proc.stderr.read().strip().splitlines()[-1] == (
                f"treadle: error: cannot listen: [Errno {errno.ENOTSOCK}] fd://{read_end}: "
                f"{os.strerror(errno.ENOTSOCK)}"
            )
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(
    not shutil.which("systemd-socket-activate"), reason="no systemd-socket-activate"
)
def test_under_systemd_socket_activate(short_dir: Path) -> None:
    """systemd's own tool: it listens, and execs treadle with the socket on the first client."""
    path = short_dir / "activated.sock"
    argv = ["systemd-socket-activate", "-l", path, *TREADLE, "treadle.demo:app"]
    with spawned(argv, ready=re.compile(r"(Listening on .* as 3)")) as (proc, _):
        assert unix_get(path).body == b"Hello, world!"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
