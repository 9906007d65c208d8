"""``python -m treadle_reliability``: every attack against every server, side by side.

    python -m treadle_reliability [--servers treadle,waitress,gunicorn] [--attacks a,b]
        [--out docs/reliability.md] [--json reports/reliability/results.json]
        [--logs reports/reliability/logs]

Attacks run in order, each against every server in turn (so a comparison is a minute apart at
most, not ten). Progress goes to stdout. The exit status is 1 when treadle fails any check (the
doc is written anyway), 0 otherwise; the peers' failures are figures, not errors.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .attacks import ATTACKS
from .harness import Result, run_attack
from .report import RunInfo, markdown, write_json
from .servers import SERVERS

# 1,000 slowloris sockets and their probe need more than the common soft limit of 1,024 fds.
CLIENT_FDS = 8192


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def raise_fd_limit(wanted: int = CLIENT_FDS) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treadle_reliability", description=__doc__)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=Path("reports/reliability/results.json"))
    parser.add_argument("--logs", type=Path, default=Path("reports/reliability/logs"))
    parser.add_argument(
        "--command", default="tox -e reliability", help="the command the doc says made it"
    )
    args = parser.parse_args(argv)
    servers = _names(args.servers, list(SERVERS), "server")
    attacks = [ATTACKS[n] for n in _names(args.attacks, list(ATTACKS), "attack")]
    raise_fd_limit()
    started = time.monotonic()
    results: dict[str, dict[str, Result]] = {}
    for attack in attacks:
        for server in servers:
            print(f"{attack.name} on {server} ...", flush=True)
            result = run_attack(attack, SERVERS[server], args.logs)
            results.setdefault(attack.name, {})[server] = result
            print(result.explain(), f"  ({result.seconds:.1f} s)", sep="\n", flush=True)
    minutes = (time.monotonic() - started) / 60
    write_json(args.json, results)
    if args.out is not None:
        info = RunInfo(
            command=args.command,
            date=datetime.now(UTC).strftime("%Y-%m-%d"),
            minutes=minutes,
            cpus=os.cpu_count() or 0,
        )
        args.out.write_text(markdown(attacks, results, servers, info))
        print(f"wrote {args.out}")
    failed = [a for a, by in results.items() if "treadle" in by and not by["treadle"].passed]
    print(f"{minutes:.1f} minutes; treadle failed: {', '.join(failed) or 'nothing'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
