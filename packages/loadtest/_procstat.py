"""Samples a server from /proc (psutil): threads, busy threads, CPU and open connections.

For any server running on this machine, given its PID (`--server-pid`; scripts/with-server
passes it on), so a pool's load shows for servers without a stats endpoint too. The process's
children count with it (gunicorn serves from a worker process under its arbiter).

A thread counts as *busy* unless it waits on a lock or on epoll, read from the kernel's
`wchan`: an idle worker of every Python pool waits on its queue's lock (a futex), while a busy
one runs, sleeps in the app, or blocks on a socket. Each process's main thread is left out: it
runs the server's accept or event loop, which waits in poll or select on some servers and would
look busy forever.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

IDLE_WAITS = ("futex", "epoll")


def thread_busy(pid: int, tid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan") as f:
            wchan = f.read()
    except OSError:
        return False
    return not any(wait in wchan for wait in IDLE_WAITS)


class ProcSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: tuple[float, float] | None = None  # (wall clock, CPU seconds)

    def sample(self) -> dict[str, Any]:
        """The numbers now; {} when the process is gone (or was never there)."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return {}
        threads = busy = 0
        cpu = 0.0
        peers: set[Any] = set()
        for proc in procs:
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                for thread in proc.threads():
                    threads += 1
                    busy += thread.id != proc.pid and thread_busy(proc.pid, thread.id)
                for conn in proc.net_connections(kind="tcp"):
                    if conn.raddr and conn.status != psutil.CONN_LISTEN:
                        peers.add((conn.laddr, conn.raddr))
            except psutil.Error:
                continue
        now = time.monotonic()
        row: dict[str, Any] = {
            "proc_threads": threads,
            "proc_busy_threads": busy,
            "proc_connections": len(peers),
        }
        if self.last is not None and now > self.last[0]:
            row["proc_cpu_percent"] = round(100 * (cpu - self.last[1]) / (now - self.last[0]), 1)
        self.last = (now, cpu)
        return row
