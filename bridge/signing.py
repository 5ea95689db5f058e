"""Signed requests from the WordPress plugin: HMAC-SHA256 over a canonical string.

The plugin signs every request to ``/api/v1/`` and ``/pages/`` with a secret it
shares with bridge. The canonical string is seven lines joined by ``\\n``:

    METHOD
    path
    canonical query
    timestamp (unix seconds)
    request id
    acting WordPress user id (0 for none)
    lowercase hex SHA-256 of the body

The signature travels as ``X-Coachbridge-Signature: v1=<lowercase hex>``. The
canonical query is built from the decoded query pairs, so a client or proxy that
re-encodes the URL does not break the signature. docs/signing.md describes the
scheme in full, and the PHP client in ``wp_plugin_stub/`` implements the same steps.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn, TypeVar
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

import sqlalchemy as sa
from flask import Blueprint, Request, current_app, g
from flask import request as current_request
from sqlalchemy.orm import Session

from bridge.errors import Unauthorized
from bridge.models import SeenRequest
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1"
TIMESTAMP_HEADER = "X-Coachbridge-Timestamp"
REQUEST_ID_HEADER = "X-Coachbridge-Request-Id"
USER_HEADER = "X-Coachbridge-User"
SIGNATURE_HEADER = "X-Coachbridge-Signature"
REQUIRED_HEADERS = (TIMESTAMP_HEADER, REQUEST_ID_HEADER, USER_HEADER, SIGNATURE_HEADER)

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")
USER_ID_PATTERN = re.compile(r"0|[1-9][0-9]{0,19}")
SIGNATURE_PATTERN = re.compile(rf"{SIGNATURE_VERSION}=([0-9a-f]{{64}})")

# Rows of seen request ids are deleted on about one verification in this many,
# once their timestamp is so old that a replay would fail the clock check anyway.
PRUNE_ONE_IN = 16

# The flask.g attribute that stores the acting user id of a verified request.
USER_ID_ATTRIBUTE = "coachbridge_user_id"

QueryInput = str | bytes | Mapping[str, str] | Iterable[tuple[str, str]] | None
ViewFunction = TypeVar("ViewFunction", bound=Callable[..., object])


def sign_request(
    secret: str,
    method: str,
    path: str,
    query: QueryInput,
    body: bytes | str,
    user_id: int,
    timestamp: int | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """Sign a request and return the four ``X-Coachbridge-*`` headers to send.

    ``query`` is the raw query string or the query parameters as a mapping or
    pairs. ``timestamp`` defaults to the current unix time and ``request_id`` to
    a new random id of 32 URL-safe characters.
    """
    if timestamp is None:
        timestamp = int(time.time())
    if request_id is None:
        request_id = secrets.token_urlsafe(24)
    if not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise ValueError(
            f"invalid request id {request_id!r}: expected 16 to 64 characters "
            "from A-Z, a-z, 0-9, '-' and '_'"
        )
    canonical = canonical_string(
        method, path, canonical_query(query), timestamp, request_id, user_id, body
    )
    return {
        TIMESTAMP_HEADER: str(timestamp),
        REQUEST_ID_HEADER: request_id,
        USER_HEADER: str(user_id),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={compute_signature(secret, canonical)}",
    }


def canonical_string(
    method: str,
    path: str,
    query: str,
    timestamp: int,
    request_id: str,
    user_id: int,
    body: bytes | str,
) -> str:
    """Join the signed parts of a request. ``query`` must already be canonical."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "\n".join(
        [
            method.upper(),
            path,
            query,
            str(timestamp),
            request_id,
            str(user_id),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def compute_signature(secret: str, canonical: str) -> str:
    """Compute the lowercase hex HMAC-SHA256 of a canonical string."""
    digest = hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()


def canonical_query(query: QueryInput) -> str:
    """Build the canonical query: encoded ``key=value`` pairs, sorted, joined by &.

    A raw query string is split on ``&`` and each part on its first ``=``. Keys
    and values are percent-decoded (``+`` is a space) and then encoded again as
    RFC 3986 requires, which leaves only ``A-Z a-z 0-9 - . _ ~`` unencoded. Pairs
    are sorted by key, then by value. Empty parts are dropped, and a part
    without ``=`` counts as a key with an empty value.
    """
    if query is None:
        return ""
    if isinstance(query, str | bytes):
        raw = query.encode("utf-8") if isinstance(query, str) else query
        pairs = _parse_query(raw)
    else:
        items = query.items() if isinstance(query, Mapping) else query
        pairs = [(_encode(key), _encode(value)) for key, value in items]
    pairs.sort()
    return "&".join(f"{key}={value}" for key, value in pairs)


def _parse_query(raw: bytes) -> list[tuple[str, str]]:
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        pairs.append((_reencode(key), _reencode(value)))
    return pairs


def _reencode(component: bytes) -> str:
    return quote_from_bytes(unquote_to_bytes(component.replace(b"+", b" ")), safe="")


def _encode(text: str) -> str:
    return quote(text, safe="")


def verify_request(runtime: Runtime, flask_request: Request) -> int:
    """Verify a signed request and return the acting WordPress user id.

    Checks run in this order: all headers present and well formed, timestamp
    within ``api.clock_skew_seconds`` of the runtime clock, signature made with
    one of ``api.secrets``, request id not seen before. Only a request that
    passes the signature check has its id recorded, so unsigned requests cannot
    fill the table or claim ids. Raises Unauthorized naming the failed check.
    """
    headers = _read_headers(flask_request)
    timestamp = int(headers[TIMESTAMP_HEADER])
    request_id = headers[REQUEST_ID_HEADER]
    user_id = int(headers[USER_HEADER])
    _check_clock(runtime, timestamp, flask_request, request_id)

    canonical = canonical_string(
        flask_request.method,
        flask_request.path,
        canonical_query(flask_request.query_string),
        timestamp,
        request_id,
        user_id,
        flask_request.get_data(cache=True),
    )
    _check_signature(
        runtime, canonical, headers[SIGNATURE_HEADER], flask_request, request_id
    )
    _record_request_id(runtime, request_id, timestamp, flask_request)
    return user_id


def _read_headers(flask_request: Request) -> dict[str, str]:
    missing = [name for name in REQUIRED_HEADERS if not flask_request.headers.get(name)]
    if missing:
        _reject(flask_request, "missing header " + ", ".join(missing), None)
    headers = {name: flask_request.headers[name].strip() for name in REQUIRED_HEADERS}
    formats = {
        TIMESTAMP_HEADER: (TIMESTAMP_PATTERN, "unix seconds"),
        REQUEST_ID_HEADER: (REQUEST_ID_PATTERN, "16 to 64 of A-Z a-z 0-9 - _"),
        USER_HEADER: (USER_ID_PATTERN, "a decimal WordPress user id, 0 for none"),
        SIGNATURE_HEADER: (SIGNATURE_PATTERN, "v1= and 64 lowercase hex digits"),
    }
    for name, (pattern, expected) in formats.items():
        if not pattern.fullmatch(headers[name]):
            _reject(flask_request, f"invalid header {name}: expected {expected}", None)
    return headers


def _check_clock(
    runtime: Runtime, timestamp: int, flask_request: Request, request_id: str
) -> None:
    now = int(runtime.now().timestamp())
    skew = runtime.config.api.clock_skew_seconds
    advice = "check that the WordPress and bridge servers keep accurate time"
    if timestamp < now - skew:
        _reject(
            flask_request,
            f"expired: the timestamp is {now - timestamp} seconds old and the "
            f"maximum is {skew}; {advice}",
            request_id,
        )
    if timestamp > now + skew:
        _reject(
            flask_request,
            f"from the future: the timestamp is {timestamp - now} seconds ahead "
            f"and the maximum is {skew}; {advice}",
            request_id,
        )


def _check_signature(
    runtime: Runtime,
    canonical: str,
    header: str,
    flask_request: Request,
    request_id: str,
) -> None:
    secrets_in_use = [
        secret.get_secret_value() for secret in runtime.config.api.secrets
    ]
    if not secrets_in_use:
        _reject(
            flask_request,
            "bad signature: bridge has no API secrets configured; set api.secrets "
            "or COACHBRIDGE_API_SECRETS",
            request_id,
        )
    received = header.removeprefix(f"{SIGNATURE_VERSION}=")
    # Every secret is tried, without stopping at the first match, so that the
    # response time does not tell which of the listed secrets was used.
    matched = False
    for secret in secrets_in_use:
        expected = compute_signature(secret, canonical)
        matched |= hmac.compare_digest(expected, received)
    if not matched:
        _reject(
            flask_request,
            "bad signature: no configured secret produces it; check that the "
            "plugin's shared secret is listed in api.secrets and that the request "
            "was not changed in transit",
            request_id,
        )


def _record_request_id(
    runtime: Runtime, request_id: str, timestamp: int, flask_request: Request
) -> None:
    signed_at = dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None)

    def insert(session: Session) -> None:
        session.add(SeenRequest(request_id=request_id, signed_at=signed_at))

    try:
        runtime.db.run(insert, "record a signed request id")
    except sa.exc.IntegrityError:
        _reject(
            flask_request,
            "replayed: this request id was already used; sign every request "
            "with a new id",
            request_id,
        )
    if runtime.rng.randrange(PRUNE_ONE_IN) == 0:
        prune_request_ids(runtime)


def prune_request_ids(runtime: Runtime) -> int:
    """Delete request ids too old to be replayed and return how many were deleted.

    A replay carries the original signed timestamp, so once that timestamp is
    older than the clock skew the clock check rejects it. Rows are kept for
    twice the skew, so that lowering ``clock_skew_seconds`` later stays safe.
    """
    window = dt.timedelta(seconds=2 * runtime.config.api.clock_skew_seconds)
    cutoff = runtime.now().astimezone(dt.UTC).replace(tzinfo=None) - window

    def delete(session: Session) -> int:
        result = session.execute(
            sa.delete(SeenRequest).where(SeenRequest.signed_at < cutoff)
        )
        return result.rowcount or 0

    deleted = runtime.db.run(delete, "prune seen request ids")
    if deleted:
        log.debug("pruned %d seen request ids signed before %s", deleted, cutoff)
    return deleted


def _reject(flask_request: Request, reason: str, request_id: str | None) -> NoReturn:
    log.warning(
        "rejected %s %s from %s: %s (request id %s)",
        flask_request.method,
        flask_request.path,
        flask_request.remote_addr,
        reason,
        request_id or "-",
    )
    raise Unauthorized(reason)


def require_signed_requests(blueprint: Blueprint) -> Blueprint:
    """Make every view of ``blueprint`` verify the request signature first.

    Use it on the blueprints under ``/api/v1/`` and ``/pages/``. Views read the
    acting user id with :func:`signed_user_id`.
    """
    blueprint.before_request(_verify_current_request)
    return blueprint


def signed(view: ViewFunction) -> ViewFunction:
    """Decorate a single view so that it verifies the request signature first."""

    @functools.wraps(view)
    def wrapper(*args: object, **kwargs: object) -> object:
        _verify_current_request()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def signed_user_id() -> int:
    """Return the acting WordPress user id of the verified current request."""
    user_id = g.get(USER_ID_ATTRIBUTE)
    if user_id is None:
        raise RuntimeError(
            "signed_user_id() called in a view that does not verify signatures; "
            "protect it with require_signed_requests() or @signed"
        )
    return user_id


def _verify_current_request() -> None:
    from bridge.app import get_runtime

    # A view under a protected blueprint may also carry @signed. Verifying a
    # second time would reject the request as replayed.
    if g.get(USER_ID_ATTRIBUTE) is not None:
        return
    runtime = get_runtime(current_app)
    setattr(g, USER_ID_ATTRIBUTE, verify_request(runtime, current_request))
