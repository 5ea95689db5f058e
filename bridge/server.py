"""The HTTP server behind ``coachbridge serve`` and the demo.

waitress is a production WSGI server in pure Python: it needs no C extension
and runs the same on a laptop and a Linux host. For several web processes, run
the app factory under gunicorn instead (see the README).
"""

from __future__ import annotations

import logging

from flask import Flask
from waitress.server import create_server

log = logging.getLogger(__name__)


def make_server(app: Flask, host: str, port: int, threads: int = 8):  # type: ignore[no-untyped-def]
    """Create (bind) the server without serving yet; port 0 picks a free port."""
    return create_server(
        app, host=host, port=port, threads=threads, ident="coachbridge"
    )


def serve_forever(app: Flask, host: str, port: int, threads: int = 8) -> None:
    """Serve until interrupted."""
    server = make_server(app, host, port, threads)
    log.info(
        "listening on http://%s:%s with %d threads",
        host,
        server.effective_port,
        threads,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("stopping on interrupt")
    finally:
        server.close()
