"""Tests of the client JSON API: enrollments, program detail, ticks, errors.

``build_client_site`` is also used by the page, message, preview and
schemathesis tests: a WordPress database on SQLite with an administrator, two
coaches and four clients, two programs and signed requests through the app.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.models import (
    Activity,
    Coach,
    Cohort,
    CohortKind,
    DueUnit,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    Milestone,
    MilestoneTick,
    Program,
    ScheduleKind,
)
from bridge.signing import sign_request
from tests.wpsite import WordPressSite

SECRET = "client-api-secret-0123456789"
# A Monday. Clients started two weeks earlier, also on a Monday.
NOW = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
START = dt.date(2026, 3, 2)
CLEO_NAME = "Cleo <script>alert(1)</script>"
CALENDLY_URL = "https://calendly.com/ana-coach/30min?month=2026-03"
OTHER_BOOKING_URL = "https://coach.example/book/ben"


@dataclass
class ClientSite:
    """A coaching site with signed access to its app, and the ids tests refer to."""

    runtime: Any
    app: Flask
    ids: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        try:
            return self.ids[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def call(
        self,
        method: str,
        path: str,
        user: int,
        body: Any = None,
        query: dict[str, str] | str | None = None,
    ):
        """Send a request signed for ``user``; a dict or list body is sent as JSON."""
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        query_string = query if isinstance(query, str) else _encode_query(query)
        headers = sign_request(
            SECRET, method, path, query_string, data, user, int(NOW.timestamp())
        )
        headers["Content-Type"] = "application/json"
        return self.client.open(
            path, method=method, query_string=query_string, data=data, headers=headers
        )

    def move(self, enrollment: int, cohort: int) -> None:
        """Move an enrollment to another cohort."""
        with self.runtime.db.session() as session:
            session.get(Enrollment, enrollment).cohort_id = cohort

    def deactivate(self, enrollment: int) -> None:
        """Make an enrollment inactive, as a lost membership does."""
        with self.runtime.db.session() as session:
            session.get(Enrollment, enrollment).status = EnrollmentStatus.INACTIVE


def _encode_query(query: dict[str, str] | None) -> str:
    from urllib.parse import urlencode

    return urlencode(query or {})


def build_client_site(make_runtime, tmp_path: Path, **sections: Any) -> ClientSite:
    """Build the site; ``sections`` override configuration, as make_runtime's do."""
    wordpress_url = f"sqlite:///{tmp_path}/wordpress.sqlite3"
    users = _add_wordpress_users(wordpress_url)
    sections.setdefault("api", {})["secrets"] = [SECRET]
    runtime = make_runtime(wordpress_url=wordpress_url, clock=lambda: NOW, **sections)
    ids = dict(users)
    with runtime.db.session() as session:
        ids.update(_add_programs(session, users))
    return ClientSite(runtime=runtime, app=create_app(runtime=runtime), ids=ids)


def _add_wordpress_users(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    wordpress = WordPressSite(engine, prefix="wp_")
    wordpress.create_schema()
    users = {
        "admin": wordpress.add_user(
            "root", "root@example.org", "Site Admin", roles=("administrator",)
        ),
        "coach_ana": wordpress.add_user("ana", "ana@example.org", "Ana Coach"),
        "coach_ben": wordpress.add_user("ben", "ben@example.org", "Ben Coach"),
        "cleo": wordpress.add_user(
            "cleo", "cleo+test@example.org", CLEO_NAME, "Cleo", "O'Neil & Co"
        ),
        "dan": wordpress.add_user("dan", "dan@example.org", "Dan Client"),
        "eve": wordpress.add_user("eve", "eve@example.org", "Eve Client"),
        "fay": wordpress.add_user("fay", "fay@example.org", "Fay Client"),
        "outsider": wordpress.add_user("out", "out@example.org", "Out Sider"),
    }
    engine.dispose()
    return users


def _add_programs(session, users: dict[str, int]) -> dict[str, int]:
    strength = Program(slug="strength", title="Strength", messaging_enabled=True)
    sleep = Program(slug="sleep", title="Sleep better", messaging_enabled=False)
    first = Milestone(
        program=strength,
        title="First push-up",
        due_amount=1,
        due_unit=DueUnit.WEEKS,
        position=0,
    )
    second = Milestone(
        program=strength,
        title="First pull-up",
        due_amount=2,
        due_unit=DueUnit.MONTHS,
        position=1,
    )
    walk = Habit(
        program=strength,
        title="Walk",
        schedule=ScheduleKind.DAILY,
        length_amount=4,
        length_unit=DueUnit.WEEKS,
        position=0,
    )
    lift = Habit(
        program=strength,
        title="Lift",
        schedule=ScheduleKind.WEEKDAYS,
        weekdays=0b0010101,
        length_amount=6,
        length_unit=DueUnit.WEEKS,
        position=1,
    )
    bedtime = Milestone(
        program=sleep, title="Bed by ten", due_amount=3, due_unit=DueUnit.DAYS
    )
    ana = Coach(wp_user_id=users["coach_ana"], display_name="Ana Coach")
    ben = Coach(wp_user_id=users["coach_ben"], display_name="Ben Coach")
    cohort_ana = Cohort(
        program=strength,
        name="Ana's group",
        kind=CohortKind.ROLLING,
        coach=ana,
        appointments_enabled=True,
        booking_url=CALENDLY_URL,
    )
    cohort_ben = Cohort(
        program=strength,
        name="Ben's group",
        kind=CohortKind.ROLLING,
        coach=ben,
        appointments_enabled=True,
        booking_url=OTHER_BOOKING_URL,
    )
    cohort_sleep = Cohort(
        program=sleep, name="Sleepers", kind=CohortKind.ROLLING, coach=ben
    )
    session.add_all([first, second, walk, lift, bedtime, cohort_ana, cohort_ben])
    session.add(cohort_sleep)
    session.flush()

    enrollments = {
        "cleo_strength": Enrollment(
            wp_user_id=users["cleo"], program_id=strength.id, cohort_id=cohort_ana.id
        ),
        "dan_strength": Enrollment(
            wp_user_id=users["dan"], program_id=strength.id, cohort_id=cohort_ana.id
        ),
        "fay_strength": Enrollment(
            wp_user_id=users["fay"], program_id=strength.id, cohort_id=cohort_ben.id
        ),
        "cleo_sleep": Enrollment(
            wp_user_id=users["cleo"], program_id=sleep.id, cohort_id=cohort_sleep.id
        ),
        "eve_sleep": Enrollment(
            wp_user_id=users["eve"], program_id=sleep.id, cohort_id=cohort_sleep.id
        ),
    }
    for enrollment in enrollments.values():
        enrollment.start_date = START
    session.add_all(enrollments.values())
    session.flush()

    ids = {name: enrollment.id for name, enrollment in enrollments.items()}
    ids.update(
        strength=strength.id,
        sleep=sleep.id,
        milestone_first=first.id,
        milestone_second=second.id,
        milestone_bedtime=bedtime.id,
        habit_walk=walk.id,
        habit_lift=lift.id,
        cohort_ana=cohort_ana.id,
        cohort_ben=cohort_ben.id,
        cohort_sleep=cohort_sleep.id,
    )
    return ids


def add_ticks(site: ClientSite, enrollment: int, **ticks: Any) -> None:
    """Store ticks directly: ``milestones=[ids]``, ``habits=[(id, date)]``."""
    ticked_at = dt.datetime(2026, 3, 10, 8, 0)
    with site.runtime.db.session() as session:
        for milestone in ticks.get("milestones", []):
            session.add(
                MilestoneTick(
                    enrollment_id=enrollment,
                    milestone_id=milestone,
                    ticked_at=ticked_at,
                )
            )
        for habit, day in ticks.get("habits", []):
            session.add(
                HabitTick(
                    enrollment_id=enrollment,
                    habit_id=habit,
                    due_date=day,
                    ticked_at=ticked_at,
                )
            )


@pytest.fixture
def site(make_runtime, tmp_path) -> ClientSite:
    return build_client_site(make_runtime, tmp_path)


def _error(response) -> dict[str, str]:
    return response.get_json()["error"]


def _tick_path(site: ClientSite, enrollment: int, milestone: int) -> str:
    return f"/api/v1/enrollments/{enrollment}/milestones/{milestone}/tick"


def _habit_path(site: ClientSite, enrollment: int, habit: int, day: str) -> str:
    return f"/api/v1/enrollments/{enrollment}/habits/{habit}/ticks/{day}"


# Enrollment list.


def test_my_enrollments_lists_own(site):
    response = site.call("GET", "/api/v1/me/enrollments", site.cleo)
    assert response.status_code == 200
    enrollments = response.get_json()["enrollments"]
    assert [e["id"] for e in enrollments] == [site.cleo_sleep, site.cleo_strength]
    strength = enrollments[1]
    assert strength["program_slug"] == "strength"
    assert strength["program_title"] == "Strength"
    assert strength["cohort_name"] == "Ana's group"
    assert strength["coach_name"] == "Ana Coach"
    assert strength["coach_user_id"] == site.coach_ana
    assert strength["start_date"] == "2026-03-02"
    assert strength["status"] == "active"
    assert strength["completed"] is False


def test_my_enrollments_progress(site):
    add_ticks(
        site,
        site.cleo_strength,
        milestones=[site.milestone_first],
        habits=[(site.habit_walk, START)],
    )
    response = site.call("GET", "/api/v1/me/enrollments", site.cleo)
    strength = response.get_json()["enrollments"][1]
    # 14 closed walk dates and 6 closed lift dates (Mon, Wed, Fri) before today.
    assert strength["progress"] == {
        "percent": 27,
        "milestones_done": 1,
        "milestones_total": 2,
        "habit_dates_done": 1,
        "habit_dates_due": 20,
    }
    assert strength["off_track"] is True


def test_calendly_link_gets_name_and_email(site):
    response = site.call("GET", "/api/v1/me/enrollments", site.cleo)
    url = response.get_json()["enrollments"][1]["appointment_url"]
    parts = urlsplit(url)
    assert parts.netloc == "calendly.com"
    assert parts.path == "/ana-coach/30min"
    query = parse_qs(parts.query)
    assert query == {
        "month": ["2026-03"],
        "name": ["Cleo O'Neil & Co"],
        "email": ["cleo+test@example.org"],
    }
    assert "email=cleo%2Btest%40example.org" in parts.query
    assert "name=Cleo%20O%27Neil%20%26%20Co" in parts.query


def test_other_booking_link_unchanged(site):
    response = site.call("GET", "/api/v1/me/enrollments", site.fay)
    assert response.get_json()["enrollments"][0]["appointment_url"] == (
        OTHER_BOOKING_URL
    )


def test_no_link_without_appointments(site):
    response = site.call("GET", "/api/v1/me/enrollments", site.eve)
    assert response.get_json()["enrollments"][0]["appointment_url"] is None


def test_enrollments_empty_for_outsider(site):
    response = site.call("GET", "/api/v1/me/enrollments", site.outsider)
    assert response.status_code == 200
    assert response.get_json() == {"enrollments": []}


def test_enrollments_need_signature(site):
    response = site.client.get("/api/v1/me/enrollments")
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"


def test_enrollments_need_a_user(site):
    response = site.call("GET", "/api/v1/me/enrollments", 0)
    assert response.status_code == 401


def test_unknown_user_rejected(site):
    response = site.call("GET", "/api/v1/me/enrollments", 99999999999999999999)
    assert response.status_code == 401


# Program detail and its window.


def test_detail_milestones(site):
    add_ticks(site, site.cleo_strength, milestones=[site.milestone_first])
    response = site.call("GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo)
    assert response.status_code == 200
    detail = response.get_json()
    assert detail["enrollment"]["id"] == site.cleo_strength
    assert detail["today"] == "2026-03-16"
    assert detail["can_tick"] is True
    first, second = detail["milestones"]
    assert first["title"] == "First push-up"
    assert first["due_date"] == "2026-03-09"
    assert first["done"] is True
    assert first["ticked_at"] == "2026-03-10T08:00:00Z"
    assert second["due_date"] == "2026-05-02"
    assert second["done"] is False
    assert second["ticked_at"] is None


def test_detail_default_window(site):
    response = site.call("GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo)
    detail = response.get_json()
    assert detail["window"] == {"from": "2026-03-03", "to": "2026-03-16"}
    walk, lift = detail["habits"]
    assert walk["schedule"] == "Every day for 4 weeks"
    assert walk["first_date"] == "2026-03-02"
    assert walk["last_date"] == "2026-03-29"
    assert len(walk["due_dates"]) == 14
    assert walk["due_dates"][-1] == {
        "date": "2026-03-16",
        "ticked": False,
        "late": False,
        "future": False,
    }
    assert lift["schedule"] == "Every Monday, Wednesday and Friday for 6 weeks"
    assert [d["date"] for d in lift["due_dates"]] == [
        "2026-03-04",
        "2026-03-06",
        "2026-03-09",
        "2026-03-11",
        "2026-03-13",
        "2026-03-16",
    ]


def test_detail_window_clipped_to_habit(site):
    query = {"from": "2026-02-20", "to": "2026-03-05"}
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo, query=query
    )
    walk = response.get_json()["habits"][0]
    assert [d["date"] for d in walk["due_dates"]] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
    ]


def test_detail_future_and_late(site):
    add_ticks(site, site.cleo_strength, habits=[(site.habit_walk, dt.date(2026, 3, 9))])
    query = {"from": "2026-03-09", "to": "2026-03-18"}
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo, query=query
    )
    dates = {d["date"]: d for d in response.get_json()["habits"][0]["due_dates"]}
    assert dates["2026-03-09"]["ticked"] is True
    assert dates["2026-03-09"]["late"] is True
    assert dates["2026-03-16"]["future"] is False
    assert dates["2026-03-17"]["future"] is True


def test_detail_off_track_per_habit(site):
    days = [START + dt.timedelta(days=n) for n in range(14)]
    add_ticks(site, site.cleo_strength, habits=[(site.habit_walk, d) for d in days])
    response = site.call("GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo)
    walk, lift = response.get_json()["habits"]
    assert walk["off_track"] is False
    assert lift["off_track"] is True


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"from": "2026-01-01", "to": "2026-05-01"}, "spans 121 days"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "is after"),
        ({"from": "2026-02-30"}, "invalid from"),
        ({"to": "16-03-2026"}, "invalid to"),
        ({"from": "0001-01-01"}, "invalid from"),
    ],
)
def test_detail_window_rejected(site, query, fragment):
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo, query=query
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request"
    assert fragment in _error(response)["message"]


def test_detail_window_of_120_days(site):
    query = {"from": "2026-01-01", "to": "2026-04-30"}
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo, query=query
    )
    assert response.status_code == 200


def test_detail_one_bound(site):
    query = {"from": "2026-03-10"}
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo, query=query
    )
    assert response.get_json()["window"] == {"from": "2026-03-10", "to": "2026-03-23"}


# Authorization of every object.


def test_other_clients_enrollment_not_found(site):
    response = site.call("GET", f"/api/v1/enrollments/{site.dan_strength}", site.cleo)
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_missing_enrollment_not_found(site):
    for enrollment in (0, 999, 2**63, 10**30):
        response = site.call("GET", f"/api/v1/enrollments/{enrollment}", site.admin)
        assert response.status_code == 404, enrollment


def test_other_clients_milestone_not_found(site):
    path = _tick_path(site, site.dan_strength, site.milestone_first)
    for method in ("PUT", "DELETE"):
        response = site.call(method, path, site.cleo)
        assert response.status_code == 404, method


def test_milestone_of_other_program_not_found(site):
    path = _tick_path(site, site.cleo_strength, site.milestone_bedtime)
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 404


def test_other_clients_habit_tick_not_found(site):
    path = _habit_path(site, site.dan_strength, site.habit_walk, "2026-03-16")
    for method in ("PUT", "DELETE"):
        response = site.call(method, path, site.cleo)
        assert response.status_code == 404, method


def test_habit_of_other_program_not_found(site):
    path = _habit_path(site, site.cleo_sleep, site.habit_walk, "2026-03-16")
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 404


def test_coach_sees_own_cohort(site):
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.dan_strength}", site.coach_ana
    )
    assert response.status_code == 200
    assert response.get_json()["can_tick"] is False


def test_coach_loses_moved_client(site):
    site.move(site.dan_strength, site.cohort_ben)
    path = f"/api/v1/enrollments/{site.dan_strength}"
    assert site.call("GET", path, site.coach_ana).status_code == 404
    assert site.call("GET", path, site.coach_ben).status_code == 200
    tick = _habit_path(site, site.dan_strength, site.habit_walk, "2026-03-16")
    assert site.call("PUT", tick, site.coach_ana).status_code == 404


def test_other_coach_not_found(site):
    response = site.call(
        "GET", f"/api/v1/enrollments/{site.dan_strength}", site.coach_ben
    )
    assert response.status_code == 404


def test_admin_sees_any_enrollment(site):
    response = site.call("GET", f"/api/v1/enrollments/{site.eve_sleep}", site.admin)
    assert response.status_code == 200


@pytest.mark.parametrize("who", ["coach_ana", "admin"])
def test_coach_and_admin_cannot_tick(site, who):
    user = getattr(site, who)
    paths = [
        _tick_path(site, site.dan_strength, site.milestone_first),
        _habit_path(site, site.dan_strength, site.habit_walk, "2026-03-16"),
    ]
    for path in paths:
        response = site.call("PUT", path, user)
        assert response.status_code == 403, path
        assert _error(response)["code"] == "forbidden"
    with site.runtime.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(HabitTick)) == 0


# Ticks.


def test_milestone_tick_and_untick(site):
    path = _tick_path(site, site.cleo_strength, site.milestone_first)
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 200
    state = response.get_json()
    assert state["enrollment_id"] == site.cleo_strength
    assert state["milestone_id"] == site.milestone_first
    assert state["done"] is True
    assert state["progress"]["milestones_done"] == 1

    response = site.call("DELETE", path, site.cleo)
    assert response.status_code == 200
    assert response.get_json()["done"] is False
    assert response.get_json()["progress"]["milestones_done"] == 0


def test_milestone_tick_twice(site):
    path = _tick_path(site, site.cleo_strength, site.milestone_first)
    assert site.call("PUT", path, site.cleo).status_code == 200
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 200
    assert response.get_json()["progress"]["milestones_done"] == 1


def test_habit_tick_late(site):
    path = _habit_path(site, site.cleo_strength, site.habit_walk, "2026-03-10")
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 200
    state = response.get_json()
    assert state["habit_id"] == site.habit_walk
    assert state["date"] == "2026-03-10"
    assert state["ticked"] is True
    assert state["progress"]["habit_dates_done"] == 1

    detail = site.call("GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo)
    dates = {d["date"]: d for d in detail.get_json()["habits"][0]["due_dates"]}
    assert dates["2026-03-10"]["ticked"] is True
    assert dates["2026-03-10"]["late"] is True


def test_habit_untick(site):
    path = _habit_path(site, site.cleo_strength, site.habit_walk, "2026-03-16")
    site.call("PUT", path, site.cleo)
    response = site.call("DELETE", path, site.cleo)
    assert response.status_code == 200
    assert response.get_json()["ticked"] is False
    with site.runtime.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(HabitTick)) == 0


@pytest.mark.parametrize(
    "day",
    [
        "2026-03-17",  # tomorrow
        "2026-03-15",  # a Sunday, not a lift day
        "2026-02-27",  # before the habit starts
    ],
)
def test_habit_tick_rejected_dates(site, day):
    path = _habit_path(site, site.cleo_strength, site.habit_lift, day)
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_request"


def test_habit_tick_malformed_date(site):
    path = _habit_path(site, site.cleo_strength, site.habit_walk, "2026-3-16")
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 400
    assert "YYYY-MM-DD" in _error(response)["message"]


def test_tick_inactive_enrollment_not_found(site):
    site.deactivate(site.cleo_strength)
    path = _tick_path(site, site.cleo_strength, site.milestone_first)
    response = site.call("PUT", path, site.cleo)
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_inactive_enrollment_leaves_client_list(site):
    site.deactivate(site.cleo_strength)
    listed = site.call("GET", "/api/v1/me/enrollments", site.cleo).get_json()
    programs = [item["program_slug"] for item in listed["enrollments"]]
    assert "strength" not in programs
    detail = site.call("GET", f"/api/v1/enrollments/{site.cleo_strength}", site.cleo)
    assert detail.status_code == 404


def test_tick_writes_activity(site):
    path = _tick_path(site, site.cleo_strength, site.milestone_first)
    site.call("PUT", path, site.cleo)
    with site.runtime.db.session() as session:
        types = session.scalars(sa.select(Activity.type)).all()
    assert "milestone_completed" in types


# Request bodies.


def test_large_body_rejected(site):
    body = {"body": "a" * 70_000}
    response = site.call("POST", "/api/v1/conversations/1/messages", site.cleo, body)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["message"] == "request body over the limit of 65536 bytes"


def test_body_must_be_an_object(site):
    response = site.call("POST", "/api/v1/conversations", site.cleo, [1, 2])
    assert response.status_code == 400
    assert "JSON object" in _error(response)["message"]
