"""TLS at the edge: the server's ``SSLContext`` and what a TLS connection adds to the environ.

The handshake itself is driven by ``HttpConnection`` in the acceptor's poller, like a request
head: non-blocking, re-armed for reading or writing as OpenSSL asks, bounded by the same
deadline as a head, never on a worker thread. This module only builds the context from the
command line's options and describes a finished connection:

    wsgi.url_scheme = "https", HTTPS = "on", SSL_PROTOCOL, SSL_CIPHER
    and, when the client presented a certificate the context verified (mod_ssl's names):
    SSL_CLIENT_VERIFY = "SUCCESS", SSL_CLIENT_CERT (PEM), SSL_CLIENT_S_DN, SSL_CLIENT_I_DN,
    SSL_CLIENT_M_SERIAL
"""

from __future__ import annotations

import ssl
from typing import Literal

ClientCert = Literal["none", "optional", "required"]
_VERIFY = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}

# The first byte of every TLS connection: a handshake record (RFC 8446 §5.1, content type 22).
HANDSHAKE_RECORD = 0x16

PLAIN_HTTP_ON_TLS_PORT = "the plain HTTP request was sent to an HTTPS port"


def server_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    client_cert: ClientCert = "none",
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 at least, ALPN offering http/1.1, optional client certs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile, password)
    if ca_certs:
        context.load_verify_locations(cafile=ca_certs)
    elif client_cert != "none":
        raise ValueError("client certificates need the CA certificates to verify them")
    context.verify_mode = _VERIFY[client_cert]
    if ciphers:
        context.set_ciphers(ciphers)
    context.set_alpn_protocols(["http/1.1"])
    return context


_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
}


def _dn(name: object) -> str:
    """``getpeercert()``'s nested tuples as an RFC 4514 string (most specific first)."""
    if not isinstance(name, tuple):
        return ""
    parts = [
        f"{_SHORT_NAMES.get(key, key)}={value}"
        for rdn in name
        if isinstance(rdn, tuple)
        for key, value in rdn
    ]
    return ",".join(reversed(parts))


def connection_environ(sock: ssl.SSLSocket) -> dict[str, str]:
    """What a finished TLS connection adds to every request's environ."""
    env = {"wsgi.url_scheme": "https", "HTTPS": "on"}
    env["SSL_PROTOCOL"] = sock.version() or ""
    cipher = sock.cipher()
    if cipher:
        env["SSL_CIPHER"] = cipher[0]
    der = sock.getpeercert(binary_form=True)
    if der:
        info = sock.getpeercert()
        env["SSL_CLIENT_VERIFY"] = "SUCCESS"
        env["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(der)
        if info:
            env["SSL_CLIENT_S_DN"] = _dn(info.get("subject"))
            env["SSL_CLIENT_I_DN"] = _dn(info.get("issuer"))
            serial = info.get("serialNumber")
            if isinstance(serial, str):
                env["SSL_CLIENT_M_SERIAL"] = serial
    return env
