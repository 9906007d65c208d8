"""Differential run: the whole catalogue against treadle, its peers and servers without the app.

Reflection mode: treadle, waitress, gunicorn (gthread) and cheroot each host the reflection app
with 5 threads on a free port and short timeouts. Black-box mode: nginx serving a static file,
Node's `http.createServer` hello server and `python -m http.server` (see `blackbox`). Proxy
mode: nginx and HAProxy in front of the recording backend (`proxies`); proxy + origin: each in
front of treadle hosting the app (`proxy_origin`). The same scenarios (with their
fragmentation variants) run against each in turn, and the comparison is written as Markdown
with both verdicts. A row where treadle fails and a peer passes is a treadle bug; a row every
server fails is an expectation to re-read against the RFC.

    python -m treadle_conformance.peers [--out docs/conformance.md] [--servers treadle,nginx]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from treadle_conformance import blackbox, proxies, proxy_origin, report
from treadle_conformance.backend import Backend, running
from treadle_conformance.model import Level
from treadle_conformance.runner import Result, case_id, run, variants
from treadle_conformance.scenarios import CATALOGUE, UPSTREAM
from treadle_conformance.target import (
    PROXY_SENTINEL,
    Settings,
    TargetError,
    sigterm_as_interrupt,
    started,
    treadle_command,
)

APP = "treadle_conformance.reflect:app"
PY = shlex.quote(sys.executable)
# Every server times out idle connections and unfinished heads after IDLE seconds: longer than
# the harness's own waits for one case (a response, then the sentinel's: 3 + 3 s), so a verdict
# never depends on which side gives up first.
IDLE = 8
ASGI_APP = "treadle_conformance.reflect_asgi:app"
HOSTS = f"{PY} -m treadle_conformance.peer_hosts"
# name: (distribution whose version is reported, interface, command). 5 threads or workers
# where the server has a setting for them; the ASGI servers run one event loop.
SERVERS: dict[str, tuple[str, str, str]] = {
    "treadle": ("treadle", "WSGI", treadle_command(keep_alive=IDLE, timeout=IDLE)),
    "waitress": (
        "waitress",
        "WSGI",
        f"{PY} -m waitress --listen=127.0.0.1:{{port}} --threads=5 "
        f"--channel-timeout={IDLE} --cleanup-interval=1 {APP}",
    ),
    "gunicorn": (
        "gunicorn",
        "WSGI",
        f"{PY} -m gunicorn --worker-class gthread --workers 1 --threads 5 "
        f"--bind 127.0.0.1:{{port}} --keep-alive {IDLE} --timeout 30 {APP}",
    ),
    "cheroot": (
        "cheroot",
        "WSGI",
        f"{PY} -m cheroot --bind 127.0.0.1:{{port}} --threads 5 --timeout {IDLE} {APP}",
    ),
    "werkzeug": ("werkzeug", "WSGI", f"{HOSTS} werkzeug {{port}}"),
    "wsgiref": ("", "WSGI", f"{HOSTS} wsgiref {{port}}"),
    "granian-wsgi": (
        "granian",
        "WSGI",
        f"{PY} -m granian --interface wsgi --host 127.0.0.1 --port {{port}} --workers 1 "
        f"--blocking-threads 5 --no-access-log {APP}",
    ),
    "uvicorn-h11": (
        "uvicorn+h11",
        "ASGI",
        f"{PY} -m uvicorn --http h11 --host 127.0.0.1 --port {{port}} "
        f"--timeout-keep-alive {IDLE} --no-access-log --lifespan off {ASGI_APP}",
    ),
    "uvicorn-httptools": (
        "uvicorn+httptools",
        "ASGI",
        f"{PY} -m uvicorn --http httptools --host 127.0.0.1 --port {{port}} "
        f"--timeout-keep-alive {IDLE} --no-access-log --lifespan off {ASGI_APP}",
    ),
    "hypercorn": (
        "hypercorn+h11",
        "ASGI",
        f"{PY} -m hypercorn --bind 127.0.0.1:{{port}} --workers 1 --keep-alive {IDLE} {ASGI_APP}",
    ),
    "granian-asgi": (
        "granian",
        "ASGI",
        f"{PY} -m granian --interface asgi --host 127.0.0.1 --port {{port}} --workers 1 "
        f"--no-access-log {ASGI_APP}",
    ),
    "daphne": (
        "daphne+twisted",
        "ASGI",
        f"{PY} -m daphne -b 127.0.0.1 -p {{port}} --http-timeout 30 {ASGI_APP}",
    ),
}
# Proxy + origin: a real proxy (a key of proxies.PROXIES) in front of treadle hosting the app.
FRONTED = {"nginx+treadle": "nginx-proxy", "haproxy+treadle": "haproxy"}
ALL = (*SERVERS, *blackbox.SERVERS, *proxies.PROXIES, *FRONTED)
# Run only when named (--servers): keeps the default run under 20 minutes on two cores.
OPT_IN = frozenset({"uvicorn-httptools"})
DEFAULT = tuple(n for n in ALL if n not in OPT_IN)
# Shorter waits for a server that never answers a whole class of cases: wsgiref does not
# decode chunked bodies, so the app reads its input to the end of a stream that the client
# keeps open, and each of the ~100 chunked cases would wait out 3 + 3 s for nothing.
WAITS: dict[str, tuple[float, float]] = {"wsgiref": (1.0, 0.5)}


@dataclass(slots=True)
class Run:
    name: str
    mode: str
    version: str
    command: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    missing: str = ""
    # Why the server no longer answered at the end of its run (its later cases are misses).
    died: str = ""


def mark(result: Result) -> str:
    """A table cell with both verdicts: pass, skip, **UNSAFE**, **MUST-miss**, miss, or both."""
    cols = report.columns(result)
    return "+".join(f"**{c.upper()}**" if c in ("unsafe", "MUST-miss") else c for c in cols)


def version(dist: str) -> str:
    """The version of dist; "uvicorn+h11" gives uvicorn's, then h11's in parentheses."""
    found = []
    for name in dist.split("+"):
        try:
            found.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            return "not installed"
    names = dist.split("+")
    return found[0] + "".join(f" ({n} {v})" for n, v in zip(names[1:], found[1:], strict=True))


def program_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(r"\d+\.\d+(\.\d+)?", done.stdout + done.stderr)
    return match.group() if match else "?"


def _shown(command: str) -> str:
    """A command as the docs show it: no interpreter or temporary paths."""
    text = command.replace(PY, "python")
    text = re.sub(r"(-p|--directory) /\S+", r"\1 TMPDIR", text)
    text = re.sub(r"-f \S*/(haproxy\.cfg)", r"-f TMPDIR/\1", text)
    text = re.sub(r"\S*/(hello\.js)", r"TMPDIR/\1", text)
    return re.sub(r"\S*/(nginx|node|haproxy) ", r"\1 ", text)


def _run_all(
    run_: Run, command: str, settings: Settings, port: int = 0, recorder: Backend | None = None
) -> None:
    start = time.monotonic()
    with started(command, name=run_.name, settings=settings, port=port) as target:
        target.backend = recorder
        target.preflight()
        if run_.mode.startswith("reflection") and not target.reflect:
            raise TargetError(f"{run_.name} does not answer with the reflection app")
        # Behind a proxy the harness's backend also misbehaves on purpose: UPSTREAM.
        scenarios = CATALOGUE + (UPSTREAM if recorder is not None else ())
        run_.results = [run(s, target, v) for s, v in variants(scenarios)]
        run_.died = target.alive() or ""
    run_.seconds = time.monotonic() - start


def run_server(name: str, idle_bound: float) -> Run:
    usual = Settings()
    timeout, close_wait = WAITS.get(name, (usual.timeout, usual.close_wait))
    settings = Settings(idle_bound=idle_bound, timeout=timeout, close_wait=close_wait)
    if name in SERVERS:
        dist, interface, command = SERVERS[name]
        ver = version(dist) if dist else f"Python {sys.version.split()[0]}"
        if ver == "not installed":
            return Run(
                name, f"reflection ({interface})", "-", "-", missing=f"{dist} is not installed"
            )
        run_ = Run(name, f"reflection ({interface})", ver, _shown(command))
        try:
            _run_all(run_, command, settings)
        except TargetError as exc:
            return Run(name, run_.mode, ver, run_.command, missing=f"did not start: {exc}")
        return run_
    if name in proxies.PROXIES:
        return run_proxy(name, replace(settings, path=PROXY_SENTINEL))
    if name in FRONTED:
        return run_fronted(name, settings)
    with contextlib.ExitStack() as stack:
        try:
            command, port = stack.enter_context(blackbox.serving(name))
        except blackbox.Missing as exc:
            return Run(name, "black-box", "-", "-", missing=str(exc))
        argv0 = shlex.split(command)[0]
        ver = program_version([argv0, "-v"] if name == "nginx" else [argv0, "--version"])
        run_ = Run(name, "black-box", ver, _shown(command))
        _run_all(run_, command, settings, port)
    return run_


def run_proxy(name: str, settings: Settings) -> Run:
    """A real proxy in front of the recording backend; both sides of every scenario judged."""
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(running())
        try:
            command, port = stack.enter_context(proxies.serving(name, recorder.port))
        except blackbox.Missing as exc:
            return Run(name, "proxy", "-", "-", missing=str(exc))
        argv0 = shlex.split(command)[0]
        ver = program_version([argv0, "-v"])
        run_ = Run(name, "proxy", ver, _shown(command))
        _run_all(run_, command, settings, port, recorder)
    return run_


def run_fronted(name: str, settings: Settings) -> Run:
    """A real proxy in front of treadle hosting the reflection app: reflection mode through it."""
    proxy, mode = FRONTED[name], proxy_origin.MODE
    cli = proxy_origin.short_name(proxy)
    try:
        binary = blackbox.program(cli)
    except blackbox.Missing as exc:
        return Run(name, mode, "-", "-", missing=str(exc))
    ver = f"{program_version([binary, '-v'])} (treadle {version('treadle')})"
    command = f"treadle-conformance --proxy {cli} --origin-cmd {proxy_origin.TREADLE}"
    run_ = Run(name, mode, ver, command)
    start = time.monotonic()
    try:
        with proxy_origin.fronted(proxy, proxy_origin.TREADLE, settings, name=name) as target:
            target.preflight()
            if not target.reflect:
                raise TargetError("the reflection app does not answer through the proxy")
            run_.results = [run(s, target, v) for s, v in variants(CATALOGUE)]
            run_.died = target.alive() or ""
    except (TargetError, blackbox.Missing) as exc:
        return Run(name, mode, ver, command, missing=f"did not start: {exc}")
    run_.seconds = time.monotonic() - start
    return run_


def summary_rows(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| server | mode | version | cases | pass | unsafe | MUST miss | SHOULD/MAY miss | skip "
        "| time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.missing:
            lines.append(f"| {r.name} | {r.mode} | {r.missing} | | | | | | | |")
            continue
        t = report.totals(r.results)
        lines.append(
            f"| {r.name} | {r.mode} | {r.version} | {len(r.results)} | {t['pass']} | "
            f"{t['unsafe']} | {t['MUST-miss']} | {t['miss']} | {t['skip']} | {r.seconds:.0f} s |"
        )
    return lines


def died_rows(runs: Sequence[Run]) -> list[str]:
    """A line for each server that stopped answering during its run, and a blank line."""
    lines = [
        f"- {r.name} stopped answering during its run ({r.died}): the cases after that count "
        "as misses, so its figures vary from run to run."
        for r in runs
        if r.died
    ]
    return [*lines, ""] if lines else []


def command_rows(runs: Sequence[Run]) -> list[str]:
    rows = []
    for r in runs:
        if r.missing:
            continue
        waits = WAITS.get(r.name)
        note = (
            f" (the harness waits {waits[0]:g} s for a response and {waits[1]:g}"
            " s for a close, not 3 s and 2 s: see `peers.WAITS`)"
            if waits
            else ""
        )
        rows.append(f"- {r.name}: `{r.command}`{note}")
    return rows


def category_rows(all_results: dict[str, list[Result]]) -> list[str]:
    names = list(all_results)
    header = "| category | cases | " + " | ".join(f"{n}" for n in names) + " |"
    lines = [header, "|---|---|" + "---|" * len(names)]
    tables = {n: report.counts(rs) for n, rs in all_results.items()}
    # Every category any server ran (the upstream ones only behind a proxy), first seen first.
    categories = dict.fromkeys(c for table in tables.values() for c in table)
    for category in categories:
        cases = max(
            sum(1 for r in rs if r.scenario.category == category) for rs in all_results.values()
        )
        cells = []
        for n in names:
            row = tables[n].get(category)
            cells.append(
                f"{row['pass']}/{row['unsafe']}/{row['MUST-miss']}/{row['miss']}" if row else "n/a"
            )
        lines.append(f"| {category} | {cases} | " + " | ".join(cells) + " |")
    return lines


def scenario_rows(all_results: dict[str, list[Result]]) -> list[str]:
    names = list(all_results)
    lines = [
        "| id | level | section | requirement | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    by_id = {n: {r.case_id: r for r in rs} for n, rs in all_results.items()}
    for scenario, variant in variants(CATALOGUE + UPSTREAM):
        first = next(
            (by_id[n][c] for n in names if (c := case_id(scenario, variant)) in by_id[n]), None
        )
        if first is None:
            continue
        cells = []
        for n in names:
            r = by_id[n].get(first.case_id)
            cells.append(mark(r) if r else "n/a")
        lines.append(
            f"| {first.case_id} | {scenario.level.value} | {report.md(scenario.section)} | "
            f"{report.md(scenario.title)} | " + " | ".join(cells) + " |"
        )
    return lines


TOP = 6


def _titles(results: Sequence[Result]) -> str:
    seen: list[str] = []
    for r in results:
        title = f"{r.scenario.title} (`{r.scenario.id}`)"
        if title not in seen:
            seen.append(title)
    more = f"; and {len(seen) - TOP} more" if len(seen) > TOP else ""
    return "; ".join(report.md(t) for t in seen[:TOP]) + more


def top_findings(all_results: dict[str, list[Result]]) -> list[str]:
    """Per server, in plain words: what desynchronised it, which MUSTs it missed, which SHOULDs;
    the scenarios' own titles, unsafe first, at most TOP of each."""
    lines = ["### Top findings per server", ""]
    for name, results in all_results.items():
        unsafe = [r for r in results if r.unsafe]
        must = [r for r in results if r.status == "fail" and not r.unsafe]
        should = [r for r in results if r.status == "miss" and not r.unsafe]
        if not (unsafe or must or should):
            lines += [f"- **{name}**: every case safe and every requirement met.", ""]
            continue
        lines.append(f"- **{name}**:")
        if unsafe:
            lines.append(f"  - unsafe in {len(unsafe)} case(s): {_titles(unsafe)}.")
        if must:
            lines.append(f"  - MUST missed in {len(must)} case(s): {_titles(must)}.")
        if should:
            lines.append(f"  - SHOULD/MAY missed in {len(should)} case(s): {_titles(should)}.")
        lines.append("")
    return lines


def findings(all_results: dict[str, list[Result]]) -> list[str]:
    """Where treadle falls short of a peer, and where every server disagrees with an expectation."""
    names = list(all_results)
    by_id = {n: {r.case_id: r for r in rs} for n, rs in all_results.items()}
    lines: list[str] = []
    if "treadle" in by_id:
        worse = [
            r
            for r in all_results["treadle"]
            if r.status == "fail"
            and any(
                by_id[n].get(r.case_id) and by_id[n][r.case_id].status in ("pass", "miss")
                for n in names
                if n != "treadle"
            )
        ]
        lines += ["### treadle fails, a peer passes", ""]
        lines += [
            f"- `{r.case_id}` ({r.scenario.level.value}): {report.md(r.reason)}" for r in worse
        ] or ["- none"]
        lines.append("")
    every = [
        r
        for r in all_results[names[0]]
        if all(
            by_id[n].get(r.case_id) and by_id[n][r.case_id].status in ("fail", "miss")
            for n in names
        )
    ]
    lines += top_findings(all_results)
    lines += ["### every server misses the expectation", ""]
    lines += [
        f"- `{r.case_id}` ({r.scenario.level.value}, {report.md(r.scenario.section)}): "
        f"{report.md(r.scenario.title)}"
        for r in every
    ] or ["- none"]
    return lines


def markdown(runs: Sequence[Run]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    must = sum(1 for s in CATALOGUE if s.level is Level.MUST)
    all_results = {r.name: r.results for r in runs if not r.missing}
    cases = sum(1 for _ in variants(CATALOGUE))
    out = [
        "# Conformance: treadle, its peers, servers without the reflection app, and proxies",
        "",
        f"Measured {when} with `tox -e conformance-peers` (`python -m treadle_conformance.peers`)"
        f": {len(CATALOGUE)} scenarios ({must} MUST), {cases} cases with the fragmentation "
        "variants (`@bytes`: written byte by byte, `@random`: random pieces), on 127.0.0.1.",
        "",
        "- **reflection** mode: the server hosts the reflection app, "
        "`treadle_conformance.reflect:app` (WSGI) or `treadle_conformance.reflect_asgi:app` "
        "(ASGI), with 5 threads or workers where the server has such a setting; every check "
        "runs (the one behaviour ASGI cannot express, a reason phrase, is skipped on ASGI).",
        "- **black-box** mode: the server knows nothing of the harness (nginx serves a static "
        "file, Node answers `hello world`, `python -m http.server` lists a directory). Framing, "
        "smuggling and pipelining are judged by counting responses and by the sentinel request; "
        "checks of what the app saw are not judged, and cases that need the app's `/_/` routes "
        "are skipped.",
        "- **proxy** mode: a real reverse proxy (nginx with an upstream keep-alive pool, "
        "HAProxy) forwards to the harness's recording backend, which answers every request with "
        "one marker. The client side is judged as in black-box mode; the backend side too: "
        "unsafe when the smuggled request reaches the backend as a request of its own, when more "
        "requests arrive than the client sent, or when a request arrives in a form the next "
        "parser may read differently (both Content-Length and Transfer-Encoding, RFC 9112 §6.3; "
        "a Content-Length that is not one decimal value, §6.3; an obfuscated Transfer-Encoding, "
        "§6.1; bare CR or LF, §2.2; NUL, RFC 9110 §5.5; obs-fold, §5.2; whitespace before a "
        "colon, §5.1). Proxies also run the "
        f"{len(UPSTREAM)} `upstream` scenarios, where the backend answers wrongly on purpose "
        "(an extra response after the first, a body after a HEAD, 204 or 304 head, "
        "Transfer-Encoding beside a shorter Content-Length, two Content-Lengths, an interim 100): "
        "unsafe when the hidden extra response reaches a client, or the sentinel or a follow-up "
        "request on a fresh connection gets another request's answer (RFC 9112 §6.3).",
        "- **proxy + origin** mode: a real proxy in front of a real server, both started here: "
        "nginx-proxy's or haproxy's command and configuration below (`{backend}`: the origin's "
        "port) in front of treadle hosting the reflection app (the treadle row's command), with "
        "no recording backend. The run is in reflection mode through the proxy: what the app saw "
        "is judged after the proxy's rewriting (both proxies pass Host on and add "
        "X-Forwarded-For), and a desync between proxy and origin shows as a smuggled request "
        "answered, an extra response or a sentinel answered differently. One row: "
        "`treadle-conformance --proxy nginx --origin-cmd treadle` (`treadle` is shorthand for "
        "that command; `--origin-cmd` takes any server command, like `--server-cmd`).",
        "",
        "Two verdicts per case. **unsafe**: a desync was observed or could not be ruled out (a "
        "smuggled request answered, a second response to one request, a sentinel request on the "
        "same connection answered differently than on a fresh one, or not at all); always a "
        "failure. **MUST miss** / **SHOULD/MAY miss**: the answer is not the one the cited clause "
        "prefers, graded at that clause's level (a MUST miss fails the run, a SHOULD/MAY miss "
        "warns). A case can be both unsafe and a miss; pass means safe and no miss. Where the RFC "
        "allows alternatives, every permitted outcome passes. The timeout and concurrency "
        "scenarios are this project's requirements, labelled so.",
        "",
        "## Summary",
        "",
        *summary_rows(runs),
        "",
        *died_rows(runs),
        "Commands (`{port}`: a free port; `TMPDIR`: a temporary directory holding the "
        "configuration and the file served):",
        "",
        *command_rows(runs),
        "",
        "`TMPDIR/hello.js` (Node):",
        "",
        "```js",
        *blackbox.NODE_HELLO.splitlines(),
        "```",
        "",
        "`TMPDIR/nginx.conf` (`{dir}` is TMPDIR):",
        "",
        "```nginx",
        *blackbox.NGINX_CONF.replace("{{", "{").replace("}}", "}").splitlines(),
        "```",
        "",
        "`TMPDIR/nginx.conf` for nginx-proxy (`{backend}`: the recording backend's port, or "
        "the origin's):",
        "",
        "```nginx",
        *proxies.NGINX_PROXY_CONF.replace("{{", "{").replace("}}", "}").splitlines(),
        "```",
        "",
        "`TMPDIR/haproxy.cfg`:",
        "",
        "```",
        *proxies.HAPROXY_CONF.splitlines(),
        "```",
        "",
        "Not in the default run, to keep it under 20 minutes on two cores (name them with "
        f"`--servers`): {', '.join(sorted(OPT_IN))}.",
        "",
        "Reproduce all: `tox -e conformance-peers`. One server: "
        "`python -m treadle_conformance.peers --servers nginx --out report.md`, or "
        '`treadle-conformance --server-cmd "<command above>"` (reports in `reports/`).',
        "",
        "## By category (pass/unsafe/MUST-miss/miss)",
        "",
        *category_rows(all_results),
        "",
        "## Findings",
        "",
        *findings(all_results),
        "",
        "## Every scenario",
        "",
        *scenario_rows(all_results),
    ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="docs/conformance.md")
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT),
        help=f"from {', '.join(ALL)} (default: all but {', '.join(sorted(OPT_IN))})",
    )
    parser.add_argument(
        "--idle-bound", type=float, default=IDLE, help="the servers' idle/head timeout (s)"
    )
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    with sigterm_as_interrupt():
        runs = _run_servers(names, args.idle_bound)
    Path(args.out).write_text(markdown(runs), encoding="utf-8")
    print(f"wrote {args.out}")
    treadle = next((r.results for r in runs if r.name == "treadle"), [])
    return 1 if any(r.gating_failure for r in treadle) else 0


def _run_servers(names: list[str], idle_bound: float) -> list[Run]:
    runs = []
    for name in names:
        print(f"{name}: running {len(CATALOGUE)} scenarios ...", flush=True)
        run_ = run_server(name, idle_bound)
        runs.append(run_)
        if run_.missing:
            print(f"{name}: skipped, {run_.missing}", flush=True)
            continue
        t = report.totals(run_.results)
        print(
            f"{name}: {run_.seconds:.0f} s; " + ", ".join(f"{v} {k}" for k, v in t.items()),
            flush=True,
        )
    return runs


if __name__ == "__main__":
    sys.exit(main())
