"""treadle behind a real nginx: X-Forwarded-* (and RFC 7239 Forwarded) over an upstream
keep-alive pool. Clients connect from other loopback addresses (127.0.0.2, 127.0.0.3) than
nginx (127.0.0.1), so the address the app sees tells which one it believed."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from treadle.forwarded import ProxyTrust
from treadle.limits import Limits
from treadle.server import HttpServer
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse

from ._proxies import nginx

SHOWN = (
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "wsgi.url_scheme",
    "HTTPS",
    "HTTP_HOST",
    "SERVER_PORT",
    "HTTP_X_FORWARDED_FOR",
    "SCRIPT_NAME",
    "PATH_INFO",
)


def show_environ(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({key: environ.get(key) for key in SHOWN}).encode()]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def nginx_conf(
    upstream: int, tmp_path: Path, ca: trustme.CA, extra: str = ""
) -> Callable[[list[int]], str]:
    """An upstream keep-alive pool to treadle, as the nginx documentation configures one,
    with the usual headers; served on a plain port and a TLS port."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    location = f"""
            location / {{
                proxy_pass http://treadle;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_set_header Host $host;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Forwarded-Host $host;
                proxy_set_header X-Forwarded-Port $server_port;
                {extra}
            }}"""

    def blocks(ports: list[int]) -> str:
        return f"""
        upstream treadle {{
            server 127.0.0.1:{upstream};
            keepalive 4;
        }}
        server {{
            listen 127.0.0.1:{ports[0]};
            {location}
        }}
        server {{
            listen 127.0.0.1:{ports[1]} ssl;
            ssl_certificate {pem};
            ssl_certificate_key {pem};
            {location}
        }}"""

    return blocks


def get(
    port: int, source: str, path: str = "/", tls: ssl.SSLContext | None = None, **headers: str
) -> tuple[dict[str, Any], int]:
    """GET through nginx from ``source``; what the app saw, and the client's own port."""
    conn: http.client.HTTPConnection
    if tls is None:
        conn = http.client.HTTPConnection("localhost", port, timeout=10, source_address=(source, 0))
    else:
        conn = http.client.HTTPSConnection(
            "localhost", port, timeout=10, source_address=(source, 0), context=tls
        )
    try:
        conn.connect()
        assert conn.sock is not None
        client_port: int = conn.sock.getsockname()[1]
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        seen: dict[str, Any] = json.loads(response.read())
    finally:
        conn.close()
    return seen, client_port


@pytest.fixture
def treadle_behind(request: pytest.FixtureRequest) -> Iterator[HttpServer]:
    trust: ProxyTrust = request.param
    limits = Limits(keep_alive_timeout=60.0)  # the pool's connection must outlive the test
    with running(show_environ, proxy=trust, limits=limits, root_path="/app") as server:
        yield server


@pytest.mark.parametrize("treadle_behind", [ProxyTrust.parse("127.0.0.1")], indirect=True)
def test_app_sees_the_real_client_and_scheme_over_one_pooled_connection(
    treadle_behind: HttpServer, tmp_path: Path, ca: trustme.CA
) -> None:
    server = treadle_behind
    tls = ssl.create_default_context()
    ca.configure_trust(tls)
    with nginx(tmp_path, nginx_conf(server.bind_addr[1], tmp_path, ca), ports=2) as (plain, secure):
        first, _ = get(plain, "127.0.0.2", "/app/a", **{"X-Forwarded-For": "6.6.6.6"})
        second, _ = get(secure, "127.0.0.3", "/app/b", tls=tls)
        third, _ = get(plain, "127.0.0.2", "/app/c")
    # A client's own X-Forwarded-For is kept at the left, where it counts for nothing.
    assert first["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 127.0.0.2"
    assert (first["REMOTE_ADDR"], first["wsgi.url_scheme"], first["HTTPS"]) == (
        "127.0.0.2",
        "http",
        None,
    )
    assert first["HTTP_HOST"] == f"localhost:{plain}"
    assert first["SERVER_PORT"] == str(plain)
    assert (first["SCRIPT_NAME"], first["PATH_INFO"]) == ("/app", "/a")
    assert (second["REMOTE_ADDR"], second["wsgi.url_scheme"], second["HTTPS"]) == (
        "127.0.0.3",
        "https",
        "on",
    )
    assert (second["HTTP_HOST"], second["SERVER_PORT"]) == (f"localhost:{secure}", str(secure))
    assert third["REMOTE_ADDR"] == "127.0.0.2"
    # Three clients' requests came over one upstream connection: the forwarded view is
    # decided per request, not per connection.
    stats = server.stats()
    assert stats["requests_served"] == 3
    assert stats["accepted_connections"] == 1


@pytest.mark.parametrize(
    "treadle_behind", [ProxyTrust.parse("127.0.0.1", "forwarded")], indirect=True
)
def test_rfc7239_forwarded_from_nginx_gives_the_client_port_too(
    treadle_behind: HttpServer, tmp_path: Path, ca: trustme.CA
) -> None:
    forwarded = (
        'proxy_set_header Forwarded "for=\\"$remote_addr:$remote_port\\";proto=$scheme;'
        'host=\\"$http_host\\"";'
    )
    conf = nginx_conf(treadle_behind.bind_addr[1], tmp_path, ca, extra=forwarded)
    with nginx(tmp_path, conf, ports=2) as (plain, _):
        seen, client_port = get(plain, "127.0.0.2", "/app/x", **{"X-Forwarded-For": "6.6.6.6"})
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("127.0.0.2", str(client_port))
    assert seen["HTTP_HOST"] == f"localhost:{plain}"


@pytest.mark.parametrize("treadle_behind", [ProxyTrust.parse("10.0.0.0/8")], indirect=True)
def test_an_untrusted_nginx_is_not_believed(
    treadle_behind: HttpServer, tmp_path: Path, ca: trustme.CA
) -> None:
    conf = nginx_conf(treadle_behind.bind_addr[1], tmp_path, ca)
    with nginx(tmp_path, conf, ports=2) as (plain, _):
        seen, _ = get(plain, "127.0.0.2", "/app/x")
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_FOR"] is None
