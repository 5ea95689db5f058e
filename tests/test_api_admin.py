"""Tests of the admin JSON API under /api/v1/admin/, called with signed requests."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask

from bridge.app import create_app
from bridge.models import Activity, Cohort, Enrollment
from bridge.signing import sign_request
from tests.test_console import (
    FORMULA_NAME,
    NOW,
    SCRIPT_NAME,
    SECRET,
    TRICKY_NAME,
    ConsoleSite,
    build_console_site,
)


class SignedClient:
    """A Flask test client that signs every request as the plugin does."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()

    def call(
        self,
        method: str,
        path: str,
        user: int,
        query: dict | list | None = None,
        body: object = None,
        raw_body: bytes | None = None,
    ):
        query_string = urlencode(query or {}, doseq=True)
        data = raw_body if raw_body is not None else b""
        if body is not None:
            data = json.dumps(body).encode()
        headers = sign_request(
            SECRET,
            method,
            path,
            query_string,
            data,
            user,
            timestamp=int(NOW.timestamp()),
        )
        if data:
            headers["Content-Type"] = "application/json"
        return self.client.open(
            path, method=method, query_string=query_string, data=data, headers=headers
        )

    def get(self, path: str, user: int, **query):
        return self.call("GET", path, user, query=query)


@pytest.fixture
def site(make_runtime, tmp_path) -> ConsoleSite:
    return build_console_site(make_runtime, tmp_path)


@pytest.fixture
def client(site) -> SignedClient:
    return SignedClient(create_app(runtime=site.runtime))


API = "/api/v1/admin"


# Access


def test_unsigned_request_rejected(site, client):
    response = client.client.get(f"{API}/progress")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "path",
    [
        "/progress",
        "/progress.csv",
        "/activity",
        "/programs",
        "/cohorts",
        "/coaches",
        "/clients",
    ],
)
def test_client_user_gets_not_found(site, client, path):
    response = client.get(API + path, site.cleo)
    assert response.status_code == 404


# Client progress


def test_progress_json(site, client):
    response = client.get(f"{API}/progress", site.admin, program=site.strength)
    assert response.status_code == 200
    data = response.json
    assert data["total"] == 4
    assert data["page"] == 1
    assert data["per_page"] == 50
    assert data["pages"] == 1
    assert data["search_truncated"] is False
    first = data["items"][0]
    assert first["name"] == "Cleo Client"
    assert first["last_activity_at"] == "2026-03-01T12:00:00Z"
    assert first["start_date"] == "2026-02-02"
    assert first["status"] == "active"


def test_progress_query_parameters(site, client):
    response = client.get(
        f"{API}/progress",
        site.admin,
        sort="name",
        order="desc",
        per_page=2,
        page=2,
        status="all",
    )
    assert response.status_code == 200
    names = [item["name"] for item in response.json["items"]]
    # Descending: Zoë, dan, Cleo, then the names that start with = and <.
    assert names == ["Cleo Client", FORMULA_NAME]
    assert response.json["total"] == 5


def test_progress_search_and_off_track(site, client):
    found = client.get(f"{API}/progress", site.admin, q="O'BRIEN")
    assert [item["wp_user_id"] for item in found.json["items"]] == [site.zoe]
    off_track = client.get(f"{API}/progress", site.admin, off_track="1")
    assert [item["wp_user_id"] for item in off_track.json["items"]] == [site.dan]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"per_page": "101"}, "per_page 101"),
        ({"page": "0"}, "invalid page"),
        ({"program": "abc"}, "invalid program"),
        ({"sort": "email"}, "invalid sort"),
        ({"off_track": "maybe"}, "invalid off_track"),
        ({"status": " active"}, "invalid status"),
        ({"program": ""}, "invalid program"),
        ({"program": "٣"}, "invalid program"),
        ({"coach": str(2**63)}, "invalid coach"),
    ],
)
def test_progress_invalid_parameters(site, client, query, message):
    response = client.get(f"{API}/progress", site.admin, **query)
    assert response.status_code == 400
    assert message in response.json["error"]["message"]


def test_progress_coach_scope(site, client):
    response = client.get(f"{API}/progress", site.coach_ben, status="all")
    assert {item["wp_user_id"] for item in response.json["items"]} == {
        site.zoe,
        site.mallory,
        site.formula,
    }


def test_progress_csv(site, client):
    response = client.get(f"{API}/progress.csv", site.admin, status="all", sort="name")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="coaching-progress-2026-03-02.csv"'
    )
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8").removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    names = [row[0] for row in rows[1:]]
    assert names == [
        SCRIPT_NAME,
        "'" + FORMULA_NAME,
        "Cleo Client",
        "dan lowercase",
        TRICKY_NAME,
    ]
    zoe = rows[5]
    assert zoe[3] == "Strength 💪"


def test_progress_csv_coach_scope(site, client):
    response = client.get(f"{API}/progress.csv", site.coach_ana)
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert sorted(row[0] for row in rows[1:]) == ["Cleo Client", "dan lowercase"]


# Activity feed


def test_activity_filters(site, client):
    by_type = client.call(
        "GET",
        f"{API}/activity",
        site.admin,
        query=[("type", "habit_ticked"), ("type", "off_track")],
    )
    assert by_type.status_code == 200
    kinds = {item["type"] for item in by_type.json["items"]}
    assert kinds == {"habit_ticked", "off_track"}

    comma = client.get(f"{API}/activity", site.admin, type="habit_ticked,off_track")
    assert comma.status_code == 400

    dated = client.get(
        f"{API}/activity", site.admin, **{"from": "2026-02-28", "to": "2026-02-28"}
    )
    assert [item["occurred_at"] for item in dated.json["items"]] == [
        "2026-02-28T08:00:00Z",
        "2026-02-28T07:00:00Z",
    ]


def test_activity_inverted_range_empty(site, client):
    response = client.get(
        f"{API}/activity", site.admin, **{"from": "2026-03-02", "to": "2026-03-01"}
    )
    assert response.status_code == 200
    assert response.json["items"] == []


def test_activity_pagination(site, client):
    first = client.get(f"{API}/activity", site.admin, per_page=5)
    second = client.get(f"{API}/activity", site.admin, per_page=5, page=2)
    assert first.json["has_next"] is True
    assert second.json["has_next"] is False
    assert len(first.json["items"]) == 5
    assert len(second.json["items"]) == 1


@pytest.mark.parametrize(
    "query, message",
    [
        ({"type": "teleported"}, "invalid activity type"),
        ({"from": "02/28/2026"}, "invalid from"),
        ({"from": "20260228"}, "invalid from"),
        ({"per_page": ""}, "invalid per_page"),
    ],
)
def test_activity_invalid_parameters(site, client, query, message):
    response = client.get(f"{API}/activity", site.admin, **query)
    assert response.status_code == 400
    assert message in response.json["error"]["message"]


# Programs


NEW_PROGRAM = {
    "slug": "mobility",
    "title": "Mobility",
    "milestones": [{"title": "Touch toes", "due_amount": 2, "due_unit": "weeks"}],
    "habits": [
        {
            "title": "Stretch",
            "schedule": "daily",
            "length_amount": 6,
            "length_unit": "weeks",
        }
    ],
}


def test_create_program(site, client):
    body = dict(NEW_PROGRAM, memberships=[site.membership])
    response = client.call("POST", f"{API}/programs", site.admin, body=body)
    assert response.status_code == 201
    program_id = response.json["id"]
    assert response.headers["Location"] == f"{API}/programs/{program_id}"
    assert response.json["memberships"] == [
        {"id": site.membership, "title": "Monthly coaching"}
    ]
    assert response.json["milestones"][0]["due_unit"] == "weeks"
    assert response.json["locked"] is False

    fetched = client.get(f"{API}/programs/{program_id}", site.admin)
    assert fetched.json == response.json


def test_create_program_invalid(site, client):
    response = client.call(
        "POST", f"{API}/programs", site.admin, body={"slug": "x", "title": ""}
    )
    assert response.status_code == 400
    assert "title" in response.json["error"]["message"]
    not_json = client.call(
        "POST", f"{API}/programs", site.admin, raw_body=b"slug=x&title=y"
    )
    assert not_json.status_code == 400


def test_locked_program_answers_409(site, client):
    body = {"milestones": [{"title": "Changed", "due_amount": 1, "due_unit": "weeks"}]}
    response = client.call(
        "PATCH", f"{API}/programs/{site.strength}", site.admin, body=body
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert "locked because it has 5 enrollments" in response.json["error"]["message"]

    detail = client.get(f"{API}/programs/{site.strength}", site.admin)
    assert detail.json["locked"] is True
    assert "Duplicate the program" in detail.json["lock_reason"]


def test_locked_program_title_change(site, client):
    response = client.call(
        "PATCH", f"{API}/programs/{site.strength}", site.admin, body={"title": "New"}
    )
    assert response.status_code == 200
    assert response.json["title"] == "New"


def test_delete_program(site, client):
    locked = client.call("DELETE", f"{API}/programs/{site.strength}", site.admin)
    assert locked.status_code == 409
    assert "cannot be deleted" in locked.json["error"]["message"]

    deleted = client.call("DELETE", f"{API}/programs/{site.sleep}", site.admin)
    assert deleted.status_code == 204
    assert client.get(f"{API}/programs/{site.sleep}", site.admin).status_code == 404


def test_duplicate_program(site, client):
    response = client.call(
        "POST",
        f"{API}/programs/{site.strength}/duplicate",
        site.admin,
        body={"slug": "strength-v2"},
    )
    assert response.status_code == 201
    assert response.json["slug"] == "strength-v2"
    assert response.json["memberships"] == []
    assert response.json["cohorts"] == []


def test_coach_program_changes_forbidden(site, client):
    calls = [
        ("POST", f"{API}/programs", NEW_PROGRAM),
        ("PATCH", f"{API}/programs/{site.strength}", {"title": "Mine"}),
        ("DELETE", f"{API}/programs/{site.sleep}", None),
        ("POST", f"{API}/programs/{site.strength}/duplicate", {"slug": "x"}),
        (
            "POST",
            f"{API}/programs/{site.strength}/cohorts",
            {"name": "Mine", "coach": site.coach_ana},
        ),
        ("PATCH", f"{API}/cohorts/{site.cohort_ana}", {"capacity": 9}),
    ]
    for method, path, body in calls:
        response = client.call(method, path, site.coach_ana, body=body)
        assert response.status_code == 403, (method, path)
        assert response.json["error"]["code"] == "forbidden"


def test_coach_reads_programs(site, client):
    listed = client.get(f"{API}/programs", site.coach_ana)
    assert {item["slug"] for item in listed.json["items"]} == {"strength", "sleep"}
    detail = client.get(f"{API}/programs/{site.strength}", site.coach_ana)
    assert [cohort["name"] for cohort in detail.json["cohorts"]] == ["Ana's"]
    hidden = client.get(f"{API}/programs/{site.sleep}", site.coach_ben)
    assert hidden.status_code == 404


# Cohorts


def test_add_cohort(site, client):
    body = {
        "name": "Autumn",
        "type": "fixed",
        "start_date": "2026-09-01",
        "coach": site.coach_ben,
        "capacity": 12,
        "open": False,
        "appointments": True,
        "booking_url": "https://book.example.org/ben",
    }
    response = client.call(
        "POST", f"{API}/programs/{site.strength}/cohorts", site.admin, body=body
    )
    assert response.status_code == 201
    cohort = response.json
    assert response.headers["Location"] == f"{API}/cohorts/{cohort['id']}"
    assert cohort["start_date"] == "2026-09-01"
    assert cohort["coach_name"] == "Ben Coach"
    assert cohort["open"] is False
    assert cohort["full"] is False


@pytest.mark.parametrize(
    "body, message",
    [
        ({"appointments": True, "booking_url": "ftp://x.example"}, "booking_url"),
        ({"capacity": 0}, "capacity"),
        ({"type": "weekly"}, "type"),
        ({"start_date": 20260301}, "start_date"),
        ({"start_date": "0"}, "expected a date such as"),
        ({"start_date": "9999-12-20"}, "before the year 9000"),
        ({"open": None}, "open may be left out but not null"),
    ],
)
def test_update_cohort_invalid(site, client, body, message):
    response = client.call(
        "PATCH", f"{API}/cohorts/{site.cohort_ana}", site.admin, body=body
    )
    assert response.status_code == 400
    assert message in response.json["error"]["message"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"appointments": True}, "missing booking_url"),
        ({"type": "fixed"}, "missing start_date"),
        ({"coach": 4040}, "not a registered coach"),
    ],
)
def test_update_cohort_conflicts(site, client, body, message):
    response = client.call(
        "PATCH", f"{API}/cohorts/{site.cohort_ana}", site.admin, body=body
    )
    assert response.status_code == 409
    assert message in response.json["error"]["message"]


def test_update_cohort(site, client):
    response = client.call(
        "PATCH",
        f"{API}/cohorts/{site.cohort_ana}",
        site.admin,
        body={"capacity": 2, "coach": site.coach_ben},
    )
    assert response.status_code == 200
    assert response.json["capacity"] == 2
    assert response.json["full"] is True
    assert response.json["coach_wp_user_id"] == site.coach_ben


def test_cohort_not_found(site, client):
    assert client.get(f"{API}/cohorts/999", site.admin).status_code == 404
    response = client.call("PATCH", f"{API}/cohorts/999", site.admin, body={})
    assert response.status_code == 404
    other = client.get(f"{API}/cohorts/{site.cohort_ben}", site.coach_ana)
    assert other.status_code == 404


# Coaches and users


def test_register_coach(site, client):
    response = client.call(
        "POST", f"{API}/coaches", site.admin, body={"wp_user_id": site.stranger}
    )
    assert response.status_code == 201
    assert response.json["display_name"] == "Sam Stranger"
    assert response.headers["Location"] == f"{API}/coaches/{response.json['id']}"
    again = client.call(
        "POST", f"{API}/coaches", site.admin, body={"wp_user_id": site.stranger}
    )
    assert again.status_code == 200
    assert again.json["id"] == response.json["id"]


def test_register_coach_unknown_user(site, client):
    response = client.call(
        "POST", f"{API}/coaches", site.admin, body={"wp_user_id": 4040}
    )
    assert response.status_code == 404
    assert "WordPress user 4040 not found" in response.json["error"]["message"]
    invalid = client.call("POST", f"{API}/coaches", site.admin, body={"wp_user_id": 0})
    assert invalid.status_code == 400


def test_register_coach_forbidden_for_coach(site, client):
    response = client.call(
        "POST", f"{API}/coaches", site.coach_ana, body={"wp_user_id": site.stranger}
    )
    assert response.status_code == 403


def test_coach_detail(site, client):
    response = client.get(f"{API}/coaches/{site.coach_ana_id}", site.admin)
    assert response.status_code == 200
    assert response.json["coach"]["display_name"] == "Ana Coach"
    assert response.json["most_active_days"] == 30
    assert [c["wp_user_id"] for c in response.json["most_active"]] == [
        site.cleo,
        site.dan,
    ]
    assert (
        client.get(f"{API}/coaches/{site.coach_ben_id}", site.coach_ana).status_code
        == 404
    )


def test_user_search(site, client):
    response = client.get(f"{API}/users", site.admin, q="stranger")
    assert [user["id"] for user in response.json["items"]] == [site.stranger]
    assert client.get(f"{API}/users", site.coach_ana, q="a").status_code == 403


def test_memberships(site, client):
    response = client.get(f"{API}/memberships", site.admin)
    assert response.json["items"] == [
        {
            "id": site.membership,
            "title": "Monthly coaching",
            "status": "publish",
            "program_ids": [site.strength],
        }
    ]


# Clients


def test_client_list_and_detail(site, client):
    listed = client.get(f"{API}/clients", site.admin, q="cleo")
    assert listed.json["total"] == 1
    assert listed.json["items"][0]["programs"] == ["Strength 💪"]

    detail = client.get(f"{API}/clients/{site.cleo}", site.admin)
    assert detail.status_code == 200
    assert detail.json["wordpress_user_edit"] == f"user-edit.php?user_id={site.cleo}"
    assert detail.json["enrollments"][0]["cohort_name"] == "Ana's"
    assert detail.json["activity"][0]["type"] == "milestone_completed"


def test_add_client_by_hand(site, client):
    response = client.call(
        "POST",
        f"{API}/clients/{site.nobody}/enrollments",
        site.admin,
        body={"cohort_id": site.sleep_cohort},
    )
    assert response.status_code == 201
    assert response.json["enrolled_by_hand"] is True
    assert response.headers["Location"] == f"{API}/enrollments/{response.json['id']}"


def test_add_client_full_cohort_409(site, client):
    with site.runtime.db.session() as session:
        session.get(Cohort, site.cohort_ana).capacity = 2
    response = client.call(
        "POST",
        f"{API}/clients/{site.nobody}/enrollments",
        site.admin,
        body={"cohort_id": site.cohort_ana},
    )
    assert response.status_code == 409
    assert "is full" in response.json["error"]["message"]
    with site.runtime.db.session() as session:
        count = session.scalar(
            sa.select(sa.func.count()).where(Enrollment.wp_user_id == site.nobody)
        )
    assert count == 0


def test_assign_cohort(site, client):
    response = client.call(
        "PUT",
        f"{API}/enrollments/{site.enrollment_zoe}/cohort",
        site.admin,
        body={"cohort_id": site.cohort_ana},
    )
    assert response.status_code == 200
    assert response.json["cohort_id"] == site.cohort_ana

    full = client.call(
        "PUT",
        f"{API}/enrollments/{site.enrollment_mallory}/cohort",
        site.admin,
        body={"cohort_id": site.cohort_ana},
    )
    assert full.status_code == 409
    assert "is full: 3 active clients of 3" in full.json["error"]["message"]


def test_unenroll(site, client):
    response = client.call(
        "POST", f"{API}/enrollments/{site.enrollment_cleo}/unenroll", site.admin
    )
    assert response.status_code == 200
    assert response.json["enrollment"]["status"] == "inactive"
    assert response.json["granting_memberships"] == []
    with site.runtime.db.session() as session:
        entry = session.scalar(
            sa.select(Activity).where(
                Activity.type == "unenrolled",
                Activity.enrollment_id == site.enrollment_cleo,
            )
        )
    assert entry.actor_wp_user_id == site.admin


def test_coach_limited_to_own_clients(site, client):
    others = [
        ("GET", f"{API}/clients/{site.zoe}"),
        ("GET", f"{API}/enrollments/{site.enrollment_zoe}"),
        ("POST", f"{API}/enrollments/{site.enrollment_zoe}/unenroll"),
    ]
    for method, path in others:
        response = client.call(method, path, site.coach_ana)
        assert response.status_code == 404, path
    assign = client.call(
        "PUT",
        f"{API}/enrollments/{site.enrollment_zoe}/cohort",
        site.coach_ana,
        body={"cohort_id": site.cohort_ana},
    )
    assert assign.status_code == 404

    own = client.get(f"{API}/clients/{site.cleo}", site.coach_ana)
    assert own.status_code == 200
    unenroll = client.call(
        "POST", f"{API}/enrollments/{site.enrollment_cleo}/unenroll", site.coach_ana
    )
    assert unenroll.status_code == 403
