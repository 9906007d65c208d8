"""The errors a request can end in, each carrying the HTTP status it is answered with.

    HttpError                      any request the server refuses; ``status`` and ``reason``
    ├── BadRequest                 400: grammar or framing broken (RFC 9112 §2-§7)
    ├── RequestTimeout             408: the head did not arrive within its deadline
    ├── ContentTooLarge            413: the body is over the configured limit
    ├── UriTooLong                 414: the request line is over its limit
    ├── ExpectationFailed          417: an Expect other than 100-continue
    ├── FieldsTooLarge             431: a field line, the head, or the field count is over its limit
    ├── NotImplementedHttp         501: an unknown transfer coding, or CONNECT
    ├── ServiceUnavailable         503: the server cannot take the request now (a body it
    │                              cannot store); with Retry-After
    └── VersionNotSupported        505: an HTTP major version other than 1

``ClientGone`` is raised by the connection's sends when the client cannot be written to.

``close`` is true when the message framing can no longer be trusted, so the connection must be
closed after the error response (RFC 9112 §6.3 and §9.6).
"""

from __future__ import annotations


class ClientGone(Exception):
    """The client stopped reading (reset, broken pipe, or a send stalled past the timeout).
    Not the application's fault: the connection is closed without an error response."""


class HttpError(Exception):
    status = 500
    reason = "Internal Server Error"
    close = True
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(HttpError):
    status = 400
    reason = "Bad Request"


class RequestTimeout(HttpError):
    status = 408
    reason = "Request Timeout"


class ContentTooLarge(HttpError):
    status = 413
    reason = "Content Too Large"


class UriTooLong(HttpError):
    status = 414
    reason = "URI Too Long"


class ExpectationFailed(HttpError):
    status = 417
    reason = "Expectation Failed"


class FieldsTooLarge(HttpError):
    status = 431
    reason = "Request Header Fields Too Large"


class NotImplementedHttp(HttpError):
    status = 501
    reason = "Not Implemented"


class ServiceUnavailable(HttpError):
    status = 503
    reason = "Service Unavailable"
    headers = (("Retry-After", "1"),)


class VersionNotSupported(HttpError):
    status = 505
    reason = "HTTP Version Not Supported"
