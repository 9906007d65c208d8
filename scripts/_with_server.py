#!/usr/bin/env python3
"""Start a server on a free port, run a command against it, stop the server.

    scripts/with-server [OPTIONS] [TREADLE_ARG...] -- COMMAND [ARG...]

(`scripts/with-server` runs this file with .venv's Python; tox envs run it with their own.)

By default the server is treadle with its demo app:

    python -m treadle --bind 127.0.0.1:0 --threads 5 --stats-path /_treadle/stats treadle.demo:app

Options this script does not know (e.g. `--max-threads 10 --keep-alive 2`) are passed on to
treadle. `--server 'CMD ARGS'` runs any other server instead; it must log a line matching
`listening on (http://\\S+)` on stderr or stdout, as treadle does.

The command runs with these variables set: TREADLE_URL and LOCUST_HOST (the server's URL),
TREADLE_STATS_URL (when a stats path is set), TREADLE_SERVER_PID and LOCUST_SERVER_PID (so the
load test samples the server from /proc). When it ends the server gets SIGTERM, then SIGKILL if
it has not stopped in time; the exit status is the command's.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

STARTUP_LINE = re.compile(r"listening on (http://\S+)")
EXIT_USAGE = 2
EXIT_SERVER_FAILED = 3
EXIT_GRACE = 2.0  # seconds a server whose output ended gets to exit before we say why it failed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="with-server",
        usage="with-server [OPTIONS] [TREADLE_ARG...] -- COMMAND [ARG...]",
        description=__doc__.split("\n", 1)[0],
        epilog="Unknown options before `--` go to treadle.",
    )
    parser.add_argument("--threads", type=int, default=5, help="treadle --threads (default 5)")
    parser.add_argument("--app", default="treadle.demo:app", help="MODULE:APP for treadle")
    parser.add_argument(
        "--stats-path", default="/_treadle/stats", help="treadle --stats-path ('' for none)"
    )
    parser.add_argument("--server", help="run this server command instead of treadle")
    parser.add_argument(
        "--server-log", help="write the server's output to this file (default: our stderr)"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=20.0, help="seconds to wait for the URL"
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL"
    )
    return parser


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str], list[str]]:
    """Split argv at the first `--` into our options (+ extra treadle args) and the command."""
    parser = build_parser()
    if "--" not in argv:
        parser.parse_known_args(argv)  # answers --help
        parser.error("give the command after `--`")
    split = argv.index("--")
    command = argv[split + 1 :]
    if not command:
        parser.error("no command after `--`")
    args, extra = parser.parse_known_args(argv[:split])
    return args, extra, command


def server_command(args: argparse.Namespace, extra: list[str]) -> list[str]:
    if args.server:
        return shlex.split(args.server) + extra
    cmd = [sys.executable, "-m", "treadle", "--bind", "127.0.0.1:0"]
    cmd += ["--threads", str(args.threads)]
    if args.stats_path:
        cmd += ["--stats-path", args.stats_path]
    return [*cmd, *extra, args.app]


def pump(stream: IO[str], sink: IO[str], lines: queue.Queue[str | None]) -> None:
    """Copy the server's output to `sink`; hand each line to `lines` until the URL is found."""
    searching = True
    for line in stream:
        sink.write(line)
        sink.flush()
        if searching:
            lines.put(line)
            searching = STARTUP_LINE.search(line) is None
    lines.put(None)


def wait_for_url(lines: queue.Queue[str | None], timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            return None
        if line is None:
            return None
        if match := STARTUP_LINE.search(line):
            return match.group(1)
    return None


def stop(proc: subprocess.Popen[str], timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"with-server: server {proc.pid} ignored SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait()


@contextmanager
def running_server(
    args: argparse.Namespace, extra: list[str], sink: IO[str]
) -> Iterator[tuple[str, int]]:
    cmd = server_command(args, extra)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    lines: queue.Queue[str | None] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=pump, args=(proc.stdout, sink, lines), daemon=True).start()
    try:
        url = wait_for_url(lines, args.startup_timeout)
        if url is None:
            try:  # its output has ended, or the time is up: either way, has it exited?
                status: int | None = proc.wait(EXIT_GRACE)
            except subprocess.TimeoutExpired:
                status = None
            why = f"exited with {status}" if status is not None else "gave no URL in time"
            raise SystemExit(f"with-server: {shlex.join(cmd)} {why}")
        yield url, proc.pid
    finally:
        stop(proc, args.stop_timeout)


def main(argv: list[str]) -> int:
    args, extra, command = parse_args(argv)
    # Until the command runs, SIGTERM unwinds through the `finally`s that stop the server.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    sink: IO[str] = sys.stderr
    if args.server_log:
        os.makedirs(os.path.dirname(os.path.abspath(args.server_log)), exist_ok=True)
        sink = open(args.server_log, "w")  # noqa: SIM115  (closed below)
    try:
        with running_server(args, extra, sink) as (url, pid):
            env = dict(os.environ, TREADLE_URL=url, LOCUST_HOST=url)
            env.update(TREADLE_SERVER_PID=str(pid), LOCUST_SERVER_PID=str(pid))
            if args.stats_path and not args.server:
                env["TREADLE_STATS_URL"] = url + args.stats_path
            print(f"with-server: {url} (pid {pid}): {shlex.join(command)}", file=sys.stderr)
            try:
                child = subprocess.Popen(command, env=env)
            except OSError as exc:
                print(f"with-server: cannot run {command[0]}: {exc}", file=sys.stderr)
                return EXIT_USAGE
            # Ctrl-C reaches the command from the terminal; a SIGTERM for us is passed on to it.
            # Either way the command decides when it is done, and the server stops after it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, lambda signum, _: child.send_signal(signum))
            status = child.wait()
            return status if status >= 0 else 128 - status
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_SERVER_FAILED
        raise
    finally:
        if sink is not sys.stderr:
            sink.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
