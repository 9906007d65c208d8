"""Real reverse proxies for proxy mode: nginx (with an upstream keep-alive pool) and HAProxy.

`serving(name, backend_port)` writes the proxy's configuration into a temporary directory and
yields the command that runs it in the foreground, as a child of the harness, and the port it
listens on; `target.started` starts it and waits for the port. Both forward every request to
the recording backend (or, in proxy + origin mode, the origin server) on `backend_port` over
HTTP/1.1 and keep upstream connections open, so a request smuggled into a pooled connection
would reach the backend behind another client's. Both pass the client's Host on and add
X-Forwarded-For, as a reverse proxy in front of an application usually does.
Timeouts are 8 s, like the origin servers in `peers`. A missing program raises
`blackbox.Missing`, which tests turn into a skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path

from treadle_conformance.blackbox import NGINX_HTTP, program
from treadle_conformance.target import free_port

NGINX_PROXY_CONF = (
    NGINX_HTTP
    + """\
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{port};
        # $host when a request names none (HTTP/1.0 without Host).
        server_name localhost;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 8s;
        }}
    }}
}}
"""
)
HAPROXY_CONF = """\
global
    maxconn 256
defaults
    mode http
    option http-keep-alive
    option forwardfor
    timeout connect 5s
    timeout client 8s
    timeout server 8s
    timeout http-request 8s
    timeout http-keep-alive 8s
frontend harness
    bind 127.0.0.1:{port}
    default_backend recorder
backend recorder
    http-reuse always
    server recorder 127.0.0.1:{backend}
"""
PROXIES = ("nginx-proxy", "haproxy")
# --proxy NAME on the command line
NAMES = {"nginx": "nginx-proxy", "haproxy": "haproxy"}


@contextlib.contextmanager
def serving(name: str, backend_port: int) -> Iterator[tuple[str, int]]:
    """(command, port) for a proxy forwarding to 127.0.0.1:backend_port."""
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; choose from {', '.join(PROXIES)}")
    binary = program("nginx" if name == "nginx-proxy" else "haproxy")
    with tempfile.TemporaryDirectory() as tmp:
        # nginx's workers may run as another user: they must read the directory.
        os.chmod(tmp, 0o755)
        port = free_port()
        if name == "nginx-proxy":
            conf = NGINX_PROXY_CONF.format(dir=tmp, port=port, backend=backend_port)
            Path(tmp, "nginx.conf").write_text(conf, encoding="utf-8")
            yield f"{shlex.quote(binary)} -p {shlex.quote(tmp)} -c nginx.conf", port
            return
        conf = HAPROXY_CONF.format(port=port, backend=backend_port)
        path = Path(tmp, "haproxy.cfg")
        path.write_text(conf, encoding="utf-8")
        yield f"{shlex.quote(binary)} -db -f {shlex.quote(str(path))}", port
