"""The harness's own pieces, without a server: percentiles, the response reader, the fuzz
cases, the app, the rlimit wrapper and the report."""

from __future__ import annotations

import io
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from treadle_reliability import app as target_app
from treadle_reliability.attacks import ATTACKS
from treadle_reliability.attacks.fuzz import cases, first_status
from treadle_reliability.harness import Outcome, Result
from treadle_reliability.monitor import Usage
from treadle_reliability.probe import Probe, ProbeFigures, percentile
from treadle_reliability.report import RunInfo, markdown, scrub
from treadle_reliability.servers import SERVERS, Launch
from treadle_reliability.wire import Reader, WireError


def test_percentile_is_nearest_rank_and_failures_are_infinite() -> None:
    assert percentile([], 50) == math.inf
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    figures = ProbeFigures()
    for _ in range(99):
        figures.record(0.01)
    figures.record(None, "timeout")
    assert (figures.ok, figures.total) == (99, 100)
    assert figures.p99 == 0.01 and not figures.all_within(1.0)
    figures.record(None, "timeout")
    assert figures.p99 == math.inf and figures.failures == {"timeout": 2}


@pytest.fixture
def reader_over() -> Iterator[Callable[..., Reader]]:
    """``reader_over(data)``: a Reader of a socket whose peer sent ``data`` (and closed, unless
    ``close=False``)."""
    opened: list[socket.socket] = []

    def make(data: bytes, close: bool = True) -> Reader:
        ours, theirs = socket.socketpair()
        opened.extend((ours, theirs))
        theirs.sendall(data)
        if close:
            theirs.close()
        return Reader(ours)

    yield make
    for sock in opened:
        sock.close()


def test_reader_frames_content_length_chunked_and_close(reader_over: Callable[..., Reader]) -> None:
    deadline = time.monotonic() + 5
    reader = reader_over(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\nrest of it"
    )
    first = reader.read_response(deadline)
    assert (first.status, first.body) == (200, b"hello")
    assert reader.read_response(deadline).body == b"abc"
    last = reader.read_response(deadline)
    assert (last.status, last.body, last.closes) == (404, b"rest of it", True)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "eof"),
        (b"garbage\r\n", "garbled"),
        (b"", "eof"),
    ],
)
def test_reader_says_why_there_is_no_response(
    reader_over: Callable[..., Reader], data: bytes, reason: str
) -> None:
    with pytest.raises(WireError) as caught:
        reader_over(data).read_response(time.monotonic() + 5)
    assert caught.value.reason == reason


def test_reader_times_out_at_its_deadline(reader_over: Callable[..., Reader]) -> None:
    reader = reader_over(b"HTTP/1.1 200 OK\r\n", close=False)
    started = time.monotonic()
    with pytest.raises(WireError) as caught:
        reader.read_response(started + 0.2)
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 2.0


def test_fuzz_cases_are_reproducible_and_statuses_skip_interim_answers() -> None:
    assert cases(9, 50) == cases(9, 50)
    assert cases(9, 50) != cases(10, 50)
    assert first_status(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad\r\n\r\n") == 400
    assert first_status(b"HTTP/1.1 503 Busy\r\n\r\n") == 503
    assert first_status(b"") is None
    assert first_status(b"\x15\x03\x01") is None


def _call(path: str, query: str = "", body: bytes = b"") -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        seen.append(status)

    environ = {"PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO(body)}
    out = b"".join(target_app.app(environ, start_response))
    return seen[0], out


def test_app_routes_and_bad_parameters_are_4xx() -> None:
    assert _call("/hello") == ("200 OK", target_app.HELLO)
    status, body = _call("/stream", "bytes=200000")
    assert status == "200 OK" and body == b"x" * 200000
    assert _call("/upload", body=b"a" * 70000) == ("200 OK", b"70000\n")
    assert _call("/sleep", "ms=1")[0] == "200 OK"
    for path, query in [("/stream", "bytes=-1"), ("/sleep", "ms=99999999"), ("/raise", "exc=x")]:
        assert _call(path, query)[0].startswith("400"), (path, query)
    assert _call("/nowhere")[0].startswith("404")


@pytest.mark.parametrize("name", sorted(target_app.RAISES))
def test_app_raises_what_it_is_asked_to(name: str) -> None:
    with pytest.raises(target_app.RAISES[name]):
        _call("/raise", f"exc={name}")


def test_rlimit_wrapper_lowers_the_limit_then_execs() -> None:
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    launch = Launch(rlimits={"NOFILE": 64})
    out = subprocess.run(
        [*launch.prefix(), sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "64"
    assert launch.shown() == "ulimit -n 64"
    assert Launch(rlimits={"FSIZE": 1024 * 1024}).shown() == "ulimit -f 1024"


def test_commands_shown_in_the_doc_name_no_path_of_this_machine() -> None:
    for spec in SERVERS.values():
        shown = spec.shown()
        assert "/" not in shown and "$PORT" in shown, shown
        assert "--threads" in shown or "--threads=5" in shown


def _result(attack: str, server: str, ok: bool) -> Result:
    outcome = Outcome(probe=ProbeFigures(ok=1, total=1, latencies=[0.002]), lost=0, sent=3)
    outcome.check("a check", ok, "detail")
    outcome.notes.append("a note")
    usage = Usage(10 << 20, 20 << 20, 12 << 20, 5.0, 6, 6, 7, 9, 7, ())
    return Result(attack, server, outcome, usage, True, 1.0)


def test_report_has_a_table_per_attack_with_each_server_side_by_side() -> None:
    attacks = [ATTACKS["slowloris"], ATTACKS["fd-exhaustion"]]
    results = {
        a.name: {
            "treadle": _result(a.name, "treadle", True),
            "waitress": _result(a.name, "w", False),
        }
        for a in attacks
    }
    text = markdown(
        attacks, results, ["treadle", "waitress"], RunInfo("tox -e x", "2024-01-01", 1.0, 2)
    )
    assert "`tox -e x` on 2024-01-01" in text
    assert "## Slowloris" in text and "## fd exhaustion" in text
    assert "| | treadle | waitress |" in text
    assert "| probe p50 / p99 | 2 ms / 2 ms | 2 ms / 2 ms |" in text
    assert "| verdict | pass | **FAIL** (1) |" in text
    assert "Servers start under `ulimit -n 64`." in text
    assert "failed: a check (detail)" in text


def test_keep_alive_probe_retries_once_when_its_idle_connection_was_closed() -> None:
    """The server closes the probe's connection after each answer without saying so; each
    next request finds it closed before any answer and is retried on a new connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def serve() -> None:
        for _ in range(3):
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        probe = Probe(listener.getsockname(), keep_alive=True, timeout=2.0)
        for _ in range(3):
            probe.once()
        probe.close()
    finally:
        thread.join(5.0)
        listener.close()
    assert (probe.figures.ok, probe.figures.total, probe.figures.reconnects) == (3, 3, 2)


def test_notes_quoting_a_log_name_files_but_no_directories() -> None:
    assert scrub('File "/opt/x/lib/treadle/bodies.py", line 85') == 'File "bodies.py", line 85'
    assert scrub("400 /hello and 1/2") == "400 /hello and 1/2"
