"""Responses a client can check byte for byte, and enough of them pipelined to fill the socket
buffers of a client that does not read (so the rest waits in the server's output buffer)."""

from __future__ import annotations

from treadle.wsgi import Environ, StartResponse

from ._wire import Client

SIZE = 200_000  # one response, within the output buffer's 256 KiB bound


def pattern(name: str, size: int) -> bytes:
    """``size`` bytes of 16-byte lines naming ``name`` and each line's offset: a response with
    a byte lost, doubled or out of place, or another response's bytes, does not compare equal."""
    lines = b"".join(b"%4s%011d\n" % (name[:4].encode(), offset) for offset in range(0, size, 16))
    return lines[:size]


def pattern_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """``/NAME?size=BYTES&pieces=K``: ``pattern(NAME, BYTES)``, in one piece with its length,
    or in K pieces without one (chunked on HTTP/1.1)."""
    query = dict(part.partition("=")[::2] for part in environ["QUERY_STRING"].split("&") if part)
    body = pattern(environ["PATH_INFO"].lstrip("/"), int(query.get("size", "16")))
    pieces = int(query.get("pieces", "1"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if pieces == 1:
        return [body]
    step = -(-len(body) // pieces)
    return [body[i : i + step] for i in range(0, len(body), step)]


def get(name: str, size: int = SIZE, pieces: int = 1, extra: bytes = b"") -> bytes:
    """A request for ``pattern(name, size)``, in ``pieces`` (chunked when more than one)."""
    target = b"/%b?size=%d&pieces=%d" % (name.encode(), size, pieces)
    return b"GET %b HTTP/1.1\r\nHost: t\r\n%b\r\n" % (target, extra)


def _kernel_buffers() -> int:
    """Bytes that cannot all sit in a loopback connection's buffers: 1.5x the largest TCP send
    buffer the kernel grows to (Linux), at least 6 MB."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            largest = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        largest = 0
    return max(6_000_000, largest * 3 // 2)


FILL = _kernel_buffers()


def fillers(size: int = SIZE) -> list[str]:
    """Names of enough responses of ``size`` bytes to fill the socket buffers."""
    return [f"f{n}" for n in range(-(-FILL // size))]


def filling(*requests: bytes, size: int = SIZE) -> bytes:
    """Requests for ``fillers(size)``, then ``requests``: to be sent in one write."""
    return b"".join([*(get(name, size) for name in fillers(size)), *requests])


def read_in_order(client: Client, names: list[str], size: int = SIZE) -> None:
    """Read the responses for ``names``, checking every byte of each."""
    for name in names:
        response = client.read_response()
        assert response.status == 200 and response.body == pattern(name, size), name
