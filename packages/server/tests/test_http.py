"""HTTP/1.1 behaviour over real sockets against a server on port 0."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import httpx
import pytest

from treadle.server import HttpServer
from treadle.wsgi import Environ, StartResponse

from ._wire import Client
from .conftest import ServerFactory, hello_app

Connect = Callable[..., Client]
GET = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"


def test_keep_alive_serves_many_requests_on_one_connection(
    server: HttpServer, connect: Connect
) -> None:
    client = connect(server)
    for i in range(5):
        response = client.request(b"GET /r%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
        assert response.status == 200 and response.body == b"hello /r%d " % i
        assert response.header("Connection") is None
    assert server.stats()["accepted_connections"] == 1


def test_rfc9112_9_3_2_pipelined_requests_answered_in_order(
    server: HttpServer, connect: Connect
) -> None:
    client = connect(server)
    client.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(10)))
    bodies = [client.read_response().body for _ in range(10)]
    assert bodies == [b"hello /p%d " % i for i in range(10)]


def test_pipelined_after_a_body_and_after_a_chunked_body(
    server: HttpServer, connect: Connect
) -> None:
    client = connect(server)
    client.send(
        b"POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /two HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /three HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    assert client.read_response().body == b"hello /one abc"
    assert client.read_response().body == b"hello /two de"
    assert client.read_response().body == b"hello /three "


def test_request_split_across_many_sends(server: HttpServer, connect: Connect) -> None:
    client = connect(server)
    data = b"POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    for i in range(len(data)):
        client.send(data[i : i + 1])
    assert client.read_response().body == b"hello /s hello"


def test_rfc9112_9_3_http_1_0_closes_unless_keep_alive(
    server: HttpServer, connect: Connect
) -> None:
    client = connect(server)
    response = client.request(b"GET /x HTTP/1.0\r\n\r\n")
    assert response.header("Connection") == "close" and client.at_eof()
    client = connect(server)
    response = client.request(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert response.header("Connection") == "keep-alive"
    assert client.request(b"GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").body == b"hello /y "


def test_connection_keep_alive_close_list_closes(server: HttpServer, connect: Connect) -> None:
    client = connect(server)
    response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n")
    assert response.header("Connection") == "close" and client.at_eof()


def test_chunked_upload_with_trailers(make_server: ServerFactory, connect: Connect) -> None:
    seen: dict[str, object] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen["body"] = environ["wsgi.input"].read()
        seen["trailers"] = environ["treadle.trailers"]
        seen["length"] = environ["CONTENT_LENGTH"]
        start_response("200 OK", [])
        return [b"ok"]

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(
            b"PUT /u HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;note=x\r\nwiki\r\n5\r\npedia\r\n0\r\nChecksum: abc\r\n\r\n"
        )
        assert response.status == 200
    assert seen == {"body": b"wikipedia", "trailers": [("Checksum", "abc")], "length": "9"}


def test_rfc9110_10_1_1_100_continue_sent_before_body(server: HttpServer, connect: Connect) -> None:
    client = connect(server)
    client.send(b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = client.read_response()
    assert interim.status == 100
    client.send(b"data")
    assert client.read_response().body == b"hello /c data"


def test_100_continue_not_sent_when_body_refused(
    make_server: ServerFactory, connect: Connect
) -> None:
    from treadle.limits import Limits

    with make_server(hello_app, limits=Limits(max_body_size=10)) as srv:
        client = connect(srv)
        client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
        )
        response = client.read_response()
        assert response.status == 413 and client.at_eof()


def test_100_continue_not_sent_on_http_1_0(server: HttpServer, connect: Connect) -> None:
    client = connect(server, timeout=1.0)
    client.send(b"POST /c HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok")
    assert client.read_response().status == 200


def test_head_has_no_body_but_the_get_headers(make_server: ServerFactory, connect: Connect) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"abc", b"def"])

    with make_server(app) as srv:
        client = connect(srv)
        head = client.request(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", method="HEAD")
        get = client.request(GET)
        assert head.status == 200 and head.body == b""
        assert get.body == b"abcdef" and get.header("Transfer-Encoding") == "chunked"
        # the next response starts cleanly: HEAD wrote no body bytes
        assert client.request(GET).body == b"abcdef"


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_204_and_304_have_no_body(
    make_server: ServerFactory, connect: Connect, status: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, [("Content-Length", "5")] if status.startswith("204") else [])
        return [b"oops!"]

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(GET)
        assert response.status == int(status[:3])
        assert response.header("Content-Length") is None
        assert response.header("Transfer-Encoding") is None
        client.send(GET)
        assert client.read_response().status == int(status[:3])  # no stray body in between


def test_streamed_response_is_chunked_on_1_1_and_close_delimited_on_1_0(
    make_server: ServerFactory, connect: Connect
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        yield b"one "
        yield b""
        yield b"two"

    with make_server(app) as srv:
        client = connect(srv)
        response = client.request(GET)
        assert response.header("Transfer-Encoding") == "chunked" and response.body == b"one two"
        client = connect(srv)
        response = client.request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert response.header("Connection") == "close" and response.body == b"one two"


def test_date_and_server_headers(server: HttpServer, connect: Connect) -> None:
    response = connect(server).request(GET)
    assert (
        response.header(
            "Server",
        )
        == server.software
    )
    assert (response.header("Date") or "").endswith(" GMT")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/1.1\nHost: t\n\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400),
    ],
)
def test_refused_requests_get_their_status_and_a_close(
    server: HttpServer, connect: Connect, request_bytes: bytes, status: int
) -> None:
    client = connect(server)
    response = client.request(request_bytes)
    assert response.status == status
    assert response.header("Connection") == "close"
    assert client.at_eof()


def test_error_after_pipelined_request_closes_after_the_good_one(
    server: HttpServer, connect: Connect
) -> None:
    client = connect(server)
    client.send(GET + b"GET / HTTP/1.1\r\n\r\n" + GET)
    assert client.read_response().status == 200
    assert client.read_response().status == 400
    assert client.at_eof()


def test_underscore_headers_cannot_spoof_dashed_ones(
    make_server: ServerFactory, connect: Connect
) -> None:
    seen: list[str | None] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen.append(environ.get("HTTP_X_AUTH_USER"))
        start_response("200 OK", [])
        return [b""]

    with make_server(app) as srv:
        connect(srv).request(b"GET / HTTP/1.1\r\nHost: t\r\nX_Auth_User: admin\r\n\r\n")
        connect(srv).request(b"GET / HTTP/1.1\r\nHost: t\r\nX-Auth-User: me\r\n\r\n")
    assert seen == [None, "me"]


def test_httpx_client_round_trip(server: HttpServer) -> None:
    host, port = server.bind_addr[:2]
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        for _ in range(3):
            response = client.post("/h", content=b"x" * 100_000)
            assert response.status_code == 200 and response.content == b"hello /h " + b"x" * 100_000
        assert client.get("/q", params={"a": "1"}).headers["x-path"] == "/q"
