"""/proc sampling: threads, CPU, connections, and which threads are busy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from _procstat import ProcSampler, thread_busy

DEADLINE = 10.0


def wait_in_kernel(tid: int, on_socket: bool = False) -> str:
    """The thread's wchan once it is blocked (a condition we poll for, not a fixed sleep).

    On a busy machine a thread may first wait for the GIL, on a futex too: one meant to block
    on a socket is waited for until it does.
    """
    until = time.monotonic() + DEADLINE
    while time.monotonic() < until:
        with open(f"/proc/{os.getpid()}/task/{tid}/wchan") as f:
            wchan = f.read()
        if wchan not in ("", "0") and not (on_socket and "futex" in wchan):
            return wchan
    raise AssertionError(f"thread {tid} never blocked")


def test_a_thread_waiting_on_a_lock_is_idle_and_one_blocked_on_a_socket_is_busy() -> None:
    event = threading.Event()
    left, right = socket.socketpair()
    waiter = threading.Thread(target=event.wait, daemon=True)
    reader = threading.Thread(target=right.recv, args=(1,), daemon=True)
    waiter.start()
    reader.start()
    try:
        assert waiter.native_id is not None and reader.native_id is not None
        assert "futex" in wait_in_kernel(waiter.native_id)
        wait_in_kernel(reader.native_id, on_socket=True)
        assert not thread_busy(os.getpid(), waiter.native_id)
        assert thread_busy(os.getpid(), reader.native_id)
    finally:
        event.set()
        left.sendall(b"x")
        waiter.join(DEADLINE)
        reader.join(DEADLINE)
        left.close()
        right.close()


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
