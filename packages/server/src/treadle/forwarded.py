"""Who the client is, when a trusted reverse proxy says so (``--proxy-headers``).

Behind nginx or HAProxy the socket's peer is the proxy. The proxy tells the client's address,
the scheme it used and the host and port it asked for in headers: ``X-Forwarded-For``,
``-Proto``, ``-Host``, ``-Port`` (de facto), or RFC 7239 ``Forwarded``. Anyone can send those
headers, so they count only when the peer is a trusted proxy (``--forwarded-allow-ips``:
addresses and networks, ``*`` for any peer, ``unix:`` for Unix-socket peers).

A chain of proxies appends one hop each, so the list reads client, proxy1, proxy2, ... and
only the right end is written by proxies we trust; a client can put anything at the left.
So the client is the **rightmost address that is not a trusted proxy** (hops inside the list
are judged by the addresses and networks only: ``*`` trusts any peer, not every hop). For
``X-Forwarded-Proto``/``-Host``/``-Port`` the rightmost value is taken (the nearest proxy's
word); a ``Forwarded`` element carries the client's hop's own ``proto`` and ``host``.

Nothing changes for an untrusted peer, except that the headers of the chosen kind are removed
from the environ, so that no middleware down the line believes them. A malformed value is
ignored, never an error: a proxy's bad header must not turn a request into a 500.

``resolve(trust, fields)`` is the pure core: header values from a trusted peer ->
``Forwarded`` or None. ``ProxyTrust.apply(env)`` judges the peer (``REMOTE_ADDR``) and writes
the result into a WSGI environ; the gateway calls it only when the server's ``ProxyTrust``
reads headers, so without ``--proxy-headers`` it costs one attribute test per request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HEADER_MODES = ("x-forwarded", "forwarded", "none")
# As gunicorn and uvicorn: a proxy on the same host.
DEFAULT_ALLOW_IPS = "127.0.0.1,::1"

# The environ keys each mode reads (a repeated header arrives joined with ", ").
X_FORWARDED_KEYS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
)
FORWARDED_KEYS = ("HTTP_FORWARDED",)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Trust decisions per peer address, and parsed X-Forwarded-For hops, are cached (parsing an
# address with ipaddress costs microseconds); bounded, since hops are client-chosen.
_CACHE_SIZE = 1024

# RFC 3986 authority, narrowed to what a Host header holds: a DNS-ish name, IPv4, or [IPv6],
# then an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9._~-]*)|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?")
_DIGITS = re.compile(r"[0-9]{1,5}")
# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string (RFC 9110 §5.6).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_OWS = re.compile(r"[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)")
# RFC 7239 §6: obfuscated identifiers, "_" followed by ALPHA / DIGIT / "." / "_" / "-".
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")


class Hop(NamedTuple):
    addr: str  # normalised, as REMOTE_ADDR shows it
    port: int | None
    trusted: bool


class Malformed(ValueError):
    """A forwarded header that does not parse: it is ignored."""


class Forwarded(NamedTuple):
    """What a trusted proxy says about a request; None where it says nothing. (A tuple:
    cheap to build on the path of every forwarded request.)"""

    client_addr: str | None = None
    client_port: int | None = None
    scheme: str | None = None  # "http" or "https"
    host: str | None = None  # a valid Host value: name or address, perhaps ":port"
    port: int | None = None


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """Which peers are trusted proxies, and which headers they speak.

    ``ProxyTrust.parse("10.0.0.0/8,::1", "x-forwarded")`` builds one from the CLI's strings.
    The server also asks it who may send a PROXY protocol header (``trusts_peer``), which is
    why it exists even with ``headers="none"``.
    """

    networks: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("127.0.0.1"),
        ipaddress.ip_network("::1"),
    )
    any_peer: bool = False  # "*": every peer is a trusted proxy
    unix: bool = False  # "unix:": peers on a Unix socket are trusted proxies
    headers: str = "x-forwarded"
    _peers: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)
    _hops: dict[str, Hop | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.headers not in HEADER_MODES:
            raise ValueError(f"proxy headers {self.headers!r}: expected one of {HEADER_MODES}")

    @classmethod
    def parse(
        cls, allow_ips: str | Iterable[str] = DEFAULT_ALLOW_IPS, headers: str = "x-forwarded"
    ) -> ProxyTrust:
        """From ``"127.0.0.1,10.0.0.0/8,::1"``-style text (or a list of such items)."""
        items = allow_ips.split(",") if isinstance(allow_ips, str) else list(allow_ips)
        networks: list[IPNetwork] = []
        any_peer = unix = False
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "*":
                any_peer = True
            elif item == "unix:":
                unix = True
            else:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not an IP address, a network (CIDR), '*' or 'unix:'"
                    ) from None
        return cls(tuple(networks), any_peer, unix, headers)

    @property
    def reads_headers(self) -> bool:
        return self.headers != "none"

    def trusts_peer(self, addr: str) -> bool:
        """Is the socket peer ``addr`` (an IP address, or "" for a Unix socket) a proxy?"""
        trusted = self._peers.get(addr)
        if trusted is None:
            if not addr:
                trusted = self.unix or self.any_peer
            else:
                trusted = self.any_peer or self.trusts_hop(_ip(addr))
            if len(self._peers) >= _CACHE_SIZE:
                self._peers.clear()  # peers are few; a flood of them just loses the cache
            self._peers[addr] = trusted
        return trusted

    def x_forwarded_hop(self, text: str) -> Hop | None:
        """An X-Forwarded-For entry parsed and judged, or None if malformed (cached)."""
        try:
            return self._hops[text]
        except KeyError:
            pass
        try:
            ip, port = _x_forwarded_node(text.strip())
            hop: Hop | None = Hop(str(ip), port, self.trusts_hop(ip))
        except Malformed:
            hop = None
        if len(self._hops) >= _CACHE_SIZE:
            self._hops.clear()
        self._hops[text] = hop
        return hop

    def trusts_hop(self, ip: IPAddress | None) -> bool:
        """Is this address, named in a forwarded header, one of the trusted proxies?"""
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def apply(self, env: MutableMapping[str, Any]) -> None:
        """Rewrite the environ of a request from ``env["REMOTE_ADDR"]`` as its proxy says:
        REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme (and HTTPS), HTTP_HOST, SERVER_NAME and
        SERVER_PORT. From an untrusted peer, drop the headers instead."""
        keys = X_FORWARDED_KEYS if self.headers == "x-forwarded" else FORWARDED_KEYS
        for key in keys:
            if key in env:
                break
        else:
            return  # the common case, and cheap: no forwarded header at all
        if not self.trusts_peer(env["REMOTE_ADDR"]):
            for key in keys:
                env.pop(key, None)
            return
        fwd = resolve(self, env)
        if fwd is not None:
            write_environ(env, fwd)


def resolve(trust: ProxyTrust, fields: Mapping[str, str]) -> Forwarded | None:
    """What the headers in ``fields`` (WSGI environ keys, e.g. ``HTTP_X_FORWARDED_FOR``)
    say, read as ``trust.headers`` asks, assuming the peer is trusted. None if nothing
    usable."""
    fwd: Forwarded | None
    if trust.headers == "x-forwarded":
        fwd = _from_x_forwarded(trust, fields)
    elif trust.headers == "forwarded":
        fwd = _from_forwarded(trust, fields.get("HTTP_FORWARDED"))
    else:
        return None
    if fwd is None or fwd.count(None) == len(fwd):
        return None
    return fwd


def write_environ(env: MutableMapping[str, Any], fwd: Forwarded) -> None:
    if fwd.client_addr is not None:
        env["REMOTE_ADDR"] = fwd.client_addr
        # A proxy that names no port leaves it unknown: 0, as nginx's realip and uvicorn.
        env["REMOTE_PORT"] = str(fwd.client_port or 0)
    if fwd.scheme is not None:
        env["wsgi.url_scheme"] = fwd.scheme
        if fwd.scheme == "https":
            env["HTTPS"] = "on"
        else:
            env.pop("HTTPS", None)
    port = fwd.port
    if fwd.host is not None:
        name, host_port = _split_host(fwd.host)
        env["SERVER_NAME"] = name
        if port is None:
            port = host_port
        scheme = env["wsgi.url_scheme"]
        if host_port is None and port is not None and port != _DEFAULT_PORTS.get(scheme):
            # PEP 3333 rebuilds URLs from HTTP_HOST alone when it is there.
            env["HTTP_HOST"] = f"{fwd.host}:{port}"
        else:
            env["HTTP_HOST"] = fwd.host
    if port is None and fwd.scheme is not None:
        port = _DEFAULT_PORTS[fwd.scheme]
    if port is not None:
        env["SERVER_PORT"] = str(port)


# -- X-Forwarded-* ------------------------------------------------------------------------------


def _from_x_forwarded(trust: ProxyTrust, fields: Mapping[str, str]) -> Forwarded:
    chain = fields.get("HTTP_X_FORWARDED_FOR")
    client_addr, client_port = (None, None) if chain is None else _client_from_chain(trust, chain)
    return Forwarded(
        client_addr,
        client_port,
        _scheme(_last(fields.get("HTTP_X_FORWARDED_PROTO"))),
        _host(_last(fields.get("HTTP_X_FORWARDED_HOST"))),
        _port(_last(fields.get("HTTP_X_FORWARDED_PORT"))),
    )


def _client_from_chain(trust: ProxyTrust, chain: str) -> tuple[str | None, int | None]:
    """The rightmost hop that is not a trusted proxy (the leftmost if all are). A malformed
    hop on the way there spoils the chain: (None, None)."""
    hop = None
    for text in reversed(chain.split(",")):
        hop = trust.x_forwarded_hop(text)
        if hop is None:
            return None, None
        if not hop.trusted:
            break
    assert hop is not None  # split() gives at least one item
    return hop.addr, hop.port


def _x_forwarded_node(text: str) -> tuple[IPAddress, int | None]:
    """``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]`` or ``[...]:5678``."""
    port = None
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep:
            raise Malformed(text)
        if rest:
            if rest[0] != ":":
                raise Malformed(text)
            port = _port(rest[1:])
            if port is None:
                raise Malformed(text)
        ip = _ip(addr)
        if not isinstance(ip, ipaddress.IPv6Address):
            raise Malformed(text)
    elif text.count(":") == 1:
        addr, _, number = text.partition(":")
        port = _port(number)
        ip = _ip(addr)
        if port is None or not isinstance(ip, ipaddress.IPv4Address):
            raise Malformed(text)
    else:
        ip = _ip(text)
    if ip is None:
        raise Malformed(text)
    return ip, port


# -- RFC 7239 Forwarded -------------------------------------------------------------------------


def _from_forwarded(trust: ProxyTrust, value: str | None) -> Forwarded | None:
    if value is None:
        return None
    try:
        elements = parse_forwarded(value)
        chosen: dict[str, str] = {}
        client: tuple[IPAddress | None, int | None] = (None, None)
        for element in reversed(elements):
            chosen = element
            client = _forwarded_node(element["for"]) if "for" in element else (None, None)
            if not trust.trusts_hop(client[0]):
                break
    except Malformed:
        return None
    addr, port = client
    return Forwarded(
        None if addr is None else str(addr),
        port,
        _scheme(chosen.get("proto")),
        _host(chosen.get("host")),
    )


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 §4: ``Forwarded = 1#forwarded-element``, each element ``pair *(";" pair)``,
    parameter names case-insensitive, each at most once per element; values unquoted."""
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    pos, end = 0, len(value)
    while True:
        match = _PAIR.match(value, pos)
        if match is not None:
            name = match.group(1).lower()
            if name in element:
                raise Malformed(f"{name} twice in one element")
            raw = match.group(2)
            element[name] = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw[0] == '"' else raw
            pos = match.end()
        else:
            ows = _OWS.match(value, pos)
            assert ows is not None  # it matches the empty string
            pos = ows.end()
        if pos == end:
            break
        if value[pos] == ",":
            if element:  # empty list elements are allowed and skipped (RFC 9110 §5.6.1)
                elements.append(element)
            element = {}
        elif value[pos] != ";":
            raise Malformed(f"unexpected {value[pos]!r} at {pos}")
        pos += 1
    if element:
        elements.append(element)
    return elements


def _forwarded_node(text: str) -> tuple[IPAddress | None, int | None]:
    """RFC 7239 §6: node = nodename [":" node-port]; nodename = IPv4address / "[" IPv6address
    "]" / "unknown" / obfnode. An unknown or obfuscated node gives no address."""
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep:
            raise Malformed(text)
        ip = _ip(addr)
        if not isinstance(ip, ipaddress.IPv6Address):
            raise Malformed(text)
        node: IPAddress | None = ip
    else:
        name, sep, number = text.partition(":")
        rest = sep + number
        if name == "unknown" or _OBFUSCATED.fullmatch(name):
            node = None
        else:
            ip = _ip(name)
            if not isinstance(ip, ipaddress.IPv4Address):
                raise Malformed(text)  # an IPv6 address must be bracketed (and quoted)
            node = ip
    port = None
    if rest:
        if rest[0] != ":":
            raise Malformed(text)
        if not _OBFUSCATED.fullmatch(rest[1:]):
            port = _port(rest[1:])
            if port is None:
                raise Malformed(text)
    return node, port


# -- values ---------------------------------------------------------------------------------------


def _ip(text: str) -> IPAddress | None:
    if "%" in text:  # a zone index names an interface of the proxy, not an address
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _last(value: str | None) -> str | None:
    if value is None:
        return None
    return value.rpartition(",")[2].strip()


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.strip().lower()
    return scheme if scheme in _DEFAULT_PORTS else None


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    port = match.group(1)
    if port is not None and int(port) > 65535:
        return None
    host = match.group(0)
    if host.startswith("["):
        literal = _ip(host[1 : host.index("]")])
        if not isinstance(literal, ipaddress.IPv6Address):
            return None
    return host


def _port(value: str | None) -> int | None:
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return None
    port = int(value)
    return port if 0 < port <= 65535 else None


def _split_host(host: str) -> tuple[str, int | None]:
    name, port = host, None
    if host.startswith("["):
        end = host.index("]")
        name, rest = host[: end + 1], host[end + 1 :]
        if rest:
            port = int(rest[1:])
    elif ":" in host:
        name, number = host.rsplit(":", 1)
        port = int(number)
    return name, port
