"""The service's exception hierarchy.

Each error carries an HTTP status and a stable machine-readable code so that the
web layer can turn it into ``{"error": {"code": ..., "message": ...}}`` without
knowing where it was raised.
"""

from __future__ import annotations


class CoachbridgeError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CoachbridgeError):
    """Raised when the configuration file or environment is invalid."""

    code = "invalid_configuration"


class InvalidRequest(CoachbridgeError):
    """Raised when input is malformed or breaks a rule; nothing was changed."""

    status = 400
    code = "invalid_request"


class Unauthorized(CoachbridgeError):
    """Raised when a request is not authenticated."""

    status = 401
    code = "unauthorized"


class NotFound(CoachbridgeError):
    """Raised when an object does not exist or the caller may not see it."""

    status = 404
    code = "not_found"


class Conflict(CoachbridgeError):
    """Raised when a change clashes with the current state (a locked program)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(CoachbridgeError):
    """Raised when a request body exceeds the configured limit."""

    status = 413
    code = "payload_too_large"


class Unavailable(CoachbridgeError):
    """Raised when a database the request needs cannot be reached; retry later."""

    status = 503
    code = "unavailable"
