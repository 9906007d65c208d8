"""Locustfile: clients that starve a thread pool, one user class per attack.

Each attacker holds one connection and misbehaves on it until the server closes it, then opens
another (a real attacker would); the shape runs one attack at a time, each with 1.5x the pool's
thread count of attackers by default, while a newcomer (saturation.py) opens a fresh connection
every quarter second and must be answered within `--attack-bound-ms`. A pool that hands a thread
to a connection before its request is whole, or keeps it while the client does not read, runs
out of threads here; one that parks such connections outside its threads does not.

- `SilentUser`: connects and sends nothing.
- `HalfHeadUser`: sends half a request head, then one more byte every `--trickle-seconds`.
- `SlowBodyUser`: sends a whole head with a 1 MB Content-Length, then the body a byte at a time.
- `NoReadUser`: with a small receive buffer, sends `--big-bytes` (more than the socket buffers
  hold) to the echo route, and never reads the answer.
- `IdleAttackUser`: the idle keep-alive user of the steps, as an attack of its own.

When the server closes an attacker's connection, the attacker reports "ATTACK held" with the
time the connection lasted: the verdict's "closed by server" column.
"""

from __future__ import annotations

import socket
import time

import gevent  # type: ignore[import-untyped]
from locust import User, constant, task
from locust.env import Environment

from _session import settings_of
from _tally import held
from _wire import SMALL_RCVBUF, Target, established
from saturation import IdleKeepAliveUser

RETRY_AFTER_ERROR = 0.2  # seconds before an attacker tries again when it could not connect


class AttackUser(User):
    abstract = True
    attack = ""
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = settings_of(environment)
        self.target = Target.of(environment.host or "")

    def open(self) -> socket.socket:
        """Connect and send what this attacker sends first."""
        return self.target.connect(self.settings.request_timeout)

    def keep_up(self, sock: socket.socket) -> None:
        """What this attacker does every trickle interval while it holds its connection."""

    @task
    def hold(self) -> None:
        opened = time.perf_counter()
        error: BaseException | None = None
        try:
            sock = self.open()
        except OSError as exc:
            error = exc
        else:
            with sock:
                sock.settimeout(self.settings.request_timeout)
                try:
                    while established(sock):
                        gevent.sleep(self.settings.trickle_seconds)
                        self.keep_up(sock)
                except OSError:
                    pass  # the server closed it: that is what we wait for
        self.environment.events.request.fire(
            request_type="HOLD",
            name=held(self.attack),
            response_time=(time.perf_counter() - opened) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
        if error is not None:
            gevent.sleep(RETRY_AFTER_ERROR)


class SilentUser(AttackUser):
    attack = "silent"


class HalfHeadUser(AttackUser):
    attack = "half-head"

    def open(self) -> socket.socket:
        sock = super().open()
        head = self.target.head("GET", self.settings.cheap_path, "X-Slow: a")
        sock.sendall(head[: -len(b"a\r\n\r\n")])  # the head stops inside its last field
        return sock

    def keep_up(self, sock: socket.socket) -> None:
        sock.sendall(b"a")


class SlowBodyUser(AttackUser):
    attack = "slow-body"
    body_bytes = 1_000_000

    def open(self) -> socket.socket:
        sock = super().open()
        fields = ("Content-Type: application/octet-stream", f"Content-Length: {self.body_bytes}")
        sock.sendall(self.target.head("POST", self.settings.body_path, *fields))
        return sock

    def keep_up(self, sock: socket.socket) -> None:
        sock.sendall(b"a")


class NoReadUser(AttackUser):
    attack = "no-read"

    def open(self) -> socket.socket:
        sock = self.target.connect(self.settings.request_timeout, rcvbuf=SMALL_RCVBUF)
        size = self.settings.big_bytes
        fields = ("Content-Type: application/octet-stream", f"Content-Length: {size}")
        sock.sendall(self.target.head("POST", self.settings.body_path, *fields))
        sock.sendall(b"a" * size)
        return sock


class IdleAttackUser(IdleKeepAliveUser):
    attack = "idle-keep-alive"
    fixed_count = 0
