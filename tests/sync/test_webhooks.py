"""MemberPress webhook bodies: the sample deliveries, bad envelopes and odd shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.webhooks import Delivery, InvalidPayload, event_is_actionable, parse_delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "memberpress"


def body(envelope: object) -> bytes:
    return json.dumps(envelope).encode()


SAMPLES = {
    "member-signup-completed": Delivery(
        "member-signup-completed", "member", 41, None, None, None
    ),
    "subscription-created": Delivery(
        "subscription-created", "subscription", 41, 120, None, 77
    ),
    "subscription-stopped": Delivery(
        "subscription-stopped", "subscription", 41, 120, None, 77
    ),
    "transaction-completed": Delivery(
        "transaction-completed", "transaction", 41, 120, 305, 77
    ),
    "transaction-refunded": Delivery(
        "transaction-refunded", "transaction", 41, 120, 305, 77
    ),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_parse_delivery_sample(name):
    delivery = parse_delivery((FIXTURES / f"{name}.json").read_bytes())

    assert delivery == SAMPLES[name]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b'{"event": "login"', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not"),
        (
            b'{"event": "login", "data": {"id": 1' + b"1" * 5000 + b"}}",
            "too many digits",
        ),
        (b"[]", "must be a JSON object, found list"),
        (b'"transaction-completed"', "must be a JSON object, found str"),
        (b"42", "must be a JSON object, found int"),
        (b"null", "must be a JSON object, found NoneType"),
        (b'{"type": "member", "data": {}}', "missing 'event'"),
        (b'{"event": 7, "data": {}}', "'event' must be a string, found int"),
        (b'{"event": null, "data": {}}', "'event' must be a string, found NoneType"),
        (b'{"event": ["login"]}', "'event' must be a string, found list"),
        (b'{"event": "login", "data": []}', "'data' must be a JSON object, found list"),
        (
            b'{"event": "login", "data": "41"}',
            "'data' must be a JSON object, found str",
        ),
        (b'{"event": "login", "data": null}', "found NoneType"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=[
        "empty-body",
        "broken-json",
        "truncated-json",
        "not-utf8",
        "integer-too-long",
        "array",
        "string",
        "number",
        "null",
        "missing-event",
        "event-number",
        "event-null",
        "event-list",
        "data-list",
        "data-string",
        "data-null",
        "deeply-nested",
    ],
)
def test_parse_delivery_rejects_bad_body(raw, message):
    with pytest.raises(InvalidPayload, match=message):
        parse_delivery(raw)


def test_parse_delivery_without_data_has_no_ids():
    delivery = parse_delivery(body({"event": "member-deleted"}))

    assert delivery == Delivery("member-deleted", None, None, None, None, None)


def test_parse_delivery_login_reads_member_from_data_id():
    delivery = parse_delivery(body({"event": "login", "data": {"id": "41"}}))

    assert delivery.member_id == 41
    assert delivery.type is None


def test_parse_delivery_infers_kind_when_type_missing():
    raw = body(
        {
            "event": "renewal-transaction-completed",
            "data": {"id": "306", "member": {"id": 41}, "membership": "120"},
        }
    )

    delivery = parse_delivery(raw)

    assert delivery.transaction_id == 306
    assert delivery.member_id == 41
    assert delivery.membership_id == 120


def test_parse_delivery_non_string_type_is_none():
    delivery = parse_delivery(body({"event": "member-added", "type": 3, "data": {}}))

    assert delivery.type is None


def test_parse_delivery_reads_ids_from_nested_subscription():
    raw = body(
        {
            "event": "transaction-completed",
            "type": "transaction",
            "data": {
                "id": 305,
                "subscription": {"id": "77", "member": "41", "membership": "120"},
            },
        }
    )

    delivery = parse_delivery(raw)

    assert delivery.member_id == 41
    assert delivery.membership_id == 120
    assert delivery.subscription_id == 77


def test_parse_delivery_member_given_as_string_id():
    raw = body(
        {
            "event": "subscription-paused",
            "type": "subscription",
            "data": {"id": "77", "member": "41", "membership": {"id": "120"}},
        }
    )

    delivery = parse_delivery(raw)

    assert delivery.member_id == 41
    assert delivery.membership_id == 120
    assert delivery.subscription_id == 77


@pytest.mark.parametrize(
    "value",
    [0, "0", -5, "-5", False, True, None, "", " ", "41a", 4.0, "4.0", "٤١", [41], {}],
    ids=[
        "zero",
        "zero-string",
        "negative",
        "negative-string",
        "false",
        "true",
        "null",
        "empty-string",
        "blank-string",
        "letters",
        "float",
        "float-string",
        "arabic-digits",
        "list",
        "empty-object",
    ],
)
def test_parse_delivery_unknown_id_shapes_give_none(value):
    raw = body(
        {
            "event": "transaction-completed",
            "type": "transaction",
            "data": {"id": value, "member": value, "subscription": value},
        }
    )

    delivery = parse_delivery(raw)

    assert delivery.transaction_id is None
    assert delivery.member_id is None
    assert delivery.subscription_id is None


def test_parse_delivery_id_above_bigint_is_none():
    raw = body({"event": "member-added", "type": "member", "data": {"id": "9" * 30}})

    assert parse_delivery(raw).member_id is None


def test_parse_delivery_ignores_unknown_event_shape():
    raw = body({"event": "mystery-event", "type": "mystery", "data": {"x": [1, 2]}})

    delivery = parse_delivery(raw)

    assert delivery == Delivery("mystery-event", "mystery", None, None, None, None)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("member-added", True),
        ("member-signup-completed", True),
        ("member-account-updated", True),
        ("member-deleted", True),
        ("subscription-created", True),
        ("subscription-stopped", True),
        ("subscription-expired", True),
        ("transaction-completed", True),
        ("transaction-refunded", True),
        ("transaction-failed", True),
        ("recurring-transaction-completed", True),
        ("renewal-transaction-completed", True),
        ("non-recurring-transaction-expired", True),
        ("offline-payment-complete", True),
        ("sub-account-added", True),
        ("sub-account-removed", True),
        ("login", False),
        ("after-member-signup-reminder", False),
        ("subscription-expires-reminder", False),
        ("transaction-expires-reminder", False),
        ("member-logged-in", False),
        ("mystery-event", False),
        ("", False),
    ],
    ids=lambda value: (value or "empty") if isinstance(value, str) else None,
)
def test_event_is_actionable(event, expected):
    assert event_is_actionable(event) is expected
