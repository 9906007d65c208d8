"""/proc sampling: threads, CPU, connections, and which threads are busy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from _procstat import ProcSampler

HERE = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: the other test modules import Locust, which patches threading for
# gevent, and green threads never block in the kernel.
THREADS = """
import os, socket, sys, threading, time
from _procstat import thread_busy

def blocked(tid, on_socket):
    # The thread's wchan once it blocks (polled for, not a fixed sleep). On a busy machine a
    # thread may first wait for the GIL, on a futex too: one meant for a socket is waited for.
    until = time.monotonic() + 10
    while time.monotonic() < until:
        with open(f"/proc/{os.getpid()}/task/{tid}/wchan") as f:
            wchan = f.read()
        if wchan not in ("", "0") and not (on_socket and "futex" in wchan):
            return wchan
    sys.exit(f"thread {tid} never blocked")

event = threading.Event()
left, right = socket.socketpair()
waiter = threading.Thread(target=event.wait)
reader = threading.Thread(target=right.recv, args=(1,))
waiter.start()
reader.start()
print(blocked(waiter.native_id, False), blocked(reader.native_id, True))
print(thread_busy(os.getpid(), waiter.native_id), thread_busy(os.getpid(), reader.native_id))
event.set()
left.sendall(b"x")
"""


def test_a_thread_waiting_on_a_lock_is_idle_and_one_blocked_on_a_socket_is_busy() -> None:
    done = subprocess.run([sys.executable, "-c", THREADS], cwd=HERE, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    wchans, busy = done.stdout.splitlines()
    assert "futex" in wchans.split()[0]
    assert busy == "False True"


def test_sample_counts_threads_connections_and_cpu() -> None:
    sampler = ProcSampler(os.getpid())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            first = sampler.sample()
            second = sampler.sample()
    assert first["proc_threads"] >= 1
    assert first["proc_connections"] >= 2  # both ends are ours
    assert "proc_cpu_percent" not in first
    assert second["proc_cpu_percent"] >= 0


def test_a_process_that_is_gone_gives_nothing() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert ProcSampler(int(child.stdout)).sample() == {}
