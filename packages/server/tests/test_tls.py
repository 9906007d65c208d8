"""TLS (issue 11): real certificates from trustme; handshakes never on a worker."""

from __future__ import annotations

import json
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from treadle import tls
from treadle.limits import Limits
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse

from ._fill import fillers, filling, get, pattern, pattern_app, read_in_order
from ._proc import TREADLE, spawned
from ._wire import Client
from .conftest import wait_until

KEYS = ("wsgi.url_scheme", "HTTPS", "SSL_PROTOCOL", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN")


def environ_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = environ["wsgi.input"].read()
    seen = {key: environ.get(key) for key in KEYS}
    seen["body"] = body.decode()
    seen["cert"] = "BEGIN CERTIFICATE" in environ.get("SSL_CLIENT_CERT", "")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example", common_name="client.example")
    paths = {
        "ca": folder / "ca.pem",
        "cert": folder / "server.pem",
        "key": folder / "server.key",
        "client": folder / "client.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(paths["cert"]), append=True)
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return paths


def _context(certs: dict[str, Path], **kwargs: object) -> ssl.SSLContext:
    return tls.server_context(str(certs["cert"]), str(certs["key"]), **kwargs)  # type: ignore[arg-type]


def _client_context(certs: dict[str, Path], with_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    if with_cert:
        context.load_cert_chain(str(certs["client"]))
    return context


@pytest.fixture
def https(certs: dict[str, Path]) -> Iterator[str]:
    with running(environ_app, ssl_context=_context(certs), stop_timeout=2.0) as server:
        yield server.describe(server.sockets[0])


def _tls_client(url: str, certs: dict[str, Path], with_cert: bool = False) -> Client:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=5)
    wrapped = _client_context(certs, with_cert).wrap_socket(raw, server_hostname=host)
    return Client(wrapped)


def test_https_request_sees_the_tls_environ(https: str, certs: dict[str, Path]) -> None:
    assert https.startswith("https://127.0.0.1:")
    with httpx.Client(verify=_client_context(certs)) as client:
        seen = client.post(https + "/", content=b"over tls").json()
    assert seen["wsgi.url_scheme"] == "https" and seen["HTTPS"] == "on"
    assert seen["SSL_PROTOCOL"] in ("TLSv1.2", "TLSv1.3")
    assert seen["SSL_CLIENT_VERIFY"] is None and seen["body"] == "over tls"


def test_alpn_offers_http_1_1(https: str, certs: dict[str, Path]) -> None:
    context = _client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = https.removeprefix("https://").rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=5)
    with context.wrap_socket(raw, server_hostname=host) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        assert sock.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(https: str, certs: dict[str, Path]) -> None:
    context = _client_context(certs)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    host, port = https.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname=host)


def test_pipelined_requests_over_tls_all_answered(https: str, certs: dict[str, Path]) -> None:
    """Three requests in one TLS write: the second and third are decrypted with the first
    (``pending()``) and announce no poller event of their own."""
    client = _tls_client(https, certs)
    client.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
    assert [client.read_response().status for _ in range(3)] == [200, 200, 200]
    client.close()


def test_chunked_upload_with_100_continue_over_tls(https: str, certs: dict[str, Path]) -> None:
    client = _tls_client(https, certs)
    client.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    )
    assert client.read_response().status == 100
    client.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    response = client.read_response()
    assert json.loads(response.body)["body"] == "hello world"
    client.close()


def test_a_buffered_response_is_drained_in_order_over_tls(certs: dict[str, Path]) -> None:
    """A client that reads nothing for a while: the tail of the response at hand waits in the
    output buffer (OpenSSL asked for the write again, with the same bytes) and the worker is
    free; then the client reads every response, in order, every byte (see output.py)."""
    with running(pattern_app, ssl_context=_context(certs), threads=1) as server:

        def parked() -> bool:
            stats = server.stats()
            idle = stats["busy_threads"] == 0 and stats["stalled_threads"] == 0
            return idle and stats["sending_connections"] == 1

        host, port = server.bind_addr[:2]
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect((host, port))
        slow = Client(_client_context(certs).wrap_socket(raw, server_hostname=host))
        try:
            # One request first: reading its answer also reads the session tickets, so that
            # readability then means the answers to the pipelined requests have begun.
            assert slow.request(get("hi", 16)).status == 200
            slow.send(filling(get("one"), get("two", pieces=9)))
            assert select.select([slow.sock], [], [], 5.0)[0]
            wait_until(parked)
            assert server.stats()["send_buffer_bytes"] > 0
            read_in_order(slow, [*fillers(), "one", "two"])
            assert slow.request(get("three", 100)).body.startswith(b"thre")
        finally:
            slow.close()


def test_a_steady_tls_reader_of_a_buffered_response_is_not_cut_off(
    certs: dict[str, Path],
) -> None:
    """TLS writes are all or nothing; the poller sends buffered bytes a record at a time, so a
    client reading slowly but steadily makes progress that counts against the send deadline:
    here 100 KB written in 10 pieces and read at 40 KB/s, past a 1 s deadline, through small
    socket buffers."""
    limits = Limits(timeout=1.0)
    with running(pattern_app, ssl_context=_context(certs), threads=1, limits=limits) as server:
        server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # inherited
        host, port = server.bind_addr[:2]
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(5)
        raw.connect((host, port))
        slow = _client_context(certs).wrap_socket(raw, server_hostname=host)
        try:
            slow.sendall(b"GET /one?size=100000&pieces=10 HTTP/1.0\r\n\r\n")  # no chunks
            data = b""
            started = time.monotonic()
            while chunk := slow.recv(4096):
                data += chunk
                time.sleep(0.1)  # the reader's pace: 40 KB/s at most
            assert data.partition(b"\r\n\r\n")[2] == pattern("one", 100_000)
            assert time.monotonic() - started > 2 * limits.timeout
        finally:
            slow.close()


def test_plain_http_on_the_tls_port_gets_a_plain_400(https: str) -> None:
    host, port = https.removeprefix("https://").rsplit(":", 1)
    client = Client(socket.create_connection((host, int(port)), timeout=5))
    response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert response.status == 400 and b"HTTPS port" in response.body
    assert client.at_eof()
    client.close()


def test_mutual_tls_required(certs: dict[str, Path]) -> None:
    context = _context(certs, ca_certs=str(certs["ca"]), client_cert="required")
    with running(environ_app, ssl_context=context, stop_timeout=2.0) as server:
        url = server.describe(server.sockets[0])
        with httpx.Client(verify=_client_context(certs, with_cert=True)) as client:
            seen = client.get(url + "/").json()
        assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS" and seen["cert"] is True
        assert "CN=client.example" in seen["SSL_CLIENT_S_DN"]
        with httpx.Client(verify=_client_context(certs)) as client, pytest.raises(httpx.HTTPError):
            client.get(url + "/")  # no certificate: the handshake fails
        with httpx.Client(verify=_client_context(certs, with_cert=True)) as client:
            assert client.get(url + "/").status_code == 200  # and the server goes on


def test_plain_and_tls_binds_on_one_server(certs: dict[str, Path]) -> None:
    from treadle.server import HttpServer

    server = HttpServer(
        ["http://127.0.0.1:0", "https://127.0.0.1:0"], environ_app, ssl_context=_context(certs)
    )
    server.prepare()
    try:
        import threading

        thread = threading.Thread(target=server.start, daemon=True)
        thread.start()
        plain, secure = (server.describe(sock) for sock in server.sockets)
        assert plain.startswith("http://") and secure.startswith("https://")
        assert httpx.get(plain + "/").json()["wsgi.url_scheme"] == "http"
        with httpx.Client(verify=_client_context(certs)) as client:
            assert client.get(secure + "/").json()["wsgi.url_scheme"] == "https"
    finally:
        server.stop(2.0)
        thread.join(5)


def test_stalled_handshakes_hold_no_worker_and_expire(certs: dict[str, Path]) -> None:
    """200 clients open TCP and never say hello, or stop half-way through it: a normal HTTPS
    client on a one-thread server is still answered at once, and the stalled ones are closed
    at the deadline."""
    ctx = _context(certs)
    with running(environ_app, threads=1, ssl_context=ctx, limits=Limits(timeout=1.0)) as server:
        url = server.describe(server.sockets[0])
        host, port = server.bind_addr[:2]
        stalled = [socket.create_connection((host, port), timeout=5) for _ in range(200)]
        hello = _client_hello(certs, host)
        for sock in stalled[:100]:
            sock.sendall(hello[: len(hello) // 2])  # half a ClientHello, then nothing
        try:
            with httpx.Client(verify=_client_context(certs)) as client:
                started = time.monotonic()
                assert client.get(url + "/").status_code == 200
                assert time.monotonic() - started < 2.5  # not one 1 s deadline per stall
            for sock in stalled:  # closed by the server at its 1 s deadline
                sock.settimeout(5)
                assert sock.recv(1024) in (b"",)
        finally:
            for sock in stalled:
                sock.close()


def _client_hello(certs: dict[str, Path], host: str) -> bytes:
    """The bytes a real client sends first (a ClientHello), captured from a memory BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _client_context(certs).wrap_bio(incoming, outgoing, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_client_closing_mid_handshake_costs_nothing(https: str, certs: dict[str, Path]) -> None:
    host, port = https.removeprefix("https://").rsplit(":", 1)
    hello = _client_hello(certs, host)
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(hello[:40])
    with httpx.Client(verify=_client_context(certs)) as client:
        assert client.get(https + "/").status_code == 200


def test_cli_serves_https(certs: dict[str, Path]) -> None:
    argv = [
        *TREADLE,
        "--bind",
        "127.0.0.1:0",
        "--certfile",
        certs["cert"],
        "--keyfile",
        certs["key"],
    ]
    with spawned([*argv, "treadle.demo:app"]) as (_, url):
        assert url.startswith("https://")
        with httpx.Client(verify=_client_context(certs)) as client:
            assert client.get(url + "/hello").text == "Hello, world!"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keyfile", "k.pem"], "TLS options need --certfile"),
        (["--bind", "https://127.0.0.1:0"], "an https:// --bind needs --certfile"),
        (["--certfile", "/nonexistent.pem"], "cannot set up TLS"),
        (["--certfile", "CERT", "--keyfile", "KEY", "--client-cert", "required"], "CA certif"),
        (["--certfile", "CERT"], "does not load"),
    ],
)
def test_cli_tls_mistakes_are_one_line_and_exit_2(
    args: list[str], message: str, certs: dict[str, Path]
) -> None:
    args = [str(certs[arg.lower()]) if arg in ("CERT", "KEY") else arg for arg in args]
    result = subprocess.run(
        [sys.executable, "-m", "treadle", *args, "treadle.demo:app"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_stop_does_not_wait_for_stalled_handshakes(certs: dict[str, Path]) -> None:
    ctx = _context(certs)
    with running(environ_app, ssl_context=ctx, stop_timeout=10.0) as server:
        stalled = [socket.create_connection(server.bind_addr[:2], timeout=5) for _ in range(5)]
        with httpx.Client(verify=_client_context(certs)) as client:  # all accepted by now
            assert client.get(server.describe(server.sockets[0]) + "/").status_code == 200
        started = time.monotonic()
    assert time.monotonic() - started < 5.0  # not the 10 s graceful timeout
    for sock in stalled:
        sock.close()
