"""Tests of messaging: partners, conversations, unread counts and authorization."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from bridge.models import Activity, Message
from tests.test_api_client import build_client_site

SECRET_WORDS = "meet me at the pier"


@pytest.fixture
def site(make_runtime, tmp_path):
    return build_client_site(make_runtime, tmp_path)


def _error(response) -> dict[str, str]:
    return response.get_json()["error"]


def _partners(site, user: int) -> list[tuple[str, str]]:
    response = site.call("GET", "/api/v1/me/message-partners", user)
    assert response.status_code == 200
    return [(p["name"], p["relation"]) for p in response.get_json()["partners"]]


def _start(site, user: int, partner: int):
    return site.call("POST", "/api/v1/conversations", user, {"partner_id": partner})


def _send(site, user: int, conversation: int, body: object):
    path = f"/api/v1/conversations/{conversation}/messages"
    return site.call("POST", path, user, {"body": body})


def _conversation(site, user: int, partner: int) -> int:
    response = _start(site, user, partner)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["id"]


# Partners.


def test_client_partners(site):
    assert _partners(site, site.cleo) == [
        ("Ana Coach", "coach"),
        ("Dan Client", "client"),
        ("Fay Client", "client"),
    ]


def test_coach_partners(site):
    assert _partners(site, site.coach_ana) == [
        ("Cleo <script>alert(1)</script>", "client"),
        ("Dan Client", "client"),
    ]


def test_program_without_messaging(site):
    assert _partners(site, site.eve) == []
    assert _partners(site, site.coach_ben) == [("Fay Client", "client")]


def test_partners_of_outsider(site):
    assert _partners(site, site.outsider) == []


def test_inactive_enrollment_has_no_partners(site):
    site.deactivate(site.dan_strength)
    assert ("Dan Client", "client") not in _partners(site, site.cleo)
    assert _partners(site, site.dan) == []


def test_partners_when_site_disables_messaging(make_runtime, tmp_path):
    site = build_client_site(
        make_runtime, tmp_path, coaching={"messaging_enabled": False}
    )
    response = site.call("GET", "/api/v1/me/message-partners", site.cleo)
    assert response.get_json() == {"messaging_enabled": False, "partners": []}


# Starting conversations.


def test_start_then_reuse(site):
    first = _start(site, site.cleo, site.coach_ana)
    assert first.status_code == 201
    conversation = first.get_json()
    assert conversation["partner"] == {"id": site.coach_ana, "name": "Ana Coach"}
    assert conversation["unread_count"] == 0
    assert conversation["last_message"] is None
    assert conversation["can_send"] is True

    again = _start(site, site.cleo, site.coach_ana)
    assert again.status_code == 200
    assert again.get_json()["id"] == conversation["id"]
    other_side = _start(site, site.coach_ana, site.cleo)
    assert other_side.status_code == 200
    assert other_side.get_json()["id"] == conversation["id"]


def test_start_with_non_partner_forbidden(site):
    for partner in (site.eve, site.coach_ben, site.outsider, 123456):
        response = _start(site, site.cleo, partner)
        assert response.status_code == 403, partner
        assert _error(response)["code"] == "forbidden"


@pytest.mark.parametrize(
    "body",
    [
        {"partner_id": True},
        {"partner_id": "5"},
        {"partner_id": 0},
        {"partner_id": 2**63},
        {},
        {"partner_id": 2, "extra": 1},
    ],
)
def test_start_rejects_bad_body(site, body):
    response = site.call("POST", "/api/v1/conversations", site.cleo, body)
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request"


def test_start_with_self_rejected(site):
    response = _start(site, site.cleo, site.cleo)
    assert response.status_code == 400
    assert "yourself" in _error(response)["message"]


# Sending and reading.


def test_send_and_read(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    sent = _send(site, site.cleo, conversation, "Hello <b>coach</b>\nSee you")
    assert sent.status_code == 201
    message = sent.get_json()
    assert message["body"] == "Hello <b>coach</b>\nSee you"
    assert message["mine"] is True
    assert message["sender_id"] == site.cleo
    assert message["sent_at"] == "2026-03-16T09:00:00Z"

    path = f"/api/v1/conversations/{conversation}/messages"
    page = site.call("GET", path, site.coach_ana).get_json()
    assert [m["body"] for m in page["messages"]] == ["Hello <b>coach</b>\nSee you"]
    assert page["messages"][0]["mine"] is False
    assert page["has_more"] is False
    assert page["conversation"]["partner"]["id"] == site.cleo


def test_unread_counts(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    _send(site, site.cleo, conversation, "one")
    _send(site, site.cleo, conversation, "two")

    def unread(user: int) -> int:
        listing = site.call("GET", "/api/v1/me/conversations", user).get_json()
        return listing["conversations"][0]["unread_count"]

    assert unread(site.coach_ana) == 2
    assert unread(site.cleo) == 0
    site.call("GET", f"/api/v1/conversations/{conversation}/messages", site.coach_ana)
    assert unread(site.coach_ana) == 0
    _send(site, site.coach_ana, conversation, "three")
    assert unread(site.cleo) == 1


def test_conversation_list_order(site):
    with_ana = _conversation(site, site.cleo, site.coach_ana)
    with_dan = _conversation(site, site.cleo, site.dan)
    _send(site, site.cleo, with_dan, "first")
    _send(site, site.cleo, with_ana, "second")
    listing = site.call("GET", "/api/v1/me/conversations", site.cleo).get_json()
    conversations = listing["conversations"]
    assert [c["id"] for c in conversations] == [with_ana, with_dan]
    assert conversations[0]["last_message"]["body"] == "second"
    assert conversations[0]["last_message"]["mine"] is False


def test_message_pages(site):
    conversation = _conversation(site, site.cleo, site.dan)
    for number in range(5):
        _send(site, site.cleo, conversation, f"message {number}")
    path = f"/api/v1/conversations/{conversation}/messages"

    page = site.call("GET", path, site.dan, query={"limit": "2"}).get_json()
    assert [m["body"] for m in page["messages"]] == ["message 3", "message 4"]
    assert page["has_more"] is True
    before = str(page["messages"][0]["id"])
    page = site.call(
        "GET", path, site.dan, query={"limit": "2", "before": before}
    ).get_json()
    assert [m["body"] for m in page["messages"]] == ["message 1", "message 2"]


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"before": "0"}]
)
def test_message_page_rejects_bad_query(site, query):
    conversation = _conversation(site, site.cleo, site.dan)
    path = f"/api/v1/conversations/{conversation}/messages"
    response = site.call("GET", path, site.cleo, query=query)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "missing body"),
        (" \n\t", "missing body"),
        ("a" * 5001, "5001 characters"),
        (5, "expected a string"),
        (None, "expected a string"),
        ("\ud800", "surrogates"),
    ],
)
def test_send_rejects_bad_body(site, body, fragment):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    response = _send(site, site.cleo, conversation, body)
    assert response.status_code == 400
    assert fragment in _error(response)["message"]


def test_send_longest_body(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    response = _send(site, site.cleo, conversation, "é" * 5000)
    assert response.status_code == 201


def test_send_rejects_unknown_field(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    path = f"/api/v1/conversations/{conversation}/messages"
    response = site.call("POST", path, site.cleo, {"body": "hi", "to": 3})
    assert response.status_code == 400


# Authorization.


def test_other_users_conversation_not_found(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    path = f"/api/v1/conversations/{conversation}/messages"
    for user in (site.dan, site.coach_ben, site.admin):
        assert site.call("GET", path, user).status_code == 404, user
        response = _send(site, user, conversation, "let me in")
        assert response.status_code == 404, user
    with site.runtime.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_missing_conversation_not_found(site):
    for conversation in (999, 2**63):
        path = f"/api/v1/conversations/{conversation}/messages"
        assert site.call("GET", path, site.cleo).status_code == 404


def test_moved_client_cannot_message_old_coach(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    _send(site, site.cleo, conversation, "before the move")
    site.move(site.cleo_strength, site.cohort_ben)

    response = _send(site, site.cleo, conversation, "after the move")
    assert response.status_code == 403
    page = site.call(
        "GET", f"/api/v1/conversations/{conversation}/messages", site.coach_ana
    )
    assert page.status_code == 200
    assert page.get_json()["conversation"]["can_send"] is False


def test_site_switch_blocks_sending(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    _send(site, site.cleo, conversation, "while enabled")
    config = site.runtime.config
    coaching = config.coaching.model_copy(update={"messaging_enabled": False})
    site.runtime.config = config.model_copy(update={"coaching": coaching})

    response = _send(site, site.cleo, conversation, "while disabled")
    assert response.status_code == 403
    assert "disabled" in _error(response)["message"]
    assert _start(site, site.cleo, site.dan).status_code == 403
    listing = site.call("GET", "/api/v1/me/conversations", site.cleo).get_json()
    assert listing["conversations"][0]["can_send"] is False
    assert listing["conversations"][0]["last_message"]["body"] == "while enabled"


# Activity and logs.


def test_message_sent_activity(site):
    conversation = _conversation(site, site.cleo, site.coach_ana)
    message = _send(site, site.cleo, conversation, SECRET_WORDS).get_json()
    with site.runtime.db.session() as session:
        entry = session.scalars(
            sa.select(Activity).where(Activity.type == "message_sent")
        ).one()
        assert entry.wp_user_id == site.cleo
        assert entry.actor_wp_user_id == site.cleo
        assert entry.enrollment_id == site.cleo_strength
        assert entry.program_id == site.strength
        assert entry.details == {
            "conversation_id": conversation,
            "message_id": message["id"],
            "recipient_wp_user_id": site.coach_ana,
        }
        assert SECRET_WORDS not in entry.summary


def test_coach_message_is_about_client(site):
    conversation = _conversation(site, site.coach_ana, site.dan)
    _send(site, site.coach_ana, conversation, "How was your week?")
    with site.runtime.db.session() as session:
        entry = session.scalars(sa.select(Activity)).one()
        assert entry.wp_user_id == site.dan
        assert entry.actor_wp_user_id == site.coach_ana
        assert entry.enrollment_id == site.dan_strength


def test_body_never_logged(site, caplog):
    caplog.set_level(logging.DEBUG)
    conversation = _conversation(site, site.cleo, site.dan)
    _send(site, site.cleo, conversation, SECRET_WORDS)
    site.call("GET", f"/api/v1/conversations/{conversation}/messages", site.dan)
    assert caplog.records
    assert all(SECRET_WORDS not in record.getMessage() for record in caplog.records)
