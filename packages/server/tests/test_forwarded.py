"""Trusted proxies: X-Forwarded-* and RFC 7239 Forwarded into the environ, and --root-path."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.forwarded import Forwarded, ProxyTrust, parse_forwarded, resolve
from treadle.server import HttpServer
from treadle.testing import running
from treadle.wsgi import Environ, StartResponse, check_root_path

from ._wire import Client

PEER = "10.0.0.2"  # the proxy, as the socket shows it
TRUST = ProxyTrust.parse("127.0.0.1,::1,10.0.0.0/8")
TRUST_FORWARDED = ProxyTrust.parse("127.0.0.1,::1,10.0.0.0/8", "forwarded")


def environ(**headers: str) -> dict[str, Any]:
    """An environ as the gateway builds it, with ``headers`` as HTTP_* keys."""
    env: dict[str, Any] = {
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "upstream:8000",
        "REMOTE_ADDR": PEER,
        "REMOTE_PORT": "40000",
    }
    env.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return env


def applied(trust: ProxyTrust = TRUST, **headers: str) -> dict[str, Any]:
    env = environ(**headers)
    trust.apply(env)
    return env


# -- trust -------------------------------------------------------------------------------------


def test_parse_allow_ips() -> None:
    trust = ProxyTrust.parse(" 127.0.0.1, 10.1.2.3/8 ,, ::1,fd00::/8 ")
    assert [str(n) for n in trust.networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]
    assert trust.trusts_peer("10.200.0.1") and trust.trusts_peer("fd00::5")
    assert not trust.trusts_peer("11.0.0.1") and not trust.trusts_peer("")
    assert not trust.any_peer and not trust.unix


def test_default_trusts_loopback_only_and_reads_x_forwarded() -> None:
    trust = ProxyTrust()
    assert trust.trusts_peer("127.0.0.1") and trust.trusts_peer("::1")
    assert not trust.trusts_peer("127.0.0.2") and not trust.trusts_peer("192.0.2.1")
    assert trust.headers == "x-forwarded" and trust.reads_headers


def test_star_trusts_any_peer_and_unix_trusts_unix_socket_peers() -> None:
    assert ProxyTrust.parse("*").trusts_peer("192.0.2.1")
    assert ProxyTrust.parse("*").trusts_peer("")
    unix = ProxyTrust.parse("unix:")
    assert unix.trusts_peer("") and not unix.trusts_peer("127.0.0.1")


def test_ipv4_mapped_peer_is_judged_as_ipv4() -> None:
    assert TRUST.trusts_peer("::ffff:10.1.1.1")


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.0/33", "1.2.3", "unix", "**"])
def test_bad_allow_ips_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        ProxyTrust.parse(f"127.0.0.1,{bad}")


def test_bad_header_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="proxy headers"):
        ProxyTrust.parse("127.0.0.1", "x-real-ip")


# -- X-Forwarded-For ---------------------------------------------------------------------------


def test_xff_from_a_trusted_peer_gives_the_client() -> None:
    env = applied(x_forwarded_for="203.0.113.7")
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert env["REMOTE_PORT"] == "0"  # the proxy named no port


def test_xff_rightmost_untrusted_hop_wins_so_a_client_cannot_prepend_a_fake() -> None:
    env = applied(x_forwarded_for="6.6.6.6, 203.0.113.7, 10.0.0.1")
    assert env["REMOTE_ADDR"] == "203.0.113.7"


def test_xff_repeated_headers_read_as_one_list() -> None:
    # The gateway joins repeated fields with ", ", as RFC 9110 §5.3 allows.
    assert applied(x_forwarded_for="6.6.6.6, 203.0.113.7")["REMOTE_ADDR"] == "203.0.113.7"


def test_xff_all_hops_trusted_gives_the_leftmost() -> None:
    assert applied(x_forwarded_for="10.0.0.9, 10.0.0.1")["REMOTE_ADDR"] == "10.0.0.9"


def test_xff_with_star_the_hops_are_not_trusted_only_the_peer() -> None:
    """``*`` says any peer may be the proxy, not that every address in the list is one:
    the rightmost hop is the client, so a client still cannot prepend a fake."""
    env = applied(ProxyTrust.parse("*"), x_forwarded_for="6.6.6.6, 203.0.113.7")
    assert env["REMOTE_ADDR"] == "203.0.113.7"


@pytest.mark.parametrize(
    "value, addr, port",
    [
        ("203.0.113.7:5678", "203.0.113.7", "5678"),
        ("2001:DB8::1", "2001:db8::1", "0"),
        ("[2001:db8::1]", "2001:db8::1", "0"),
        ("[2001:db8::1]:443", "2001:db8::1", "443"),
        (" 203.0.113.7 ", "203.0.113.7", "0"),
    ],
)
def test_xff_address_forms(value: str, addr: str, port: str) -> None:
    env = applied(x_forwarded_for=value)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == (addr, port)


@pytest.mark.parametrize(
    "value",
    [
        "unknown",
        "203.0.113.7, garbage",
        "203.0.113.7,",
        "300.1.1.1",
        "203.0.113.7:0",
        "203.0.113.7:99999",
        "[203.0.113.7]",
        "2001:db8::1:80]",
        "[2001:db8::1]x",
        "fe80::1%eth0",
        "",
    ],
)
def test_xff_malformed_rightmost_hops_are_ignored(value: str) -> None:
    env = applied(x_forwarded_for=value)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == (PEER, "40000")


def test_xff_garbage_left_of_the_client_does_not_matter() -> None:
    assert applied(x_forwarded_for="<script>, 203.0.113.7")["REMOTE_ADDR"] == "203.0.113.7"


def test_xff_mapped_ipv4_hop_is_judged_as_ipv4() -> None:
    env = applied(x_forwarded_for="203.0.113.7, ::ffff:10.0.0.1")
    assert env["REMOTE_ADDR"] == "203.0.113.7"


# -- X-Forwarded-Proto, -Host, -Port -----------------------------------------------------------


def test_xfp_https_sets_scheme_https_and_the_default_port() -> None:
    env = applied(x_forwarded_proto="https")
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert env["SERVER_PORT"] == "443"
    assert env["HTTP_HOST"] == "upstream:8000"  # no forwarded host: the request's stays


def test_xfp_is_case_insensitive_and_the_rightmost_value_counts() -> None:
    assert applied(x_forwarded_proto="HTTPS")["wsgi.url_scheme"] == "https"
    assert applied(x_forwarded_proto="https, http")["wsgi.url_scheme"] == "http"


def test_xfp_http_on_a_tls_connection_clears_https() -> None:
    env = environ(x_forwarded_proto="http")
    env.update({"wsgi.url_scheme": "https", "HTTPS": "on"})
    TRUST.apply(env)
    assert env["wsgi.url_scheme"] == "http" and "HTTPS" not in env
    assert env["SERVER_PORT"] == "80"


@pytest.mark.parametrize("value", ["ftp", "", "https://", "ht tp"])
def test_xfp_other_values_are_ignored(value: str) -> None:
    env = applied(x_forwarded_proto=value)
    assert env["wsgi.url_scheme"] == "http" and "HTTPS" not in env
    assert env["SERVER_PORT"] == "8000"


def test_xfh_sets_host_and_server_name() -> None:
    env = applied(x_forwarded_host="example.com")
    assert env["HTTP_HOST"] == "example.com"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "8000"


def test_xfh_with_port_sets_server_port() -> None:
    env = applied(x_forwarded_host="example.com:8443", x_forwarded_proto="https")
    assert (env["HTTP_HOST"], env["SERVER_NAME"]) == ("example.com:8443", "example.com")
    assert env["SERVER_PORT"] == "8443"


def test_xf_port_is_added_to_a_host_without_one_unless_it_is_the_default() -> None:
    """PEP 3333's URL reconstruction reads HTTP_HOST alone when it is there."""
    env = applied(
        x_forwarded_host="example.com", x_forwarded_proto="https", x_forwarded_port="8443"
    )
    assert (env["HTTP_HOST"], env["SERVER_PORT"]) == ("example.com:8443", "8443")
    env = applied(x_forwarded_host="example.com", x_forwarded_proto="https", x_forwarded_port="443")
    assert (env["HTTP_HOST"], env["SERVER_PORT"]) == ("example.com", "443")


def test_xf_port_alone_sets_server_port() -> None:
    env = applied(x_forwarded_port="9000")
    assert env["SERVER_PORT"] == "9000" and env["HTTP_HOST"] == "upstream:8000"


def test_xfh_ipv6_literal() -> None:
    env = applied(x_forwarded_host="[2001:db8::1]:8080")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("[2001:db8::1]", "8080")


@pytest.mark.parametrize(
    "host", ["exa mple.com", "a/b", "[zz::1]", "[1.2.3.4]", "x:99999", "x:", "@x", "x\r\ny"]
)
def test_xfh_invalid_hosts_are_ignored(host: str) -> None:
    env = applied(x_forwarded_host=host)
    assert env["HTTP_HOST"] == "upstream:8000" and env["SERVER_NAME"] == "127.0.0.1"


@pytest.mark.parametrize("port", ["0", "70000", "http", "-1", "8o"])
def test_xf_port_invalid_values_are_ignored(port: str) -> None:
    assert applied(x_forwarded_port=port)["SERVER_PORT"] == "8000"


# -- untrusted peers and other modes -----------------------------------------------------------


def test_untrusted_peer_changes_nothing_and_its_headers_are_dropped() -> None:
    headers = {
        "x_forwarded_for": "6.6.6.6",
        "x_forwarded_proto": "https",
        "x_forwarded_host": "evil.example",
        "x_forwarded_port": "443",
    }
    env = environ(**headers)
    env["REMOTE_ADDR"] = "192.0.2.50"
    expected = {k: v for k, v in env.items() if not k.startswith("HTTP_X_FORWARDED")}
    TRUST.apply(env)
    assert env == expected


def test_mode_forwarded_ignores_x_forwarded_and_the_reverse() -> None:
    assert applied(TRUST_FORWARDED, x_forwarded_for="203.0.113.7")["REMOTE_ADDR"] == PEER
    assert applied(TRUST, forwarded="for=203.0.113.7")["REMOTE_ADDR"] == PEER


def test_mode_none_reads_nothing() -> None:
    trust = ProxyTrust.parse("10.0.0.0/8", "none")
    assert resolve(trust, environ(x_forwarded_for="203.0.113.7")) is None


def test_resolve_is_pure_and_gives_none_when_nothing_is_usable() -> None:
    assert resolve(TRUST, {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}) == Forwarded("203.0.113.7")
    assert resolve(TRUST, {"HTTP_X_FORWARDED_PROTO": "gopher"}) is None


# -- RFC 7239 Forwarded ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ('for="_gazonk"', [{"for": "_gazonk"}]),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        ),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        ("for = 1", None),
        (r'host="a\"b"', [{"host": 'a"b'}]),
        (" , for=1.2.3.4 ; proto=https ,", [{"for": "1.2.3.4", "proto": "https"}]),
    ],
)
def test_rfc7239_4_syntax_examples(value: str, expected: list[dict[str, str]] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            parse_forwarded(value)
    else:
        assert parse_forwarded(value) == expected


def test_forwarded_client_hop_gives_its_own_proto_and_host() -> None:
    """Each proxy appends the element describing its own client: the chosen element's proto
    and host are what the edge proxy received."""
    env = applied(
        TRUST_FORWARDED,
        forwarded="for=6.6.6.6;proto=http;host=evil, "
        "for=203.0.113.7;proto=https;host=example.com, for=10.0.0.1;proto=http;host=internal",
    )
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert env["wsgi.url_scheme"] == "https" and env["HTTPS"] == "on"
    assert env["HTTP_HOST"] == "example.com" and env["SERVER_PORT"] == "443"


def test_forwarded_ipv6_with_port() -> None:
    env = applied(TRUST_FORWARDED, forwarded='for="[2001:db8:cafe::17]:4711"')
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("2001:db8:cafe::17", "4711")


@pytest.mark.parametrize("node", ["unknown", '"_hidden"', '"unknown:_port"', '"_x:80"'])
def test_forwarded_unknown_or_obfuscated_client_keeps_the_address(node: str) -> None:
    env = applied(TRUST_FORWARDED, forwarded=f"for={node};proto=https")
    assert env["REMOTE_ADDR"] == PEER
    assert env["wsgi.url_scheme"] == "https"


def test_forwarded_obfuscated_port_is_no_port() -> None:
    env = applied(TRUST_FORWARDED, forwarded='for="203.0.113.7:_abc"')
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "0")


def test_forwarded_element_without_for_still_gives_proto_and_host() -> None:
    env = applied(TRUST_FORWARDED, forwarded="proto=https;host=example.com")
    assert env["REMOTE_ADDR"] == PEER
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "example.com")


@pytest.mark.parametrize(
    "value",
    [
        "for=1.2.3.4;for=5.6.7.8",  # RFC 7239 §4: a parameter at most once per element
        "for=2001:db8::1",  # an IPv6 node must be quoted and bracketed
        'for="2001:db8::1"',
        'for="[2001:db8::1"',
        'for="[1.2.3.4]"',
        "for=300.1.1.1",
        'for="1.2.3.4:99999"',
        'for="1.2.3.4',
        "for=1.2.3.4 proto=https",
        "for",
        "=1.2.3.4",
    ],
)
def test_forwarded_malformed_is_ignored_whole(value: str) -> None:
    env = applied(TRUST_FORWARDED, forwarded=value + ";proto=https")
    assert env["REMOTE_ADDR"] == PEER and env["wsgi.url_scheme"] == "http"


def test_forwarded_untrusted_peer_is_dropped() -> None:
    env = environ(forwarded="for=6.6.6.6")
    env["REMOTE_ADDR"] = "192.0.2.50"
    TRUST_FORWARDED.apply(env)
    assert env["REMOTE_ADDR"] == "192.0.2.50" and "HTTP_FORWARDED" not in env


# -- properties --------------------------------------------------------------------------------

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)
field_texts = st.one_of(
    latin1,
    st.lists(
        st.sampled_from(
            ["203.0.113.7", "10.0.0.1", "[::1]:80", "unknown", "for=", '"', ";", ",", " ", "https"]
        ),
        max_size=8,
    ).map("".join),
)


@settings(max_examples=400)
@given(
    st.sampled_from([TRUST, TRUST_FORWARDED, ProxyTrust.parse("*")]),
    st.fixed_dictionaries(
        {},
        optional={
            key: field_texts
            for key in (
                *(f"x_forwarded_{k}" for k in ("for", "proto", "host", "port")),
                "forwarded",
            )
        },
    ),
)
def test_any_header_value_never_raises_and_gives_a_sane_environ(
    trust: ProxyTrust, headers: dict[str, str]
) -> None:
    env = applied(trust, **headers)
    ipaddress.ip_address(env["REMOTE_ADDR"])
    assert env["REMOTE_PORT"].isdigit() and 0 <= int(env["REMOTE_PORT"]) <= 65535
    assert env["wsgi.url_scheme"] in ("http", "https")
    assert ("HTTPS" in env) == (env["wsgi.url_scheme"] == "https")
    assert env["SERVER_PORT"].isdigit()
    assert all(ch.isprintable() and ch != " " for ch in env["HTTP_HOST"])


@settings(max_examples=300)
@given(latin1)
def test_a_client_cannot_prepend_its_way_to_another_address(prefix: str) -> None:
    """Whatever a client puts at the left, the hop a trusted proxy appended decides; with
    Forwarded, garbage can at worst make the header ignored, never name another client."""
    xff = applied(x_forwarded_for=prefix + ", 203.0.113.7, 10.0.0.1")
    assert xff["REMOTE_ADDR"] == "203.0.113.7"
    fwd = applied(TRUST_FORWARDED, forwarded=prefix + ", for=203.0.113.7, for=10.0.0.1")
    assert fwd["REMOTE_ADDR"] in ("203.0.113.7", PEER)


# -- root path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given_path, expected", [("", ""), ("/", ""), ("/app", "/app"), ("/app/", "/app")]
)
def test_root_path_is_normalised(given_path: str, expected: str) -> None:
    assert check_root_path(given_path) == expected


@pytest.mark.parametrize("bad", ["app", "/a?b", "/a#b", "/a\nb"])
def test_root_path_must_be_a_plain_absolute_path(bad: str) -> None:
    with pytest.raises(ValueError, match="root path"):
        check_root_path(bad)


# -- through a real server ---------------------------------------------------------------------

SHOWN = (
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "wsgi.url_scheme",
    "HTTPS",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "HTTP_X_FORWARDED_FOR",
)


def show_environ(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({key: environ.get(key) for key in SHOWN}).encode()]


def get(server: HttpServer, head: str, source: str = "127.0.0.1") -> dict[str, Any]:
    sock = socket.create_connection(server.bind_addr, timeout=5, source_address=(source, 0))
    with sock:
        client = Client(sock)
        client.send(f"GET {head}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        response = client.read_response()
        # The server closes after logging the request: the end of the stream means logged.
        assert client.file.read() == b""
    assert response.status == 200, response
    seen: dict[str, Any] = json.loads(response.body)
    return seen


@pytest.fixture
def behind_proxy() -> Iterator[HttpServer]:
    with running(show_environ, proxy=ProxyTrust.parse("127.0.0.1")) as server:
        yield server


def test_server_trusted_peer_environ(behind_proxy: HttpServer) -> None:
    seen = get(
        behind_proxy,
        "/x HTTP/1.1\r\nHost: upstream\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n"
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com",
    )
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert (seen["wsgi.url_scheme"], seen["HTTPS"]) == ("https", "on")
    assert (seen["HTTP_HOST"], seen["SERVER_PORT"]) == ("example.com", "443")
    assert seen["HTTP_X_FORWARDED_FOR"] == "6.6.6.6, 203.0.113.7"  # kept for the app


def test_server_untrusted_peer_environ(behind_proxy: HttpServer) -> None:
    seen = get(
        behind_proxy,
        "/x HTTP/1.1\r\nHost: upstream\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https",
        source="127.0.0.2",
    )
    assert seen["REMOTE_ADDR"] == "127.0.0.2" and seen["wsgi.url_scheme"] == "http"
    assert seen["HTTP_X_FORWARDED_FOR"] is None  # dropped: no middleware may believe it


def test_server_malformed_forwarded_headers_are_not_an_error(behind_proxy: HttpServer) -> None:
    seen = get(
        behind_proxy,
        "/x HTTP/1.1\r\nHost: upstream\r\nX-Forwarded-For: \xff\xfe, [::1\r\n"
        "X-Forwarded-Proto: \x80\r\nX-Forwarded-Port: 99999999999999999999",
    )
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["wsgi.url_scheme"] == "http"


def test_server_without_proxy_trust_reads_no_forwarded_header() -> None:
    with running(show_environ) as server:
        seen = get(server, "/x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7")
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"


@pytest.mark.parametrize(
    "target, script_name, path_info",
    [
        ("/app/x/y", "/app", "/x/y"),
        ("/app", "/app", ""),
        ("/app/", "/app", "/"),
        ("/apple", "/app", "/apple"),  # whole segments only
        ("/other", "/app", "/other"),  # the proxy stripped the prefix already
        ("/ap%70/x", "/app", "/x"),  # compared decoded, as PATH_INFO is
    ],
)
def test_server_root_path(target: str, script_name: str, path_info: str) -> None:
    with running(show_environ, root_path="/app/") as server:
        seen = get(server, f"{target} HTTP/1.1\r\nHost: h")
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == (script_name, path_info)


def test_access_log_names_the_forwarded_client(
    behind_proxy: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="treadle.access")
    get(behind_proxy, "/logged HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7")
    get(behind_proxy, "/direct HTTP/1.1\r\nHost: h", source="127.0.0.2")
    lines = [r.getMessage() for r in caplog.records if r.name == "treadle.access"]
    assert [line.split(" ", 1)[0] for line in lines] == ["203.0.113.7", "127.0.0.2"]
