"""Another project's suite runs the catalogue through its own `conformance_target` fixture.

The README's example (its conftest.py and test module, taken from the README itself) is written
to a temporary project whose fixture starts `tests._lax` instead of waitress, and pytest runs
it in a subprocess: a strict server passes, a MUST miss fails the run (exit 1), a SHOULD miss
only warns. `--server-cmd` names a program that does not exist: the plugin would end the run
with exit 6 if it tried to start its own target beside the overridden fixture.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
README = HERE.parent / "README.md"


def example() -> dict[str, str]:
    """The README's example files: each ```python block that starts with `# NAME.py`."""
    blocks = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", README.read_text(), re.S)
    return dict(blocks)


def project(tmp_path: Path, flags: str) -> Path:
    files = example()
    assert set(files) == {"conftest.py", "test_http11.py"}
    lax = f"{shlex.quote(sys.executable)} -m tests._lax {flags}"
    conftest, n = re.subn(r'^SERVER = ".*"$', f"SERVER = {lax!r}", files["conftest.py"], flags=re.M)
    assert n == 1
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_http11.py").write_text(files["test_http11.py"])
    return tmp_path


def pytest_in(path: Path, *cases: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    ids = [f"test_http11.py::test_scenario[{case}]" for case in cases]
    # A PytestWarning (an unrewritable plugin import, say) is an error, as in a strict project.
    strict = ["-p", "no:cacheprovider", "-rA", "-W", "error::pytest.PytestWarning"]
    isolated = ["-c", os.devnull, "--rootdir", str(path)]
    no_own_target = ["--server-cmd", "no-such-server-xyz {port}"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *strict, *ids, *isolated, *no_own_target],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_strict_server_passes(tmp_path: Path) -> None:
    done = pytest_in(project(tmp_path, ""), "SMUG-CL-TE", "CHUNK-BASIC", "PIPE-TWO")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_a_must_miss_fails_the_run(tmp_path: Path) -> None:
    done = pytest_in(project(tmp_path, "garbage-200"), "RL-ORIGIN")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MUST RFC 9112" in done.stdout and "1 failed" in done.stdout


def test_a_should_miss_only_warns(tmp_path: Path) -> None:
    done = pytest_in(project(tmp_path, "garbage-200"), "RL-METHOD-EMPTY")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ConformanceWarning" in done.stdout


@pytest.mark.parametrize("flags", ["cl-prefix"])
def test_an_unsafe_case_fails_the_run(tmp_path: Path, flags: str) -> None:
    done = pytest_in(project(tmp_path, flags), "SMUG-CL-LETTER-SUFFIX")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "safety: unsafe" in done.stdout
