"""The comparison run's own parts: its server list, the versions, the commands as shown, the
top findings in plain words, and the hosts for servers without a command line."""

from __future__ import annotations

import importlib.util
import shlex
import sys

import pytest

from treadle_conformance import peers
from treadle_conformance.runner import Result
from treadle_conformance.scenarios import by_id
from treadle_conformance.target import Settings, started

PY = shlex.quote(sys.executable)


def test_every_server_the_issue_names_is_in_the_run() -> None:
    wanted = {
        "treadle",
        "waitress",
        "gunicorn",
        "cheroot",
        "werkzeug",
        "wsgiref",
        "uvicorn-h11",
        "hypercorn",
        "granian-wsgi",
        "granian-asgi",
        "daphne",
        "nginx",
        "node",
        "nginx-proxy",
        "haproxy",
    }
    assert wanted <= set(peers.ALL)
    asgi = {n for n, (_, interface, _) in peers.SERVERS.items() if interface == "ASGI"}
    assert all(peers.ASGI_APP in peers.SERVERS[n][2] for n in asgi)


def test_a_version_names_the_parser_beside_the_server() -> None:
    assert peers.version("pytest+hypothesis").startswith(peers.version("pytest") + " (hypothesis ")
    assert peers.version("no-such-dist-xyz") == "not installed"


def test_commands_are_shown_without_machine_paths() -> None:
    daphne = peers._shown(peers.SERVERS["daphne"][2])
    assert daphne.startswith("python -m daphne -b 127.0.0.1 -p {port} ")
    haproxy = peers._shown("/usr/sbin/haproxy -db -f /tmp/abc/haproxy.cfg")
    assert haproxy == "haproxy -db -f TMPDIR/haproxy.cfg"
    nginx = peers._shown("/usr/sbin/nginx -p /tmp/abc -c nginx.conf")
    assert nginx == "nginx -p TMPDIR -c nginx.conf"


def result(scenario_id: str, safety: str, strict: str) -> Result:
    return Result(by_id()[scenario_id], "whole", safety, strict, "why", "why", "seen", 0.0)


def test_top_findings_put_unsafe_first_in_the_scenarios_own_words() -> None:
    lines = peers.top_findings(
        {
            "good": [result("RL-ORIGIN", "safe", "pass")],
            "bad": [
                result("SMUG-CL-TE", "unsafe", "miss"),
                result("RL-METHOD-EMPTY", "safe", "miss"),
            ],
        }
    )
    text = "\n".join(lines)
    assert "- **good**: every case safe and every requirement met." in text
    unsafe = next(line for line in lines if "unsafe in 1 case(s)" in line)
    assert by_id()["SMUG-CL-TE"].title in unsafe and "`SMUG-CL-TE`" in unsafe
    assert "SHOULD/MAY missed in 1 case(s)" in text and "MUST missed" not in text


@pytest.mark.parametrize("name", ["wsgiref", "werkzeug"])
def test_wsgiref_and_werkzeug_hosts_serve_the_reflection_app(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    command = f"{PY} -m treadle_conformance.peer_hosts {name} {{port}}"
    with started(command, settings=Settings(timeout=2.0, close_wait=0.5)) as target:
        target.preflight()
        assert target.reflect and target.interface == "wsgi"


def test_a_server_with_shorter_waits_says_so_beside_its_command() -> None:
    runs = [peers.Run("wsgiref", "reflection (WSGI)", "3.11", "cmd"), peers.Run("x", "m", "1", "c")]
    rows = peers.command_rows(runs)
    assert "waits 1 s for a response and 0.5 s for a close" in rows[0]
    assert rows[1] == "- x: `c`"
    assert "uvicorn-httptools" not in peers.DEFAULT and "uvicorn-h11" in peers.DEFAULT


def test_the_upstream_category_is_counted_once_and_na_where_a_server_did_not_run_it() -> None:
    both = [result("RL-ORIGIN", "safe", "pass"), result("SMUG-CL-TE", "unsafe", "miss")]
    proxy = [*both, result("PROXY-RESP-EXTRA", "unsafe", "miss")]
    rows = peers.category_rows({"origin": both, "proxy": proxy})
    upstream = next(r for r in rows if r.startswith("| upstream |"))
    assert upstream == "| upstream | 1 | n/a | 0/1/1/0 |"
    # An unsafe case that is also a miss is one case, not two.
    framing = next(r for r in rows if r.startswith(f"| {by_id()['SMUG-CL-TE'].category} |"))
    assert framing.split(" | ")[1] == "1"
    scenario_rows = "\n".join(peers.scenario_rows({"origin": both, "proxy": proxy}))
    assert "| PROXY-RESP-EXTRA | MUST |" in scenario_rows and "| n/a | **UNSAFE**" in scenario_rows


def test_a_server_that_stopped_answering_is_said_under_the_summary() -> None:
    gone = peers.Run("flaky", "reflection (WSGI)", "1", "cmd", died="the server process exited")
    fine = peers.Run("steady", "reflection (WSGI)", "1", "cmd")
    lines = peers.died_rows([gone, fine])
    assert lines == [
        "- flaky stopped answering during its run (the server process exited): the cases after "
        "that count as misses, so its figures vary from run to run.",
        "",
    ]
    assert peers.died_rows([fine]) == []
    assert lines[0] in peers.markdown([gone, fine])
