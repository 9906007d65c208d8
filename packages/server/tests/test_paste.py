"""PasteDeploy: ``[server:main] use = egg:treadle`` (and the runner), with pastedeploy itself."""

from __future__ import annotations

import importlib.metadata
import signal
import sys
from pathlib import Path

import httpx
import pytest
from paste.deploy import loadserver

from treadle.limits import Limits
from treadle.paste import server_factory, server_options

from ._proc import spawned

# What pserve does with an .ini file: load the server and the app, hand one to the other.
PSERVE = """
import sys
from paste.deploy import loadapp, loadserver
uri = "config:" + sys.argv[1]
loadserver(uri)(loadapp(uri))
"""
APP_SECTION = "[app:main]\npaste.app_factory = pasteapp:make_app\n"


def test_host_port_threads_and_limits() -> None:
    addrs, kwargs, graceful = server_options(
        {
            "host": "::1",
            "port": "8081",
            "threads": "8",
            "max_threads": "16",
            "max_body_size": "1048576",
            "keep_alive": "2.5",
            "graceful_timeout": "1e1",
            "socket_mode": "660",
            "stats_path": "/_stats",
        }
    )
    assert addrs == ["[::1]:8081"]
    assert kwargs == {
        "threads": 8,
        "max_threads": 16,
        "unix_socket_mode": 0o660,
        "stats_path": "/_stats",
        "limits": Limits(max_body_size=1048576, keep_alive_timeout=2.5),
    }
    assert graceful == 10.0


def test_listen_list_unix_socket_and_waitress_names() -> None:
    addrs, kwargs, _ = server_options(
        {
            "listen": "127.0.0.1:8080 [::1]:8080, *:8090",
            "unix_socket": "/run/app.sock",
            "unix_socket_perms": "600",
            "max_request_body_size": "100",
            "channel_timeout": "30",
        }
    )
    assert addrs == ["127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8090", "unix:/run/app.sock"]
    assert kwargs == {
        "unix_socket_mode": 0o600,
        "limits": Limits(max_body_size=100, timeout=30.0),
    }


def test_defaults() -> None:
    assert server_options({}) == (["127.0.0.1:8000"], {}, 10.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"thread": "4"}, "unknown [server] option(s): thread"),
        ({"threads": "four"}, "[server] threads = 'four'"),
        ({"threads": "0"}, "[server] threads = '0': must be at least 1"),
        ({"listen": "127.0.0.1:80", "port": "81"}, "either listen (or bind) or host and port"),
        ({"listen": "nowhere"}, "expected HOST:PORT"),
        ({"graceful_timeout": "-1"}, "graceful_timeout"),
    ],
)
def test_a_bad_option_is_an_error_naming_it(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="treadle: ") as error:
        server_factory({}, **options)
    assert message in str(error.value)


@pytest.mark.parametrize("group", ["paste.server_factory", "paste.server_runner"])
def test_entry_points_are_registered(group: str) -> None:
    (entry,) = importlib.metadata.entry_points(group=group, name="main", module="treadle.paste")
    assert entry.value == f"treadle.paste:{group.removeprefix('paste.')}"


def test_egg_treadle_is_found_by_pastedeploy(tmp_path: Path) -> None:
    ini = tmp_path / "site.ini"
    ini.write_text("[server:main]\nuse = egg:treadle\nport = 0\nthreads = 3\n")
    run = loadserver(f"config:{ini}")
    assert run.__module__ == "treadle.paste"
    ini.write_text("[server:main]\nuse = egg:treadle\nthreadz = 3\n")
    with pytest.raises(ValueError, match="threadz"):
        loadserver(f"config:{ini}")


@pytest.mark.parametrize(
    "server_section",
    [
        "use = egg:treadle\nhost = 127.0.0.1\nport = 0\nthreads = 3\n",
        "paste.server_runner = treadle.paste:server_runner\nlisten = 127.0.0.1:0\nthreads = 3\n",
    ],
    ids=["factory", "runner"],
)
def test_served_from_an_ini_file(tmp_path: Path, server_section: str) -> None:
    (tmp_path / "pasteapp.py").write_text(
        "from treadle.demo import app\n\ndef make_app(global_conf, **settings):\n    return app\n"
    )
    ini = tmp_path / "site.ini"
    ini.write_text(f"{APP_SECTION}\n[server:main]\n{server_section}stats_path = /_stats\n")
    with spawned([sys.executable, "-c", PSERVE, ini], cwd=tmp_path) as (proc, url):
        assert httpx.get(url + "/hello").text == "Hello, world!"
        assert httpx.get(url + "/_stats").json()["threads"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        assert "SIGTERM: stopping" in proc.stderr.read()
