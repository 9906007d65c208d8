"""No client can end the process, stall a worker or spin the acceptor (issue 9's defects).

Each test is named after the defect it pins; each failed on the code before the fix.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from treadle.limits import Limits
from treadle.wsgi import Environ, StartResponse

from ._wire import Client
from .conftest import ServerFactory, hello_app

Connect = Callable[..., Client]
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HELLO = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"


def routes(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """/big?n=MiB streams n MiB; /raise?what=NAME raises that exception; else hello."""
    path = environ["PATH_INFO"]
    query = environ["QUERY_STRING"]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = b"x" * 65536
        for _ in range(int(query.partition("=")[2] or "1") * 16):
            yield block
        return
    if path == "/raise":
        kind = {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}
        raise kind.get(query.partition("=")[2], GeneratorExit)()
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"hello " + str(len(body)).encode()


# -- 1. a body that cannot be spooled fails alone ---------------------------------------------


def test_defect1_spool_failure_answers_503_and_the_server_goes_on(
    make_server: ServerFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fd(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_fd)
    with make_server(routes, limits=Limits(body_spool_size=1000)) as srv:
        client = connect(srv)
        # The head first, then the body: the spool happens in the acceptor thread.
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        client.send(b"a" * 5000)
        response = client.read_response()
        assert response.status == 503 and response.header("Retry-After") == "1"
        assert client.at_eof()
        small = connect(srv).request(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        assert small.body == b"hello 3"


# -- 2. an app's BaseException fails one response, never a worker -----------------------------


@pytest.mark.parametrize("what", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_defect2_base_exception_from_app_keeps_the_worker(
    make_server: ServerFactory, connect: Connect, what: str
) -> None:
    with make_server(routes, threads=2) as srv:
        for _ in range(5):
            assert (
                connect(srv)
                .request(f"GET /raise?what={what} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                .status
                == 500
            )
        assert connect(srv).request(HELLO).body == b"hello 0"
        assert srv.stats()["threads"] == 2
        assert all(w.is_alive() for w in srv.requests._threads)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_defect2_a_worker_that_dies_anyway_is_replaced(
    make_server: ServerFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from treadle import workers

    with make_server(hello_app, threads=1) as srv:
        original = workers.ThreadPool.done

        def done_then_die(pool: workers.ThreadPool, worker: workers.WorkerThread) -> None:
            original(pool, worker)
            monkeypatch.setattr(workers.ThreadPool, "done", original)
            raise SystemExit  # the thread ends, outside any request

        monkeypatch.setattr(workers.ThreadPool, "done", done_then_die)
        first = srv.requests._threads[0]
        assert connect(srv).request(GET).status == 200
        first.join(5)
        assert not first.is_alive()
        assert connect(srv).request(GET).status == 200  # a replacement took the work
        assert srv.stats()["threads"] == 1


# -- 4. leading empty lines are bounded ---------------------------------------------------------


def test_defect4_crlf_flood_is_refused_at_once(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app) as srv:
        client = connect(srv, timeout=3.0)
        started = time.monotonic()
        with contextlib.suppress(OSError):  # refused while sending: fine, if it answered
            client.send(b"\r\n" * 32768)
        response = client.read_response()
        assert response.status == 400 and client.at_eof()
        assert time.monotonic() - started < 5.0  # not the 10 s head deadline


def test_defect4_empty_lines_do_not_reset_the_head_deadline(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, limits=Limits(timeout=0.5)) as srv:
        client = connect(srv, timeout=5.0)
        started = time.monotonic()
        client.send(b"\r\n\r\nGET / HTTP/1.1\r\n")
        for _ in range(40):  # 4 s of trickling, far past the 0.5 s deadline
            try:
                client.send(b"X-A: b\r\n")
            except OSError:
                break
            if _readable(client.sock, 0.1):
                break
        assert client.read_response().status == 408
        assert time.monotonic() - started < 3.5  # the trickle alone lasts 4 s


def _readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


# -- 5. a slow but steady reader gets the whole response ----------------------------------------


class _LatePollout:
    """``select.poll`` as Linux behaves for a large send buffer read slowly: POLLOUT comes
    only once much of it drains, so for a long while it reports nothing at all."""

    def register(self, fd: int, events: int) -> None:
        pass

    def poll(self, timeout_ms: float) -> list[tuple[int, int]]:
        time.sleep(timeout_ms / 1000)
        return []


def test_defect5_steady_reader_without_pollout_is_not_cut_off(
    make_server: ServerFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send deadline is for progress (bytes the client took), not for readiness."""
    from treadle import output

    monkeypatch.setattr(output.select, "poll", _LatePollout)
    with make_server(routes, limits=Limits(timeout=0.5)) as srv:
        sock = socket.create_connection(srv.bind_addr[:2], timeout=10.0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big?n=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        received = 0
        while chunk := sock.recv(65536):  # steadily, but slower than the app writes
            received += len(chunk)
            time.sleep(0.005)
        sock.close()
        assert received > 4 * 1024 * 1024  # the head and all 4 MiB


# -- 6. clients that never read cannot pin the workers ------------------------------------------


def test_defect6_six_non_readers_do_not_starve_a_seventh_client(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(routes, threads=5, limits=Limits(timeout=30.0)) as srv:
        hogs = [connect(srv) for _ in range(6)]
        for hog in hogs:
            hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.send(b"GET /big?n=64 HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while srv.stats()["stalled_threads"] < 5:
            assert time.monotonic() < deadline, srv.stats()
            time.sleep(0.01)
        started = time.monotonic()
        assert connect(srv, timeout=10.0).request(HELLO).body == b"hello 0"
        assert time.monotonic() - started < 5.0  # not the hogs' 30 s send deadline
        stats = srv.stats()
        assert stats["threads"] <= 10  # replacements are capped at twice the pool


# -- 7. a Content-Length past the int-string limit ---------------------------------------------


def test_defect7_content_length_of_5000_digits_is_413(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app) as srv:
        client = connect(srv)
        response = client.request(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
        )
        assert response.status == 413 and client.at_eof()


# -- 8. uploads have a memory budget, a minimum rate, and connections a limit -------------------


def test_defect8_slow_uploads_share_a_memory_budget(
    make_server: ServerFactory, connect: Connect
) -> None:
    limits = Limits(body_memory_budget=100_000, body_spool_size=60_000, timeout=30.0)
    with make_server(routes, limits=limits, stats_path="/_stats") as srv:
        uploads = [connect(srv) for _ in range(5)]
        for client in uploads:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            client.send(b"a" * 50_000)
        for client in uploads:  # 250 KB buffered, but no more than 100 KB of it in memory
            client.send(b"b" * 10)
        stats = httpx.get(f"http://{srv.bind_addr[0]}:{srv.bind_addr[1]}/_stats").json()
        assert 0 < stats["body_memory_bytes"] <= 100_000
        for client in uploads:
            client.send(b"c" * 49_990)
            assert client.read_response().body == b"hello 100000"
        assert srv.body_budget.used == 0


def test_defect8_upload_below_the_minimum_rate_gets_408(
    make_server: ServerFactory, connect: Connect
) -> None:
    limits = Limits(timeout=1.0, min_upload_rate=1000)
    with make_server(routes, limits=limits) as srv:
        client = connect(srv, timeout=5.0)
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        started = time.monotonic()
        for _ in range(60):  # 10 bytes every 0.1 s: a byte well within each gap's timeout
            try:
                client.send(b"a" * 10)
            except OSError:
                break
            if _readable(client.sock, 0.1):
                break
        assert client.read_response().status == 408
        assert time.monotonic() - started < 4.5  # the trickle alone lasts 6 s


def test_defect8_connection_limit_evicts_the_oldest_idle_connection(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, max_connections=3) as srv:
        idle = []
        for parked in range(1, 4):
            idle.append(connect(srv))
            assert idle[-1].request(GET).status == 200
            while srv.stats()["parked_connections"] < parked:  # idle from the worker's park
                time.sleep(0.005)
        assert connect(srv).request(GET).status == 200
        assert idle[0].at_eof()
        assert srv.stats()["evicted_idle_connections"] >= 1


def test_defect8_connection_limit_evicts_a_silent_connection_before_a_keep_alive_one(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, max_connections=3) as srv:
        kept = connect(srv)
        assert kept.request(GET).status == 200
        while srv.stats()["parked_connections"] < 1:
            time.sleep(0.005)
        silent = [connect(srv), connect(srv)]  # accepted after it, never a byte sent
        while srv.stats()["open_connections"] < 3:
            time.sleep(0.005)
        assert connect(srv).request(GET).status == 200
        assert silent[0].at_eof()
        assert kept.request(GET).status == 200  # the keep-alive client kept its connection


def test_defect8_connection_limit_pauses_accepting_while_none_is_idle(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, max_connections=2) as srv:
        busy = [connect(srv) for _ in range(2)]
        for client in busy:
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # half a head: not idle
        while srv.stats()["receiving_connections"] < 2:
            time.sleep(0.01)
        waiting = connect(srv)
        waiting.send(GET)
        assert not _readable(waiting.sock, 0.5)  # in the listen backlog, not accepted
        assert srv.stats()["open_connections"] == 2
        busy[0].send(b"\r\n")
        assert busy[0].read_response().status == 200
        busy[0].close()
        assert waiting.read_response().status == 200


# -- 9. stopping serves what has arrived --------------------------------------------------------


def test_defect9_stop_serves_requests_that_had_arrived(
    make_server: ServerFactory, connect: Connect
) -> None:
    with make_server(hello_app, threads=2, stop_timeout=10.0) as srv:
        kept = [connect(srv) for _ in range(20)]
        for client in kept:
            assert client.request(GET).status == 200  # now parked, idle
        fresh = [connect(srv) for _ in range(20)]  # accepted, or still in the backlog
        srv.interrupt()  # the accept loop returns: from here on only stop() reads
        assert srv._stopped.wait(5)
        for client in kept + fresh:
            client.send(GET)  # every byte is in the server's socket buffers before stop()
        srv.stop(10.0)
        for client in kept + fresh:
            response = client.read_response()
            assert response.status == 200 and response.header("Connection") == "close"


def test_defect9_a_request_that_arrives_as_its_worker_finishes_is_served(
    make_server: ServerFactory, connect: Connect
) -> None:
    """The worker hands its connection back after stop() began, and the next request is
    already there: it is served, not closed as an idle connection."""
    closing = threading.Event()
    release = threading.Event()

    class Body(list[bytes]):
        def close(self) -> None:  # runs after the response has left
            closing.set()
            release.wait(10)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        first = environ["PATH_INFO"] == "/first"
        start_response("200 OK", [("Content-Length", "5" if first else "6")])
        return Body([b"first"]) if first else [b"second"]

    with make_server(app, stop_timeout=10.0) as srv:
        client = connect(srv)
        assert client.request(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").body == b"first"
        assert closing.wait(5)
        client.send(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        stopper = threading.Thread(target=srv.stop, args=(10.0,))
        stopper.start()
        while not srv.stopping:
            time.sleep(0.005)
        release.set()
        response = client.read_response()
        stopper.join(10)
    assert response.body == b"second" and response.header("Connection") == "close"


def test_defect9_cut_requests_and_the_end_are_logged(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.error")
    release = threading.Event()

    def stuck(environ: Environ, start_response: StartResponse) -> list[bytes]:
        release.wait(10)
        start_response("200 OK", [])
        return [b""]

    with make_server(stuck, stop_timeout=0.3) as srv:
        client = connect(srv)
        client.send(b"GET /stuck-here HTTP/1.1\r\nHost: t\r\n\r\n")
        while srv.stats()["busy_threads"] < 1:
            time.sleep(0.01)
    release.set()
    messages = [r.getMessage() for r in caplog.records if r.name == "treadle.error"]
    cut = [m for m in messages if "graceful deadline" in m]
    assert cut and "1 cut" in cut[0] and "GET /stuck-here HTTP/1.1" in cut[0]


def test_defect9_clean_stop_says_so(caplog: pytest.LogCaptureFixture) -> None:
    from treadle.testing import running

    caplog.set_level(logging.INFO, logger="treadle.error")
    with running(hello_app):
        pass
    assert any(r.getMessage().startswith("stopped: ") for r in caplog.records)


# -- 10. refused requests are visible -----------------------------------------------------------


def test_defect10_refusals_reach_the_access_log_and_a_rate_limited_note(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.access")
    caplog.set_level(logging.INFO, logger="treadle.error")
    with make_server(hello_app) as srv:
        for _ in range(3):
            assert connect(srv).request(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n").status == 400
        client = connect(srv)
        assert client.request(b"GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n").status == 400
    access = [r.getMessage() for r in caplog.records if r.name == "treadle.access"]
    assert len(access) == 4
    assert '"GET /a b HTTP/1.1" 400 ' in access[0]
    notes = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(notes) < 4  # rate-limited
    assert "400 malformed request line" in notes[0]


def test_defect10_timeouts_are_logged_too(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.access")
    with make_server(hello_app, limits=Limits(timeout=0.3)) as srv:
        client = connect(srv)
        client.send(b"GET /slow HTTP/1.1\r\n")
        assert client.read_response().status == 408
    access = [r.getMessage() for r in caplog.records if r.name == "treadle.access"]
    assert any('"GET /slow HTTP/1.1" 408 ' in line for line in access)


# -- 11. bytes that cannot start a request ------------------------------------------------------


def test_defect11_tls_client_hello_on_the_plain_port_is_refused_at_once(
    make_server: ServerFactory, connect: Connect
) -> None:
    hello = bytes.fromhex("160301020001000001fc0303") + b"\x00" * 32
    with make_server(hello_app) as srv:  # a 10 s head deadline
        client = connect(srv, timeout=2.0)
        client.send(hello)
        response = client.read_response()
        assert response.status == 400 and client.at_eof()
