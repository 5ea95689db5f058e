"""The Flask application factory.

``create_app()`` with no argument reads the configuration named by
``COACHBRIDGE_CONFIG``, so the factory runs as it is under gunicorn:
``gunicorn 'bridge.app:create_app()'``.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bridge.config import Config, load_config
from bridge.errors import CoachbridgeError
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

EXTENSION_KEY = "coachbridge"


def create_app(config: Config | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app around a runtime (created from ``config`` if not given)."""
    if runtime is None:
        runtime = Runtime.from_config(config or load_config())

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = runtime.config.webhooks.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = runtime

    _register_blueprints(app)
    _register_error_handlers(app)
    return app


def get_runtime(app: Flask) -> Runtime:
    """Return the runtime an app was built with."""
    return app.extensions[EXTENSION_KEY]


def _register_blueprints(app: Flask) -> None:
    from bridge.api_admin import admin_api_blueprint
    from bridge.api_client import api_client_blueprint
    from bridge.health import health_blueprint
    from bridge.openapi import openapi_blueprint
    from bridge.pages_admin import admin_pages_blueprint
    from bridge.pages_client import pages_client_blueprint
    from bridge.webhooks import webhooks_blueprint

    app.register_blueprint(health_blueprint)
    app.register_blueprint(webhooks_blueprint)
    app.register_blueprint(admin_api_blueprint)
    app.register_blueprint(admin_pages_blueprint)
    app.register_blueprint(api_client_blueprint)
    app.register_blueprint(pages_client_blueprint)
    app.register_blueprint(openapi_blueprint)


def error_response(status: int, code: str, message: str):  # type: ignore[no-untyped-def]
    """Build the JSON error body every endpoint uses."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CoachbridgeError)
    def _service_error(error: CoachbridgeError):  # type: ignore[no-untyped-def]
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
        limit = request.max_content_length
        return error_response(
            413,
            "payload_too_large",
            f"request body over the limit of {limit} bytes",
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or "")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error while serving a request")
        return error_response(500, "internal_error", "internal error; see the log")
