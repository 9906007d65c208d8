"""Servers without the reflection app, for black-box runs: nginx, Node and `python -m http.server`.

Each entry starts a server on 127.0.0.1 serving one static answer, so a run shows what the
harness judges with no app to ask: framing, smuggling and pipelining by counting responses and
by the sentinel request. `serving(name)` yields the command for `target.started` (nginx needs a
configuration written to a temporary directory first). A server whose program is missing raises
`Missing`, which tests turn into a skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from treadle_conformance.target import free_port

INDEX = "<!doctype html><title>static</title><p>a static file\n"
# Timeouts: 8 s, like the reflection-mode servers in `peers`.
NODE_HELLO = """\
const port = Number(process.argv[2]);
const server = require("http").createServer((req, res) => res.end("hello world\\n"));
server.keepAliveTimeout = 8000;
server.headersTimeout = 8000;
server.listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${port}`));
"""
# The main and http sections both nginx configurations share (see `proxies` for the other).
NGINX_HTTP = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 8s;
    client_header_timeout 8s;
    client_body_timeout 8s;
"""
NGINX_CONF = (
    NGINX_HTTP
    + """\
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        location / {{ index index.html; }}
    }}
}}
"""
)
SERVERS = ("nginx", "node", "http.server")


class Missing(Exception):
    """The server's program is not installed here."""


def program(name: str) -> str:
    # Debian installs nginx in sbin, which a non-root PATH may lack.
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/local/sbin", "/usr/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise Missing(f"{name} is not installed (not on PATH)")
    return found


@contextlib.contextmanager
def serving(name: str) -> Iterator[tuple[str, int]]:
    """(command, port) for a black-box server; port 0 when the command carries `{port}`."""
    if name == "http.server":
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "index.html").write_text(INDEX, encoding="utf-8")
            yield (
                f"{shlex.quote(sys.executable)} -m http.server --bind 127.0.0.1 "
                f"--directory {shlex.quote(tmp)} {{port}}",
                0,
            )
        return
    if name == "node":
        node = program("node")
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp, "hello.js")
            script.write_text(NODE_HELLO, encoding="utf-8")
            yield f"{shlex.quote(node)} {shlex.quote(str(script))} {{port}}", 0
        return
    if name == "nginx":
        nginx = program("nginx")
        with tempfile.TemporaryDirectory() as tmp:
            # nginx's workers may run as another user: they must read the files.
            os.chmod(tmp, 0o755)
            Path(tmp, "www").mkdir(mode=0o755)
            Path(tmp, "www", "index.html").write_text(INDEX, encoding="utf-8")
            port = free_port()
            Path(tmp, "nginx.conf").write_text(
                NGINX_CONF.format(dir=tmp, port=port), encoding="utf-8"
            )
            yield f"{shlex.quote(nginx)} -p {shlex.quote(tmp)} -c nginx.conf", port
        return
    raise ValueError(f"unknown black-box server {name!r}; choose from {', '.join(SERVERS)}")
