"""`python -m treadle_conformance`: the suite through pytest.

    python -m treadle_conformance [--url URL | --server-cmd CMD] [--json F] [--report F]
                                  [pytest arguments]

Runs the suite through pytest, so the output ends with pytest's summary line and the exit status
is non-zero exactly when a MUST scenario fails.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest


def _suite_path() -> str:
    spec = importlib.util.find_spec("treadle_conformance.suite")
    assert spec is not None and spec.origin is not None
    return spec.origin


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quiet = [] if any(a.startswith("-v") or a.startswith("-q") for a in args) else ["-q"]
    return int(
        pytest.main(
            [
                _suite_path(),
                "-p",
                "treadle_conformance.plugin",
                "-p",
                "no:cacheprovider",
                "-c",
                os.devnull,
                "--rootdir",
                os.path.dirname(_suite_path()),
                "-rf",
                *quiet,
                *args,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
