"""treadle-conformance: raw-socket HTTP/1.1 conformance and smuggling scenarios for any server.

`python -m treadle_conformance --url http://127.0.0.1:8080` tests a running server;
`treadle_conformance.reflect:app` is the WSGI app a target should host for the full catalogue.
"""

__version__ = "0.1.0"
