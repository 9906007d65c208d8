"""The distributions as a user gets them: build the sdists (and the wheels from the sdists, as
``python -m build`` does), check their metadata, install the wheels into a fresh venv, serve."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tarfile
import urllib.request
import venv
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {
    "treadle": ROOT / "packages" / "server" / "src" / "treadle",
    "treadle_conformance": ROOT / "packages" / "conformance" / "src" / "treadle_conformance",
}
LISTENING = re.compile(r"listening on (http://\S+)")


def source_version(package: str) -> str:
    tree = ast.parse((PROJECTS[package] / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__version__":
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError(f"no __version__ in {package}")


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for package_dir in PROJECTS.values():
        project = package_dir.parents[1]
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return out


def wheel(dist_dir: Path, package: str) -> Path:
    (found,) = dist_dir.glob(f"{package}-{source_version(package)}-py3-none-any.whl")
    return found


def wheel_metadata(path: Path) -> tuple[Message, set[str], str]:
    with zipfile.ZipFile(path) as whl:
        names = set(whl.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        metadata = Parser().parsestr(whl.read(f"{info}/METADATA").decode())
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    return metadata, names, entry_points


@pytest.mark.parametrize(
    ("package", "name", "entry_points"),
    [
        (
            "treadle",
            "treadle",
            [
                "treadle = treadle.cli:main",
                "[paste.server_factory]\nmain = treadle.paste:server_factory",
                "[paste.server_runner]\nmain = treadle.paste:server_runner",
            ],
        ),
        (
            "treadle_conformance",
            "treadle-conformance",
            ["treadle-conformance = treadle_conformance.__main__:main"],
        ),
    ],
)
def test_wheel_metadata_is_complete(
    dist_dir: Path, package: str, name: str, entry_points: list[str]
) -> None:
    metadata, names, entry_points_txt = wheel_metadata(wheel(dist_dir, package))
    assert metadata["Name"] == name
    assert metadata["Version"] == source_version(package)  # single-sourced from __version__
    assert metadata["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert len(metadata.get_payload()) > 500, "the README is the long description"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL", []))
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    classifiers = metadata.get_all("Classifier", [])
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert f"{package}/py.typed" in names
    for entry in entry_points:
        assert entry in entry_points_txt


@pytest.mark.parametrize("package", list(PROJECTS))
def test_sdist_has_what_a_rebuild_needs(dist_dir: Path, package: str) -> None:
    version = source_version(package)
    with tarfile.open(dist_dir / f"{package}-{version}.tar.gz") as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO", f"src/{package}/py.typed"} <= (
        names
    )
    assert any(n.startswith("tests/") for n in names)


def test_wheels_install_into_a_fresh_venv_and_serve(dist_dir: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-index", "--no-deps", "--disable-pip-version-check"]
        + [str(wheel(dist_dir, p)) for p in PROJECTS],
        check=True,
        timeout=120,
    )
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
    version = subprocess.run(
        [env_dir / "bin" / "treadle", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=clean_env,
        timeout=30,
    )
    assert version.stdout.strip() == f"treadle {source_version('treadle')}"
    where = subprocess.run(
        [python, "-c", "import treadle, treadle_conformance.reflect; print(treadle.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=clean_env,
        timeout=30,
    )
    assert Path(where.stdout.strip()).is_relative_to(env_dir)  # not the source tree
    assert (env_dir / "bin" / "treadle-conformance").exists()

    proc = subprocess.Popen(
        [env_dir / "bin" / "treadle", "--bind", "127.0.0.1:0", "treadle.demo:app"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=clean_env,
    )
    try:
        assert proc.stderr is not None
        url = next(m[1] for line in proc.stderr if (m := LISTENING.search(line)))
        with urllib.request.urlopen(url + "/hello", timeout=10) as response:
            assert response.read() == b"Hello, world!"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
