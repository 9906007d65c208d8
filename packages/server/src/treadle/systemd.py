"""systemd's two small protocols, in the standard library: socket activation and ``sd_notify``.

Socket activation (``sd_listen_fds(3)``): systemd binds the sockets of a ``.socket`` unit itself
and starts the service with them open from file descriptor 3 on, saying how many in
``LISTEN_FDS`` and for which process in ``LISTEN_PID`` (so a child that inherits the environment
does not take them for its own). The server then never binds, restarts lose no connection (they
queue in the kernel), and the port may be privileged while the service is not.

Readiness (``sd_notify(3)``): with ``Type=notify`` systemd passes ``NOTIFY_SOCKET``, a Unix
datagram socket (a path, or ``@name`` in the abstract namespace), and waits for ``READY=1``
before it starts what depends on the service; ``STOPPING=1`` says a stop has begun.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import MutableMapping

error_log = logging.getLogger("treadle.error")

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
_ACTIVATION_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


def listen_fds(environ: MutableMapping[str, str] | None = None, *, unset: bool = True) -> list[int]:
    """The file descriptors systemd passed to this process (empty when not socket-activated).

    Like ``sd_listen_fds(unset_environment=1)``, the variables are removed once read (``unset``),
    so a process the app starts does not see them, and the descriptors are made close-on-exec.
    """
    env = os.environ if environ is None else environ
    try:
        count = int(env.get("LISTEN_FDS", "0"))
        pid = int(env.get("LISTEN_PID", "0"))
    except ValueError:
        count, pid = 0, 0
    if unset:
        for name in _ACTIVATION_VARS:
            env.pop(name, None)
    if pid != os.getpid() or count < 1:
        return []
    fds = list(range(LISTEN_FDS_START, LISTEN_FDS_START + count))
    for fd in fds:
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)
    return fds


def notify(state: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to ``NOTIFY_SOCKET``; False when unset or unreachable.

    A failed notification is logged and otherwise ignored: the service manager, not the server,
    decides what a missing ``READY=1`` means.
    """
    env = os.environ if environ is None else environ
    target = env.get("NOTIFY_SOCKET", "")
    if not target:
        return False
    if target.startswith("@"):
        target = "\0" + target[1:]
    elif not target.startswith("/"):
        error_log.warning("NOTIFY_SOCKET=%r is not a Unix socket path; not notifying", target)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode("utf-8"), target)
    except OSError as exc:
        error_log.warning("cannot notify systemd at %r: %s", env["NOTIFY_SOCKET"], exc)
        return False
    return True
