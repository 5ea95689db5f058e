"""Webhook intake: authentication, validation, storage and duplicates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

import pytest
import sqlalchemy as sa

from bridge import inbox
from bridge.app import create_app
from bridge.db import Database
from bridge.models import InboxEntry, InboxStatus

KEY = "current-webhook-key-0123456789"
OLD_KEY = "previous-webhook-key-9876543210"
START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
URL = "/webhooks/memberpress"
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


class Clock:
    """A settable clock for the runtime."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def transaction_body(member_id: int, transaction_id: int = 500, **extra) -> bytes:
    """Return a MemberPress transaction-completed body, as MemberPress sends it."""
    data = {
        "id": str(transaction_id),
        "amount": "19.00",
        "membership": {"id": "7", "title": "Monthly coaching"},
        "member": {
            "id": str(member_id),
            "email": f"member{member_id}@example.org",
            "first_name": "Ana",
        },
        **extra,
    }
    envelope = {"event": "transaction-completed", "type": "transaction", "data": data}
    return json.dumps(envelope, ensure_ascii=False).encode()


def entries(runtime) -> list[InboxEntry]:
    with runtime.db.session() as session:
        return list(session.scalars(sa.select(InboxEntry).order_by(InboxEntry.id)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(make_runtime, clock):
    return make_runtime(clock=clock, webhooks={"keys": [KEY, OLD_KEY]})


@pytest.fixture
def client(runtime):
    return create_app(runtime=runtime).test_client()


def post(client, body: bytes, key: str | None = KEY, url: str = URL):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["MEMBERPRESS-WEBHOOK-KEY"] = key
    return client.post(url, data=body, headers=headers)


# Authentication.


def test_header_key_accepted(client, runtime):
    body = transaction_body(42)

    response = post(client, body)

    assert response.status_code == 202
    assert response.json["status"] == "queued"
    [entry] = entries(runtime)
    assert response.json["id"] == entry.id
    assert entry.event == "transaction-completed"
    assert entry.wp_user_id == 42
    assert entry.status == InboxStatus.PENDING
    assert entry.body == body.decode()
    assert entry.body_sha256 == hashlib.sha256(body).hexdigest()
    assert entry.received_at == START.replace(tzinfo=None)


def test_path_token_accepted(client, runtime):
    response = post(client, transaction_body(42), key=None, url=f"{URL}/{KEY}")

    assert response.status_code == 202
    assert len(entries(runtime)) == 1


def test_rotated_keys_both_accepted(client, runtime):
    first = post(client, transaction_body(1), key=KEY)
    second = post(client, transaction_body(2), key=OLD_KEY)
    third = post(client, transaction_body(3), key=None, url=f"{URL}/{OLD_KEY}")

    assert first.status_code == 202
    assert second.status_code == 202
    assert third.status_code == 202
    assert [entry.wp_user_id for entry in entries(runtime)] == [1, 2, 3]


def test_wrong_key_rejected(client, runtime, caplog):
    wrong = "wrong-webhook-key-000000000000"

    with caplog.at_level(logging.WARNING, logger="bridge.webhooks"):
        response = post(client, transaction_body(42), key=wrong)

    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.json["error"]["message"] == "invalid webhook key"
    assert entries(runtime) == []
    assert "rejected a webhook delivery" in caplog.text
    assert wrong not in caplog.text
    assert KEY not in caplog.text


def test_wrong_path_token_rejected(client, runtime):
    response = post(client, transaction_body(42), key=None, url=f"{URL}/not-a-key")

    assert response.status_code == 401
    assert entries(runtime) == []


def test_missing_key_rejected(client, runtime, caplog):
    with caplog.at_level(logging.WARNING, logger="bridge.webhooks"):
        response = post(client, transaction_body(42), key=None)

    assert response.status_code == 401
    assert "MEMBERPRESS-WEBHOOK-KEY" in response.json["error"]["message"]
    assert entries(runtime) == []
    assert "no key presented" in caplog.text


def test_key_prefix_rejected(client, runtime):
    response = post(client, transaction_body(42), key=KEY[:-1])

    assert response.status_code == 401


def test_non_ascii_key_rejected(client, runtime):
    response = post(client, transaction_body(42), key=None, url=f"{URL}/clé-€")

    assert response.status_code == 401


def test_no_keys_configured_rejects_all(make_runtime):
    runtime = make_runtime()
    client = create_app(runtime=runtime).test_client()

    response = post(client, transaction_body(42), key="any-key-at-all-1234567")

    assert response.status_code == 401
    assert "webhooks.keys is empty" in response.json["error"]["message"]
    assert entries(runtime) == []


# Validation.


def test_invalid_json_rejected(client, runtime):
    response = post(client, b'{"event": "transaction-completed",')

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_request"
    assert "not valid JSON" in response.json["error"]["message"]
    assert entries(runtime) == []


def test_rejected_body_logged_without_content(client, runtime, caplog):
    body = b'{"event": "transaction-completed", "email": "ana@example.org"'

    with caplog.at_level(logging.WARNING, logger="bridge.webhooks"):
        response = post(client, body)

    assert response.status_code == 400
    assert "rejected a webhook delivery from 127.0.0.1" in caplog.text
    assert "not valid JSON" in caplog.text
    assert "ana@example.org" not in caplog.text


def test_oversized_body_logged(make_runtime, caplog):
    runtime = make_runtime(webhooks={"keys": [KEY], "max_body_bytes": 1024})
    client = create_app(runtime=runtime).test_client()

    with caplog.at_level(logging.WARNING, logger="bridge.webhooks"):
        response = post(client, transaction_body(42, note="x" * 2000))

    assert response.status_code == 413
    assert "rejected a webhook delivery from 127.0.0.1" in caplog.text
    assert "1024 bytes" in caplog.text


def test_empty_body_rejected(client, runtime):
    response = post(client, b"")

    assert response.status_code == 400
    assert entries(runtime) == []


def test_number_with_too_many_digits_rejected(client, runtime):
    body = b'{"event": "member-added", "data": {"id": ' + b"9" * 5000 + b"}}"

    response = post(client, body)

    assert response.status_code == 400
    message = response.json["error"]["message"]
    assert "too many digits" in message
    assert "sys.set_int_max_str_digits" not in message
    assert entries(runtime) == []


def test_missing_event_rejected(client, runtime):
    response = post(client, json.dumps({"type": "member", "data": {}}).encode())

    assert response.status_code == 400
    assert "missing 'event'" in response.json["error"]["message"]
    assert entries(runtime) == []


@pytest.mark.parametrize(
    "event",
    [
        "",
        "login\n2025-03-10 12:00:00 INFO forged log line",
        "login\x1b[31m",
        "transaction completed",
        "transaction-" + "x" * 89,
        "e" * 10_000,
    ],
    ids=["empty", "newline", "escape", "space", "101-characters", "10000-characters"],
)
def test_invalid_event_name_rejected(client, runtime, caplog, event):
    body = json.dumps({"event": event, "data": {"member": {"id": 42}}}).encode()

    with caplog.at_level(logging.INFO, logger="bridge.webhooks"):
        response = post(client, body)

    assert response.status_code == 400
    assert "invalid 'event'" in response.json["error"]["message"]
    assert len(response.json["error"]["message"]) < 300
    assert entries(runtime) == []
    for record in caplog.records:
        assert "\n" not in record.getMessage()
        assert "\x1b" not in record.getMessage()


def test_event_name_of_100_characters_accepted(client, runtime):
    event = "transaction-" + "x" * 88
    body = json.dumps({"event": event, "data": {"member": {"id": 42}}}).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert entries(runtime)[0].event == event


def test_json_array_rejected(client, runtime):
    response = post(client, b'[{"event": "member-added"}]')

    assert response.status_code == 400
    assert "JSON object" in response.json["error"]["message"]


def test_utf16_body_rejected(client, runtime):
    body = json.dumps({"event": "member-added", "data": {"id": 1}}).encode("utf-16")

    response = post(client, body)

    assert response.status_code == 400
    assert "not UTF-8" in response.json["error"]["message"]
    assert entries(runtime) == []


def test_body_too_large_rejected(make_runtime):
    runtime = make_runtime(webhooks={"keys": [KEY], "max_body_bytes": 1024})
    client = create_app(runtime=runtime).test_client()
    body = transaction_body(42, note="x" * 2000)

    response = post(client, body)

    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert "1024 bytes" in response.json["error"]["message"]
    assert entries(runtime) == []


def test_body_at_limit_accepted(make_runtime):
    runtime = make_runtime(webhooks={"keys": [KEY], "max_body_bytes": 1024})
    client = create_app(runtime=runtime).test_client()
    body = transaction_body(42, note="")
    body = transaction_body(42, note="x" * (1024 - len(body)))
    assert len(body) == 1024

    response = post(client, body)

    assert response.status_code == 202


def test_get_not_allowed(client):
    response = client.get(URL)

    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"


# Events the service does not act on.


def test_unknown_event_ignored(client, runtime):
    body = json.dumps({"event": "coupon-created", "data": {"id": 3}}).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    [entry] = entries(runtime)
    assert entry.status == InboxStatus.IGNORED
    assert entry.event == "coupon-created"
    assert "does not change enrollments" in entry.last_error
    assert entry.processed_at is not None


def test_login_event_ignored(client, runtime):
    body = json.dumps({"event": "login", "type": "member", "data": {"id": 9}}).encode()

    response = post(client, body)

    assert response.json["status"] == "ignored"
    assert entries(runtime)[0].wp_user_id == 9


def test_delivery_without_member_ignored(client, runtime):
    body = json.dumps({"event": "transaction-completed", "data": {"id": 5}}).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    [entry] = entries(runtime)
    assert entry.wp_user_id is None
    assert entry.last_error == "no member id found in the delivery"


@pytest.mark.parametrize("backend", BACKENDS)
def test_member_id_at_bigint_limit(backend, request, make_runtime):
    state_url = None
    if backend == "mariadb":
        state_url = request.getfixturevalue("mysql_database_factory")("state")
    runtime = make_runtime(state_url=state_url, webhooks={"keys": [KEY]})
    client = create_app(runtime=runtime).test_client()
    largest = 2**63 - 1

    stored = post(client, transaction_body(largest))

    assert stored.status_code == 202
    assert stored.json["status"] == "queued"
    assert entries(runtime)[-1].wp_user_id == largest


@pytest.mark.parametrize(
    "member_id",
    [2**63, 2**64 - 1, str(2**64 - 1), 2**70],
    ids=["2**63", "2**64-1", "2**64-1-as-text", "2**70"],
)
def test_member_id_above_bigint_ignored(client, runtime, member_id):
    body = json.dumps(
        {"event": "transaction-completed", "data": {"member": {"id": member_id}}}
    ).encode()

    response = post(client, body)

    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    [entry] = entries(runtime)
    assert entry.wp_user_id is None


# Duplicates.


def test_duplicate_has_one_effect(client, runtime, monkeypatch):
    reconciled = []
    monkeypatch.setattr(
        inbox, "reconcile_member", lambda _runtime, member: reconciled.append(member)
    )
    body = transaction_body(42)

    first = post(client, body)
    second = post(client, body)
    counts = inbox.process_due(runtime)

    assert first.json["status"] == "queued"
    assert second.status_code == 202
    assert second.json["status"] == "duplicate"
    assert second.json["id"] != first.json["id"]
    assert reconciled == [42]
    assert counts.done == 1
    statuses = [entry.status for entry in entries(runtime)]
    assert statuses == [InboxStatus.DONE, InboxStatus.DUPLICATE]
    assert (
        entries(runtime)[1].last_error == f"same body as inbox entry {first.json['id']}"
    )


def test_duplicate_after_processing_has_no_effect(client, runtime, monkeypatch):
    reconciled = []
    monkeypatch.setattr(
        inbox, "reconcile_member", lambda _runtime, member: reconciled.append(member)
    )
    body = transaction_body(42)

    post(client, body)
    inbox.process_due(runtime)
    again = post(client, body)
    inbox.process_due(runtime)

    assert again.json["status"] == "duplicate"
    assert reconciled == [42]


def test_same_body_after_window_queued(client, runtime, clock):
    body = transaction_body(42)

    post(client, body)
    clock.advance(hours=24, seconds=1)
    again = post(client, body)

    assert again.json["status"] == "queued"


def test_different_bodies_both_queued(client, runtime):
    first = post(client, transaction_body(42, transaction_id=1))
    second = post(client, transaction_body(42, transaction_id=2))

    assert first.json["status"] == "queued"
    assert second.json["status"] == "queued"


def test_zero_window_disables_duplicates(make_runtime):
    runtime = make_runtime(webhooks={"keys": [KEY], "duplicate_window_hours": 0})
    client = create_app(runtime=runtime).test_client()

    post(client, transaction_body(42))
    again = post(client, transaction_body(42))

    assert again.json["status"] == "queued"


# Logging and storage.


def test_body_not_logged(client, caplog):
    with caplog.at_level(logging.DEBUG):
        response = post(client, transaction_body(42))

    assert "transaction-completed" in caplog.text
    assert f"inbox entry {response.json['id']}" in caplog.text
    assert "member 42" in caplog.text
    assert "member42@example.org" not in caplog.text
    assert "19.00" not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_unicode_body_stored_intact(backend, request, make_runtime):
    state_url = None
    if backend == "mariadb":
        state_url = request.getfixturevalue("mysql_database_factory")("state")
    runtime = make_runtime(state_url=state_url, webhooks={"keys": [KEY]})
    client = create_app(runtime=runtime).test_client()
    body = transaction_body(42, note="Zoë 🏋️‍♀️ café — 東京 \U0001f600")

    response = post(client, body)

    assert response.status_code == 202
    [entry] = entries(runtime)
    assert entry.body == body.decode()
    assert entry.body.encode() == body
    assert hashlib.sha256(entry.body.encode()).hexdigest() == entry.body_sha256


def test_state_database_down_returns_503(client, runtime, caplog):
    runtime.db = Database.from_url("mysql+pymysql://coachbridge@127.0.0.1:1/state")

    with caplog.at_level(logging.ERROR, logger="bridge.webhooks"):
        response = post(client, transaction_body(42))

    assert response.status_code == 503
    assert response.json["error"]["code"] == "unavailable"
    assert "not stored" in response.json["error"]["message"]
    assert "could not store webhook delivery transaction-completed" in caplog.text
    assert "member42@example.org" not in caplog.text
