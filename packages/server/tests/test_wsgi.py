"""The WSGI 1.0 gateway (PEP 3333): environ, start_response, write(), close()."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest

from treadle.wsgi import Environ, StartResponse

from ._wire import Client
from .conftest import ServerFactory

Connect = Callable[..., Client]
GET = (
    b"GET /a%20b/c?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
    b"Cookie: a=1\r\nCookie: b=2\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
)


def capture(store: dict[str, Any]) -> Callable[[Environ, StartResponse], list[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        store.update(environ)
        store["body"] = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def test_pep3333_environ(make_server: ServerFactory, connect: Connect) -> None:
    env: dict[str, Any] = {}
    with make_server(capture(env)) as srv:
        client = connect(srv)
        assert client.request(GET).status == 200
        port = srv.bind_addr[1]
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/a b/c" and env["SCRIPT_NAME"] == ""
    assert env["QUERY_STRING"] == "x=1" and env["REQUEST_URI"] == "/a%20b/c?x=1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == str(port)
    assert env["HTTP_HOST"] == "example.com:8080"
    assert env["HTTP_COOKIE"] == "a=1; b=2" and env["HTTP_X_MULTI"] == "1, 2"
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    assert env["wsgi.version"] == (1, 0) and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False and env["wsgi.input_terminated"] is True
    assert env["wsgi.errors"] is sys.stderr and callable(env["wsgi.file_wrapper"])
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env


def test_environ_content_headers_and_body(make_server: ServerFactory, connect: Connect) -> None:
    env: dict[str, Any] = {}
    with make_server(capture(env)) as srv:
        connect(srv).request(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/x\r\nContent-Length: 3\r\n\r\nabc"
        )
    assert env["CONTENT_TYPE"] == "text/x" and env["CONTENT_LENGTH"] == "3"
    assert env["body"] == b"abc" and "HTTP_CONTENT_LENGTH" not in env


def test_absolute_form_sets_host_but_cannot_claim_tls(
    make_server: ServerFactory, connect: Connect
) -> None:
    env: dict[str, Any] = {}
    with make_server(capture(env)) as srv:
        connect(srv).request(b"GET https://real.example/p HTTP/1.1\r\nHost: fake\r\n\r\n")
    assert env["HTTP_HOST"] == "real.example" and env["wsgi.url_scheme"] == "http"
    assert env["PATH_INFO"] == "/p"


def test_wsgiref_validator_passes(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"valid"]

    with make_server(validator(app)) as srv:
        client = connect(srv)
        for _ in range(2):
            assert client.request(GET).body == b"valid"
        response = client.request(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
        assert response.status == 200


def test_write_callable_and_iterable_close(make_server: ServerFactory, connect: Connect) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b" and iterated"

        def close(self) -> None:
            closed.append(True)

    def app(environ: Environ, start_response: StartResponse) -> Body:
        write = start_response("200 OK", [])
        write(b"written")
        return Body()

    with make_server(app) as srv:
        response = connect(srv).request(GET)
    assert response.body == b"written and iterated" and closed == [True]


def test_close_called_even_when_iteration_fails(
    make_server: ServerFactory, connect: Connect
) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            raise RuntimeError("boom")

        def close(self) -> None:
            closed.append(True)

    def app(environ: Environ, start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    with make_server(app) as srv:
        client = connect(srv)
        assert client.request(GET).status == 500
    assert closed == [True]


def test_app_exception_before_start_gives_500(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ValueError("broken app")

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(GET)
        assert response.status == 500 and client.at_eof()
        assert connect(srv).request(GET).status == 500  # the worker survived


def test_app_oserror_is_an_app_error_500(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise FileNotFoundError("template.html")

    with make_server(app) as srv:
        assert connect(srv).request(GET).status == 500


def test_app_exception_after_headers_closes_connection(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise ValueError("broken mid-stream")

    with make_server(app) as srv:
        client = connect(srv)
        client.send(GET)
        with pytest.raises((ConnectionError, AssertionError, ValueError)):
            client.read_response()  # the chunked stream never ends properly


def test_exc_info_replaces_headers_before_they_are_sent(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    with make_server(app) as srv:
        response = connect(srv).request(GET)
    assert response.status == 503 and response.header("X-Second") == "2"
    assert response.header("X-First") is None and response.body == b"sorry"


def test_exc_info_after_headers_sent_reraises(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        write(b"sent")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())
        yield b"never"

    with make_server(app) as srv:
        client = connect(srv)
        client.send(GET)
        with pytest.raises((ConnectionError, AssertionError, ValueError)):
            client.read_response()


def test_second_start_response_without_exc_info_is_an_error(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b""]

    with make_server(app) as srv:
        assert connect(srv).request(GET).status == 500


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-Evil", "a\r\nSet-Cookie: pwned=1")]),
        ("200 OK", [("X-Evil", "a\nb")]),
        ("200 OK", [("X-Evil", "a\x00b")]),
        ("200 OK", [("Bad Name", "v")]),
        ("200 OK", [("X", "\u2603")]),
        ("200 OK\r\nX-Injected: 1", []),
        ("200", []),
        ("99 Odd", []),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("Content-Length", "abc")]),
        ("200 OK", [("X", 1)]),
    ],
)
def test_app_headers_with_crlf_nul_or_bad_grammar_give_500(
    make_server: ServerFactory, connect: Connect, status: str, headers: list[tuple[str, str]]
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, headers)
        return [b"body"]

    with make_server(app) as srv:
        client = connect(srv)
        client.send(GET)
        raw = client.file.read()  # the server closes after a 500
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"pwned" not in raw and b"X-Injected" not in raw and b"body" not in raw


def test_app_overrunning_content_length_is_cut_and_closed(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"12345", b"HTTP/1.1 200 OK\r\n\r\nsmuggled"]

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(GET)
        assert response.body == b"12345"
        assert client.at_eof()


def test_app_short_of_content_length_gets_connection_closed(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12", b"345"]

    with make_server(app) as srv:
        client = connect(srv)
        client.send(GET + GET)
        raw = client.file.read()
    assert raw.endswith(b"12345") and raw.count(b"HTTP/1.1") == 1


def test_app_connection_close_header_is_honoured(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Connection", "close")])
        return [b"bye"]

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(GET)
        assert response.header("Connection") == "close" and client.at_eof()


def test_list_without_start_response_gives_500(
    make_server: ServerFactory, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"forgot start_response"]

    with make_server(app) as srv:
        assert connect(srv).request(GET).status == 500
    assert "without calling start_response" in caplog.text


def test_non_bytes_from_app_gives_500(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[str]:
        start_response("200 OK", [])
        return ["text, not bytes"]

    with make_server(app) as srv:  # type: ignore[arg-type]
        assert connect(srv).request(GET).status == 500


def test_file_wrapper_streams_a_file(
    make_server: ServerFactory, connect: Connect, tmp_path: Any
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 200_000)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "200000")])
        return environ["wsgi.file_wrapper"](path.open("rb"), 8192)  # type: ignore[no-any-return]

    with make_server(app) as srv:
        assert connect(srv).request(GET).body == b"z" * 200_000
