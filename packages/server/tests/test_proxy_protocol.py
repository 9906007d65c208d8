"""The PROXY protocol in front of HTTP and TLS (issue 11 §3), raw and behind a real HAProxy."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from treadle import tls
from treadle.forwarded import ProxyTrust
from treadle.server import HttpServer
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse

from ._wire import Client

GET = b"GET /who HTTP/1.1\r\nHost: t\r\n\r\n"


def who(environ: Environ, start_response: StartResponse) -> list[bytes]:
    seen = {k: environ[k] for k in ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def _v2(source: tuple[str, int], dest: tuple[str, int], command: int = 1) -> bytes:
    addresses = socket.inet_aton(source[0]) + socket.inet_aton(dest[0])
    addresses += struct.pack("!HH", source[1], dest[1])
    return (
        b"\r\n\r\n\x00\r\nQUIT\n"
        + bytes([0x20 | command, 0x11])
        + struct.pack("!H", len(addresses))
        + addresses
    )


def _ask(server: HttpServer, *pieces: bytes) -> dict[str, str]:
    client = Client(socket.create_connection(server.bind_addr[:2], timeout=5))
    try:
        for piece in pieces:
            client.send(piece)
        seen: dict[str, str] = json.loads(client.read_response().body)
        return seen
    finally:
        client.close()


@pytest.fixture
def proxied() -> Iterator[HttpServer]:
    with running(who, proxy_protocol=True) as server:
        yield server


def test_v1_header_names_the_client(proxied: HttpServer) -> None:
    header = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n"
    seen = _ask(proxied, header + GET)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("203.0.113.7", "51234")


def test_v2_header_names_the_client(proxied: HttpServer) -> None:
    seen = _ask(proxied, _v2(("198.51.100.9", 4000), ("127.0.0.1", 80)) + GET)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("198.51.100.9", "4000")


@pytest.mark.parametrize("cut", [1, 6, 20, 40])
def test_header_split_across_packets(proxied: HttpServer, cut: int) -> None:
    data = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n" + GET
    client = Client(socket.create_connection(proxied.bind_addr[:2], timeout=5))
    client.send(data[:cut])
    time.sleep(0.05)  # pacing, not waiting: the second piece goes as a packet of its own
    client.send(data[cut:])
    assert json.loads(client.read_response().body)["REMOTE_ADDR"] == "203.0.113.7"
    client.close()


@pytest.mark.parametrize(
    "header",
    [b"PROXY UNKNOWN\r\n", _v2(("10.1.1.1", 1), ("10.2.2.2", 2), command=0)],
    ids=["v1-unknown", "v2-local"],
)
def test_unknown_and_local_keep_the_socket_address(proxied: HttpServer, header: bytes) -> None:
    assert _ask(proxied, header + GET)["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize(
    "data",
    [GET, b"PROXY TCP4 nonsense\r\n" + GET, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + GET],
    ids=["missing", "malformed", "bare-lf"],
)
def test_missing_or_malformed_header_closes(proxied: HttpServer, data: bytes) -> None:
    client = Client(socket.create_connection(proxied.bind_addr[:2], timeout=5))
    client.send(data)
    assert client.at_eof()  # closed, and not a byte of HTTP said
    client.close()


def test_untrusted_peer_may_not_send_a_header() -> None:
    trust = ProxyTrust.parse("10.0.0.0/8", "none")
    with running(who, proxy_protocol=True, proxy=trust) as server:
        client = Client(socket.create_connection(server.bind_addr[:2], timeout=5))
        client.send(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n" + GET)
        assert client.at_eof()
        client.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pp-tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    paths = {"ca": folder / "ca.pem", "cert": folder / "c.pem", "key": folder / "k.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    issued.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def test_header_before_a_tls_handshake(certs: dict[str, Path]) -> None:
    context = tls.server_context(str(certs["cert"]), str(certs["key"]))
    with running(who, proxy_protocol=True, ssl_context=context) as server:
        raw = socket.create_connection(server.bind_addr[:2], timeout=5)
        raw.sendall(_v2(("198.51.100.9", 4000), ("127.0.0.1", 443)))
        client_context = ssl.create_default_context(cafile=str(certs["ca"]))
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            client = Client(sock)
            seen = json.loads(client.request(GET).body)
            client.file.close()
    assert seen == {
        "REMOTE_ADDR": "198.51.100.9",
        "REMOTE_PORT": "4000",
        "wsgi.url_scheme": "https",
    }


# -- a real HAProxy in front -------------------------------------------------------------------

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def haproxy(tmp_path: Path, backend_port: int, send_proxy: str) -> Iterator[int]:
    """HAProxy in TCP mode on a free port, in the foreground, sending ``send_proxy``."""
    assert HAPROXY is not None
    port = _free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "global\n  maxconn 256\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        f"frontend front\n  bind 127.0.0.1:{port}\n  default_backend back\n"
        f"backend back\n  server treadle 127.0.0.1:{backend_port} {send_proxy}\n"
    )
    proc = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # ready when it accepts
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")


@needs_haproxy
@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2"])
def test_behind_haproxy_the_app_sees_the_client(tmp_path: Path, send_proxy: str) -> None:
    with (
        running(who, proxy_protocol=True) as server,
        haproxy(tmp_path, server.bind_addr[1], send_proxy) as port,
    ):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        client = Client(sock)
        seen = json.loads(client.request(GET).body)
        mine = sock.getsockname()
        client.close()
    # The same address either way on loopback; the port tells HAProxy's from the client's.
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == (mine[0], str(mine[1]))


@needs_haproxy
def test_tls_terminated_by_treadle_behind_haproxy_tcp_mode(
    tmp_path: Path, certs: dict[str, Path]
) -> None:
    context = tls.server_context(str(certs["cert"]), str(certs["key"]))
    with (
        running(who, proxy_protocol=True, ssl_context=context) as server,
        haproxy(tmp_path, server.bind_addr[1], "send-proxy-v2") as port,
    ):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        mine = raw.getsockname()
        client_context = ssl.create_default_context(cafile=str(certs["ca"]))
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            client = Client(sock)
            seen = json.loads(client.request(GET).body)
            client.file.close()
    assert seen == {"REMOTE_ADDR": mine[0], "REMOTE_PORT": str(mine[1]), "wsgi.url_scheme": "https"}
