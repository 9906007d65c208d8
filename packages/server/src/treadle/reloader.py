"""``--reload``, for development: notice when a Python file of the app appears, changes or goes.

The supervisor (supervisor.py) watches the current directory (after ``--chdir``) and the
``--pythonpath`` directories, and reloads its worker when this says a ``*.py`` file changed: a
new worker imports the new code and, only once it is ready, the old one stops. So an edit that
breaks the import (a syntax error) leaves the old worker serving, and the new worker's error is
printed with its file and line.

Two ways to watch, one interface: ``watchfiles`` (inotify, FSEvents...; an optional extra,
``pip install treadle[reload]``) when it is installed, else a thread that compares every file's
modification time and size every ``POLL_INTERVAL`` (``TREADLE_RELOAD_POLLING=1`` forces this,
e.g. on a network file system that sends no events). Either wakes the supervisor through a
pipe, whose read end it polls beside the workers' pipes. Directories no one edits an app in are
skipped: virtual environments, caches, version control data.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

error_log = logging.getLogger("treadle.error")

POLL_INTERVAL = 0.5
POLLING_ENV = "TREADLE_RELOAD_POLLING"
SKIP_DIRS = frozenset(
    (
        "__pycache__",
        "node_modules",
        "site-packages",
        "venv",
        "env",
        "build",
        "dist",
    )
)

Snapshot = dict[str, tuple[int, int]]


def _skipped(dirpath: str, name: str) -> bool:
    if name.startswith(".") or name in SKIP_DIRS:  # .git, .venv, .tox, .mypy_cache...
        return True
    return os.path.exists(os.path.join(dirpath, name, "pyvenv.cfg"))  # a virtualenv


def snapshot(dirs: Iterable[str]) -> Snapshot:
    """Modification time and size of every ``*.py`` file under ``dirs``."""
    found: Snapshot = {}
    for top in dirs:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not _skipped(dirpath, d)]
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):  # gone since the listing
                    st = os.stat(path)
                    found[path] = (st.st_mtime_ns, st.st_size)
    return found


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """The files added, removed or changed between two snapshots."""
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


class Watcher:
    """Watches ``dirs`` in a thread; ``fileno()`` turns readable when ``take()`` has news."""

    def __init__(self, dirs: Sequence[str], force_polling: bool | None = None) -> None:
        self.dirs = [os.path.abspath(d) for d in dirs]
        if force_polling is None:
            force_polling = os.environ.get(POLLING_ENV, "") not in ("", "0")
        self._watchfiles: Any = None
        if not force_polling:
            with contextlib.suppress(ImportError):
                self._watchfiles = importlib.import_module("watchfiles")
        self.kind = "watchfiles" if self._watchfiles is not None else "polling"
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="treadle-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def fileno(self) -> int:
        return self._read

    def take(self) -> list[str]:
        """The files changed since the last call (empty if none)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        with self._lock:
            changed, self._changed = sorted(self._changed), set()
        return changed

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        os.close(self._read)
        os.close(self._write)

    def _report(self, paths: Iterable[str]) -> None:
        with self._lock:
            self._changed.update(paths)
        with contextlib.suppress(BlockingIOError):  # a full pipe has news already
            os.write(self._write, b"!")

    def _run(self) -> None:
        try:
            if self._watchfiles is not None:
                self._watch_events()
            else:
                self._poll()
        except Exception:
            error_log.exception("--reload: watching for changes failed; no more reloads")

    def _poll(self) -> None:
        before = snapshot(self.dirs)
        while not self._stop.wait(POLL_INTERVAL):
            after = snapshot(self.dirs)
            changed = changes(before, after)
            before = after
            if changed:
                self._report(changed)

    def _watch_events(self) -> None:
        wf = self._watchfiles
        for batch in wf.watch(
            *self.dirs,
            watch_filter=wf.PythonFilter(),
            stop_event=self._stop,
            debounce=400,
            raise_interrupt=False,
        ):
            self._report(path for _, path in batch)
