"""Parse MemberPress Developer Tools webhook bodies.

A delivery is a JSON object ``{"event": ..., "type": ..., "data": {...}}``. Only the
envelope is validated strictly. Ids are read leniently from the known shapes of
``data``, because MemberPress sends ids as integers in some places and as strings in
others, and real deliveries carry fields that this module does not know.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

_ACTIONABLE_EVENTS = frozenset(
    {
        "member-added",
        "member-signup-completed",
        "member-account-updated",
        "member-deleted",
        "sub-account-added",
        "sub-account-removed",
    }
)
_ACTIONABLE_PREFIXES = (
    "subscription-",
    "transaction-",
    "recurring-transaction-",
    "renewal-transaction-",
    "non-recurring-transaction-",
    "offline-payment-",
)
_TRANSACTION_PREFIXES = (
    "transaction-",
    "recurring-transaction-",
    "renewal-transaction-",
    "non-recurring-transaction-",
    "offline-payment-",
)

# WordPress and MemberPress ids are bigint(20) unsigned columns, but the state
# database stores them in signed BIGINT columns (INTEGER on SQLite), so a larger
# id could not be stored. Auto-increment ids stay far below both in practice.
_MAX_ID = 2**63 - 1
_MAX_ID_DIGITS = len(str(_MAX_ID))


# MemberPress event names are lowercase words joined by hyphens, such as
# "transaction-completed". The pattern also admits digits, "_" and "." and any
# case, so that events of add-ons still pass, but no space or control character
# can reach the logs. The length is that of the inbox's event column.
EVENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
EVENT_NAME_MAX_LENGTH = 100
# Characters of an invalid event name quoted in the error message.
_SHOWN_EVENT_LENGTH = 40


class InvalidPayload(ValueError):
    """Webhook body that is not a MemberPress delivery envelope."""


@dataclass(frozen=True)
class Delivery:
    """Event name and the ids that one webhook delivery refers to."""

    event: str
    type: str | None
    member_id: int | None
    membership_id: int | None
    transaction_id: int | None
    subscription_id: int | None


def parse_delivery(body: bytes) -> Delivery:
    """Parse a webhook body into a Delivery, or raise InvalidPayload if it is bad.

    The envelope must be a JSON object whose ``event`` is an event name (see
    EVENT_NAME_PATTERN). ``data``, when present, must be an object. Ids that are
    missing, zero or of an unknown shape are None.
    """
    envelope = _decode(body)

    if "event" not in envelope:
        raise InvalidPayload("missing 'event' in webhook body")
    event = envelope["event"]
    if not isinstance(event, str):
        kind = type(event).__name__
        raise InvalidPayload(f"'event' must be a string, found {kind}")
    _check_event_name(event)

    data = envelope.get("data", {})
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise InvalidPayload(f"'data' must be a JSON object, found {kind}")

    delivery_type = envelope.get("type")
    if not isinstance(delivery_type, str):
        delivery_type = None
    kind = delivery_type or _kind_from_event(event)
    return Delivery(
        event=event,
        type=delivery_type,
        member_id=_member_id(data, kind, event),
        membership_id=_membership_id(data, kind),
        transaction_id=_own_or_nested_id(data, kind, "transaction"),
        subscription_id=_own_or_nested_id(data, kind, "subscription"),
    )


def event_is_actionable(event: str) -> bool:
    """Return whether an event can change access or profile data.

    Member, subscription, transaction and sub-account events are actionable.
    ``login``, reminders (``*-reminder``) and unknown events are not, so the caller
    records them and does nothing else.
    """
    if event.endswith("-reminder"):
        return False
    return event in _ACTIONABLE_EVENTS or event.startswith(_ACTIONABLE_PREFIXES)


def _decode(body: bytes) -> dict:
    try:
        envelope = json.loads(body)
    except UnicodeDecodeError as error:
        raise InvalidPayload(
            f"webhook body is not UTF-8 text: {error.reason}"
        ) from None
    except json.JSONDecodeError as error:
        raise InvalidPayload(f"webhook body is not valid JSON: {error}") from None
    except ValueError:
        # int() rejects literals longer than sys.get_int_max_str_digits().
        raise InvalidPayload(
            "webhook body contains a number with too many digits "
            f"(more than {sys.get_int_max_str_digits()})"
        ) from None
    except RecursionError:
        raise InvalidPayload("webhook body is nested too deeply to parse") from None
    if not isinstance(envelope, dict):
        kind = type(envelope).__name__
        raise InvalidPayload(f"webhook body must be a JSON object, found {kind}")
    return envelope


def _check_event_name(event: str) -> None:
    if len(event) <= EVENT_NAME_MAX_LENGTH and EVENT_NAME_PATTERN.fullmatch(event):
        return
    shown = event[:_SHOWN_EVENT_LENGTH]
    more = f" ({len(event)} characters)" if len(event) > _SHOWN_EVENT_LENGTH else ""
    raise InvalidPayload(
        f"invalid 'event' {shown!r}{more}: expected a MemberPress event name such "
        f"as 'transaction-completed', at most {EVENT_NAME_MAX_LENGTH} letters, "
        "digits, '-', '_' or '.'"
    )


def _kind_from_event(event: str) -> str | None:
    if event.startswith(_TRANSACTION_PREFIXES):
        return "transaction"
    if event.startswith("subscription-"):
        return "subscription"
    if event.startswith("member-") or event == "login":
        return "member"
    return None


def _member_id(data: Mapping, kind: str | None, event: str) -> int | None:
    if kind == "member" or event == "login":
        return _parse_id(data.get("id"))
    member_id = _reference_id(data.get("member"))
    if member_id is not None:
        return member_id
    return _first_nested(data, "member")


def _membership_id(data: Mapping, kind: str | None) -> int | None:
    if kind == "member":
        # Member events list all active memberships, so no single one is the subject.
        return None
    membership_id = _reference_id(data.get("membership"))
    if membership_id is not None:
        return membership_id
    return _first_nested(data, "membership")


def _own_or_nested_id(data: Mapping, kind: str | None, name: str) -> int | None:
    """Read data.id when the delivery is about ``name``, else data.<name>."""
    if kind == name:
        return _parse_id(data.get("id"))
    return _reference_id(data.get(name))


def _first_nested(data: Mapping, field: str) -> int | None:
    """Read ``field`` from a nested transaction or subscription object."""
    for container in ("transaction", "subscription"):
        nested = data.get(container)
        if isinstance(nested, dict):
            found = _reference_id(nested.get(field))
            if found is not None:
                return found
    return None


def _reference_id(value: object) -> int | None:
    """Read an id given either as an object with ``id`` or as the id itself."""
    if isinstance(value, dict):
        return _parse_id(value.get("id"))
    return _parse_id(value)


def _parse_id(value: object) -> int | None:
    """Return a positive id from an int or a decimal string, else None.

    MemberPress sends 0, "0" or false where no object is linked.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS):
            return None
        value = int(text)
    if isinstance(value, int) and 0 < value <= _MAX_ID:
        return value
    return None
