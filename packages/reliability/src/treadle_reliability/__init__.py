"""treadle-reliability: attacks on a WSGI server with a probe client, side by side."""
