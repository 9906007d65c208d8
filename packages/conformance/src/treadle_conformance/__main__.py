"""`treadle-conformance` (or `python -m treadle_conformance`): the suite through pytest.

    treadle-conformance [--url URL | --server-cmd CMD] [--category C] [--level L]
                        [--section RFC/N] [--report-dir DIR] [pytest arguments]

Runs the suite through pytest, so the output ends with pytest's summary line. Exit status: 0
when every case is safe and every MUST is met, 1 when not, 6 when the target cannot be started
or does not answer, 7 when it dies during the run, 4 for a usage error. SIGTERM stops a run as
Ctrl-C does, ending the servers and proxies it started. Reports go to
`reports/` unless told otherwise: conformance.json (with the raw bytes), conformance.html and
JUnit XML conformance.xml.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from treadle_conformance.target import sigterm_as_interrupt

REPORT_DIR = "reports"


def _suite_path() -> str:
    spec = importlib.util.find_spec("treadle_conformance.suite")
    assert spec is not None and spec.origin is not None
    return spec.origin


def _given(args: list[str], name: str) -> str | None:
    """The value of option `name` in args (`--name V` or `--name=V`), or None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def report_arguments(args: list[str]) -> list[str]:
    """Default report paths under --report-dir (reports/), for the ones not given."""
    directory = _given(args, "--report-dir") or REPORT_DIR
    rest: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg == "--report-dir":
            skip_next = True
        elif not arg.startswith("--report-dir="):
            rest.append(arg)
    extra = []
    if _given(rest, "--json") is None:
        extra += ["--json", os.path.join(directory, "conformance.json")]
    if _given(rest, "--report") is None:
        extra += ["--report", os.path.join(directory, "conformance.html")]
    if _given(rest, "--junitxml") is None and _given(rest, "--junit-xml") is None:
        extra += ["--junitxml", os.path.join(directory, "conformance.xml")]
    return [*rest, *extra]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quiet = [] if any(a.startswith("-v") or a.startswith("-q") for a in args) else ["-q"]
    with sigterm_as_interrupt():
        return _pytest(args, quiet)


def _pytest(args: list[str], quiet: list[str]) -> int:
    return int(
        pytest.main(
            [
                _suite_path(),
                "-p",
                "treadle_conformance.plugin",
                "-p",
                "no:cacheprovider",
                # pytest-timeout's --timeout would shadow the harness's own.
                "-p",
                "no:timeout",
                "-c",
                os.devnull,
                "--rootdir",
                os.path.dirname(_suite_path()),
                "-o",
                "junit_family=xunit1",
                "-o",
                "junit_suite_name=treadle-conformance",
                "-rf",
                *quiet,
                *report_arguments(args),
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
