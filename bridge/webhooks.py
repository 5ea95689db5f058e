"""Intake of MemberPress webhooks: authenticate, store in the inbox, acknowledge.

A delivery is stored before it is acknowledged and processed later by the
scheduler (see bridge.inbox), so intake never queries WordPress and costs one
short transaction. Bodies contain personal data: logs name the event, inbox id
and member id only.
"""

from __future__ import annotations

import hmac
import logging

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge.app import get_runtime
from bridge.errors import InvalidRequest, PayloadTooLarge, Unauthorized, Unavailable
from bridge.inbox import Receipt, record_delivery
from bridge.models import InboxStatus
from bridge.runtime import Runtime
from sync.webhooks import Delivery, InvalidPayload, event_is_actionable, parse_delivery

log = logging.getLogger(__name__)

KEY_HEADER = "MEMBERPRESS-WEBHOOK-KEY"

RESPONSE_STATUS = {
    InboxStatus.PENDING: "queued",
    InboxStatus.IGNORED: "ignored",
    InboxStatus.DUPLICATE: "duplicate",
}

webhooks_blueprint = Blueprint("webhooks", __name__)


# Some MemberPress versions send no key header, so the key may instead be the
# last path segment. Proxies may write that URL to their access logs, so the
# header is the better choice where MemberPress sends it.
@webhooks_blueprint.post("/webhooks/memberpress")
@webhooks_blueprint.post("/webhooks/memberpress/<token>")
def receive_memberpress(token: str | None = None) -> tuple[Response, int]:
    """Store one MemberPress delivery and acknowledge it with 202."""
    runtime = get_runtime(current_app)
    authenticate(runtime, request.headers.get(KEY_HEADER), token)

    body = _read_body(runtime)
    delivery = _parse(body)
    receipt = _store(runtime, delivery, body)

    log.info(
        "stored webhook delivery %s as inbox entry %d (member %s, %s)",
        delivery.event,
        receipt.id,
        delivery.member_id,
        receipt.status.value,
    )
    payload = {"status": RESPONSE_STATUS[receipt.status], "id": receipt.id}
    return jsonify(payload), 202


def authenticate(runtime: Runtime, header: str | None, token: str | None) -> None:
    """Raise Unauthorized unless the header or the path token is an accepted key.

    Every presented value is compared with every key, so the time taken does
    not depend on which key matched, if any.
    """
    keys = [key.encode() for key in runtime.config.webhook_keys()]
    if not keys:
        _log_rejection("webhooks.keys is empty")
        raise Unauthorized(
            "webhook deliveries are rejected because webhooks.keys is empty: "
            "set at least one key in the configuration or COACHBRIDGE_WEBHOOK_KEYS"
        )

    presented = [value.encode() for value in (header, token) if value]
    if not presented:
        _log_rejection("no key presented")
        raise Unauthorized(
            f"missing webhook key: send it in the {KEY_HEADER} header "
            "or as the last path segment"
        )

    matched = False
    for key in keys:
        for value in presented:
            matched |= hmac.compare_digest(value, key)
    if not matched:
        _log_rejection("the key matches none of webhooks.keys")
        raise Unauthorized("invalid webhook key")


def _log_rejection(reason: str) -> None:
    log.warning("rejected a webhook delivery from %s: %s", request.remote_addr, reason)


def _read_body(runtime: Runtime) -> bytes:
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        limit = runtime.config.webhooks.max_body_bytes
        message = (
            f"webhook body exceeds the limit of {limit} bytes (webhooks.max_body_bytes)"
        )
        _log_rejection(message)
        raise PayloadTooLarge(message) from None


def _parse(body: bytes) -> Delivery:
    """Parse the body, or log and raise InvalidRequest.

    MemberPress does not retry a delivery that got an HTTP error, so the log
    line is the only trace of it. Only a key holder gets this far, and the
    messages quote byte or line positions and at most 40 characters of the
    event, never other contents of the body.
    """
    # json.loads also accepts UTF-16 and UTF-32, but the body is stored as text
    # and hashed as sent, so only UTF-8 is accepted.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        message = (
            f"webhook body is not UTF-8 text: {error.reason} at byte {error.start}"
        )
        _log_rejection(message)
        raise InvalidRequest(message) from None

    try:
        return parse_delivery(body)
    except InvalidPayload as error:
        _log_rejection(str(error))
        raise InvalidRequest(str(error)) from None


def _store(runtime: Runtime, delivery: Delivery, body: bytes) -> Receipt:
    try:
        return record_delivery(
            runtime,
            event=delivery.event,
            body=body,
            member_id=delivery.member_id,
            actionable=event_is_actionable(delivery.event),
        )
    except sa.exc.DBAPIError as error:
        log.error(
            "could not store webhook delivery %s for member %s: %s",
            delivery.event,
            delivery.member_id,
            type(error.orig or error).__name__,
        )
        raise Unavailable(
            "the state database is unavailable, so the delivery was not stored. "
            "Send it again later"
        ) from None
