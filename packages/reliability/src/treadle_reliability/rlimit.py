"""``python -m treadle_reliability.rlimit NOFILE=64 FSIZE=1048576 -- COMMAND...``

Lower soft resource limits, then exec COMMAND: the shell's ``ulimit -n 64; exec COMMAND`` without
a shell, and without a ``preexec_fn`` running between fork and exec in a threaded harness.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Sequence

NAMES = {"NOFILE": resource.RLIMIT_NOFILE, "FSIZE": resource.RLIMIT_FSIZE}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        print("usage: rlimit NAME=VALUE... -- COMMAND...", file=sys.stderr)
        return 2
    split = args.index("--")
    settings, command = args[:split], args[split + 1 :]
    if not command:
        print("rlimit: no command", file=sys.stderr)
        return 2
    for setting in settings:
        name, _, value = setting.partition("=")
        which = NAMES.get(name)
        if which is None or not value.isdigit():
            print(f"rlimit: bad limit {setting!r}", file=sys.stderr)
            return 2
        _, hard = resource.getrlimit(which)
        soft = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (soft, hard))
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
