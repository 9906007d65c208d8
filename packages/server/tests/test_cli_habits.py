"""The command line meets gunicorn's and waitress's users halfway (issue 12, section 2)."""

from __future__ import annotations

import errno
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from treadle import limits
from treadle.cli import build_parser, main, unknown_option

from ._proc import TREADLE, notify_socket, spawned, unix_get


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory path: a Unix socket path must fit in 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="tr-") as name:
        yield Path(name)


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=30, cwd=cwd)


def test_module_alone_means_application_with_chdir_and_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "site" / "mysite").mkdir(parents=True)
    (tmp_path / "site" / "lib").mkdir()
    (tmp_path / "site" / "mysite" / "__init__.py").write_text("")
    (tmp_path / "site" / "lib" / "greeting.py").write_text("TEXT = b'from mysite'\n")
    (tmp_path / "site" / "mysite" / "wsgi.py").write_text(
        "from greeting import TEXT\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [TEXT]\n"
    )
    argv = [*TREADLE, "-b", "127.0.0.1:0", "--chdir", "site", "--pythonpath", "nowhere,lib"]
    with spawned([*argv, "mysite.wsgi"], cwd=tmp_path) as (_, url):
        assert httpx.get(url + "/").text == "from mysite"


def test_import_error_names_file_and_line_then_exits_2(tmp_path: Path) -> None:
    (tmp_path / "inner.py").write_text("import os\nLIMIT = 1 / 0\n")
    (tmp_path / "broken.py").write_text(
        "'''An app that cannot start.'''\nfrom inner import LIMIT\n"
    )
    result = _run("broken:app", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "treadle: error: cannot import 'broken': ZeroDivisionError: division by zero"
    )
    assert lines[1:] == [
        f'  File "{tmp_path / "broken.py"}", line 2, in <module>',
        "    from inner import LIMIT",
        f'  File "{tmp_path / "inner.py"}", line 2, in <module>',
        "    LIMIT = 1 / 0",
    ]


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("def application(environ, start_response:\n    pass\n")
    result = _run("typo", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("treadle: error: cannot import 'typo': SyntaxError: ")
    assert f'  File "{tmp_path / "typo.py"}", line 1\n' in result.stderr
    assert "    def application(environ, start_response:\n" in result.stderr


def test_factory_failure_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "fact.py").write_text("def make():\n    raise RuntimeError('no database')\n")
    result = _run("--factory", "fact:make", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "treadle: error: factory 'fact:make' failed: RuntimeError: no database",
        f'  File "{tmp_path / "fact.py"}", line 2, in make',
        "    raise RuntimeError('no database')",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worker-class=gthread", "app:app"], "'--worker-class': treadle is its own worker"),
        (["--preload", "app:app"], "'--preload': the app is imported in each worker process"),
        (["--listen", "127.0.0.1:8080", "app:app"], "'--listen': use --bind HOST:PORT"),
        (["--daemon", "app:app"], "'--daemon': treadle does not daemonize: run it under systemd"),
        (["app:app", "--limit-request-line", "100"], "use --max-request-line"),
        (["--threads", "4", "-k", "gthread", "app:app"], "unrecognized option '-k'"),
        (["--ciphers", "HIGH", "app:app"], "'--ciphers': use --ssl-ciphers"),
        (["--thread", "4", "app:app"], "unrecognized option '--thread'"),  # no abbreviations
    ],
)
def test_unknown_option_is_named_and_never_swallows_the_app(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("treadle: error: "), lines
    assert message in lines[0] and "app:app" not in lines[0], lines


def test_options_with_values_before_the_app_parse() -> None:
    argv = ["-b127.0.0.1:0", "--threads", "4", "--access-logfile", "-", "--bind=[::1]:0", "a:b"]
    parser = build_parser()
    assert unknown_option(parser, argv) is None
    args = parser.parse_args(argv)
    assert (args.app, args.threads, args.access_log) == ("a:b", 4, "-")
    assert args.bind == ["127.0.0.1:0", "[::1]:0"]


def test_gunicorn_spellings_of_values_and_names() -> None:
    args = build_parser().parse_args(
        [
            "--graceful-timeout",
            "1e1",
            "--timeout",
            "2.5e0",
            "--log-level",
            "WARNING",
            "--access-logfile",
            "a.log",
            "--error-logfile",
            "e.log",
            "--umask",
            "0o027",
            "--socket-mode",
            "660",
            "app:app",
        ]
    )
    assert (args.graceful_timeout, args.timeout, args.log_level) == (10.0, 2.5, "warning")
    assert (args.access_log, args.error_log) == ("a.log", "e.log")
    assert (args.umask, args.socket_mode) == (0o027, 0o660)
    assert build_parser().parse_args(["--log-file", "x.log", "a:b"]).error_log == "x.log"


def test_limit_options_say_their_unit_and_default() -> None:
    text = " ".join(build_parser().format_help().split())
    assert f"bytes in the request line (else 414); default {limits.MAX_REQUEST_LINE}" in text
    assert f"bytes in one header field line (else 431); default {limits.MAX_FIELD_LINE}" in text
    assert f"header fields (else 431); default {limits.MAX_HEADER_COUNT}" in text
    assert f"bytes in the whole request head (else 431); default {limits.MAX_HEAD_SIZE}" in text
    assert f"bytes in a request body (else 413); default {limits.MAX_BODY_SIZE}" in text


def test_pid_file_while_serving_and_umask_and_socket_mode(short_dir: Path) -> None:
    pid_file, sock = short_dir / "treadle.pid", short_dir / "t.sock"
    argv = [*TREADLE, "--umask", "027", "--socket-mode", "666", "--pid", pid_file]
    with (
        notify_socket(short_dir) as (notify, env),
        spawned([*argv, "--bind", sock, "treadle.demo:app"], env=env) as (proc, where),
    ):
        assert where == f"unix:{sock}"
        assert notify.recv(4096).startswith(b"READY=1")  # the pid file is written by then
        assert pid_file.read_text() == f"{proc.pid}\n"
        assert stat.S_IMODE(pid_file.stat().st_mode) == 0o640  # the umask
        assert stat.S_IMODE(sock.stat().st_mode) == 0o666  # --socket-mode, despite the umask
        assert unix_get(sock).body == b"Hello, world!"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not pid_file.exists() and not sock.exists()


def test_error_logfile_gets_the_startup_line(short_dir: Path) -> None:
    log, sock = short_dir / "error.log", short_dir / "t.sock"
    argv = [*TREADLE, "--error-logfile", log, "--bind", sock, "--log-level", "DEBUG"]
    with (
        notify_socket(short_dir) as (notify, env),
        spawned([*argv, "treadle.demo:app"], env=env, ready=None) as (proc, _),
    ):
        assert notify.recv(4096).startswith(b"READY=1")  # nothing on stderr to wait for
        assert f"listening on unix:{sock}" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert "SIGTERM: stopping" in log.read_text()


def test_second_server_on_a_live_unix_socket_is_refused(short_dir: Path) -> None:
    sock = short_dir / "t.sock"
    with spawned([*TREADLE, "--bind", sock, "treadle.demo:app"]) as (first, _):
        result = _run("--bind", str(sock), "treadle.demo:app")
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"treadle: error: cannot listen: [Errno {errno.EADDRINUSE}] "
            f"another server is listening on {sock}"
        )
        assert unix_get(sock).body == b"Hello, world!"  # the first one still has it
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 0
