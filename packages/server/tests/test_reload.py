"""``--reload`` (issue 12, section 1): a changed module is served by a new worker; a module that
no longer imports leaves the old one serving and its error printed. With watchfiles and with
the polling fallback."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from treadle.reloader import changes, snapshot

from ._procs import TREADLE, Tree, started

APP = """\
import os
VERSION = "{version}"
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]
"""
HAS_WATCHFILES = importlib.util.find_spec("watchfiles") is not None


def write(path: Path, text: str) -> None:
    """Replace the file whole, as an editor saves it (and a new size, so that polling sees it
    even within one tick of the file system's clock)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def body(tree: Tree) -> str:
    response = tree.get("/")
    assert response.status == 200
    return response.body.decode()


def reloaded(tree: Tree, mark: int) -> None:
    """Until the new worker serves alone: ready, and the old one stopped."""
    tree.wait_for(r"--reload: dev\.py changed: reloading", mark)
    tree.wait_for(r"reloaded: 1 worker of the new code ready", mark)
    tree.wait_for(r"worker \d+ \(pid \d+\) stopped$", mark)


@pytest.mark.parametrize(
    "watcher",
    [
        "polling",
        pytest.param(
            "watchfiles",
            marks=pytest.mark.skipif(not HAS_WATCHFILES, reason="watchfiles not installed"),
        ),
    ],
)
def test_reload_serves_new_code_and_keeps_the_old_when_the_new_does_not_import(
    tmp_path: Path, watcher: str
) -> None:
    module = tmp_path / "dev.py"
    write(module, APP.format(version="one"))
    env = {**os.environ, "TREADLE_RELOAD_POLLING": "1" if watcher == "polling" else "0"}
    argv = [*TREADLE, "--reload", "--bind", "127.0.0.1:0", "dev:app"]
    with started(argv, cwd=tmp_path, env=env) as tree:
        tree.listening()
        tree.wait_for(rf"--reload: watching {tmp_path} for \*\.py changes \({watcher}\)")
        tree.wait_for("1 worker ready")
        assert body(tree) == "one"

        mark = tree.mark()
        write(module, APP.format(version="second"))
        reloaded(tree, mark)
        assert body(tree) == "second"

        mark = tree.mark()
        write(module, APP.format(version="third").replace("def app(", "def app(:"))
        tree.wait_for(r"reload failed: .* exited with status 2 before it was ready", mark)
        assert f'File "{module}", line 3' in tree.text  # the new worker's error, file and line
        assert "SyntaxError" in tree.text
        assert body(tree) == "second"  # the old worker still serves

        mark = tree.mark()
        write(module, APP.format(version="fourth"))
        reloaded(tree, mark)
        assert body(tree) == "fourth"


def test_reload_waits_for_a_fix_when_the_app_does_not_import_at_first(tmp_path: Path) -> None:
    module = tmp_path / "dev.py"
    write(module, "VERSION = (\n")
    env = {**os.environ, "TREADLE_RELOAD_POLLING": "1"}
    argv = [*TREADLE, "--reload", "--bind", "127.0.0.1:0", "dev:app"]
    with started(argv, cwd=tmp_path, env=env) as tree:
        tree.listening()
        tree.wait_for("before it was ready: waiting for a change to try again")
        mark = tree.mark()
        write(module, APP.format(version="fixed"))
        tree.wait_for("1 worker ready", mark)
        assert body(tree) == "fixed"


def test_snapshot_sees_python_files_outside_caches_and_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not python\n")
    for skipped in (".git", "__pycache__", "venv", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "skip.py").write_text("")
    (tmp_path / "myenv").mkdir()
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("")
    (tmp_path / "myenv" / "lib.py").write_text("")
    before = snapshot([str(tmp_path)])
    assert list(before) == [str(tmp_path / "pkg" / "mod.py")]
    (tmp_path / "pkg" / "mod.py").write_text("x = 22\n")
    (tmp_path / "new.py").write_text("")
    after = snapshot([str(tmp_path)])
    assert changes(before, after) == [str(tmp_path / "new.py"), str(tmp_path / "pkg" / "mod.py")]
    assert changes(after, after) == []
