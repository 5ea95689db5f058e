"""Tests of the console's queries and changes (the bridge/console package).

The site has a WordPress database with an administrator, two coaches and
clients whose names need quoting and escaping, and a state database with two
programs. test_api_admin.py and test_pages_admin.py build the same site.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from bridge import activity, console
from bridge.auth import Actor, current_actor
from bridge.enrollment import reconcile_member
from bridge.errors import Conflict, InvalidRequest, NotFound, Unavailable
from bridge.models import (
    Activity,
    ActivityType,
    Coach,
    Cohort,
    CohortKind,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramMembership,
)
from bridge.runtime import Runtime
from tests.wpsite import WordPressSite

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
SECRET = "console-test-secret-0123456789"
# Names that need CSV quoting, HTML escaping and formula guarding.
TRICKY_NAME = 'Zoë "Zo" O\'Brien, Jr.\nsecond line'
SCRIPT_NAME = "<script>alert(1)</script> Mallory"
FORMULA_NAME = '=HYPERLINK("http://evil.example","click")'


@dataclass
class ConsoleSite:
    """Ids of the users and objects that the console tests refer to."""

    runtime: Runtime
    wordpress: WordPressSite
    admin: int
    coach_ana: int
    coach_ben: int
    stranger: int
    cleo: int
    dan: int
    zoe: int
    mallory: int
    formula: int
    nobody: int
    membership: int
    strength: int
    sleep: int
    cohort_ana: int
    cohort_ben: int
    cohort_closed: int
    sleep_cohort: int
    coach_ana_id: int
    coach_ben_id: int
    enrollment_cleo: int
    enrollment_dan: int
    enrollment_zoe: int
    enrollment_mallory: int
    enrollment_formula: int

    def actor(self, wp_user_id: int) -> Actor:
        return current_actor(self.runtime, wp_user_id)


def build_console_site(make_runtime, tmp_path, state_url: str | None = None):
    """Build the WordPress and state databases of the console tests."""
    wordpress_url = f"sqlite:///{tmp_path}/wordpress-console.sqlite3"
    engine = sa.create_engine(wordpress_url)
    wordpress = WordPressSite(engine, prefix="wp_")
    wordpress.create_schema()
    users = {
        "admin": wordpress.add_user(
            "root", "root@example.org", "Ada Admin", roles=("administrator",)
        ),
        "coach_ana": wordpress.add_user("ana", "ana@example.org", "Ana Coach"),
        "coach_ben": wordpress.add_user("ben", "ben@example.org", "Ben Coach"),
        "stranger": wordpress.add_user("sam", "sam@example.org", "Sam Stranger"),
        "cleo": wordpress.add_user("cleo", "cleo@example.org", "Cleo Client"),
        "dan": wordpress.add_user("dan", "dan@example.org", "dan lowercase"),
        "zoe": wordpress.add_user("zoe", "zoe@example.org", TRICKY_NAME),
        "mallory": wordpress.add_user("mallory", "mal@example.org", SCRIPT_NAME),
        "formula": wordpress.add_user("formula", "-f@example.org", FORMULA_NAME),
        "nobody": wordpress.add_user("nobody", "nobody@example.org", "Nora Nobody"),
    }
    membership = wordpress.add_membership("Monthly coaching")
    engine.dispose()

    runtime = make_runtime(
        state_url=state_url,
        wordpress_url=wordpress_url,
        clock=lambda: NOW,
        api={"secrets": [SECRET]},
    )
    ids = _fill_state(runtime, users, membership)
    return ConsoleSite(
        runtime=runtime, wordpress=wordpress, membership=membership, **users, **ids
    )


def _fill_state(runtime: Runtime, users: dict[str, int], membership: int) -> dict:
    with runtime.db.session() as session:
        ana = Coach(wp_user_id=users["coach_ana"], display_name="Ana Coach")
        ben = Coach(wp_user_id=users["coach_ben"], display_name="Ben Coach")
        strength = Program(slug="strength", title="Strength 💪")
        strength.memberships = [ProgramMembership(membership_id=membership)]
        sleep = Program(slug="sleep", title="Sleep")
        cohort_ana = Cohort(
            program=strength,
            name="Ana's",
            kind=CohortKind.ROLLING,
            coach=ana,
            capacity=3,
        )
        cohort_ben = Cohort(
            program=strength,
            name="Ben's",
            kind=CohortKind.FIXED,
            start_date=dt.date(2026, 2, 2),
            coach=ben,
        )
        cohort_closed = Cohort(
            program=strength,
            name="Closed",
            kind=CohortKind.ROLLING,
            coach=ben,
            is_open=False,
        )
        sleep_cohort = Cohort(
            program=sleep, name="Sleepers", kind=CohortKind.ROLLING, coach=ana
        )
        session.add_all([cohort_ana, cohort_ben, cohort_closed, sleep_cohort])
        session.flush()

        def enroll(user: str, cohort: Cohort, **values) -> Enrollment:
            enrollment = Enrollment(
                wp_user_id=users[user],
                program_id=strength.id,
                cohort_id=cohort.id,
                start_date=dt.date(2026, 2, 2),
                **values,
            )
            session.add(enrollment)
            return enrollment

        cleo = enroll(
            "cleo",
            cohort_ana,
            progress_percent=80,
            last_activity_at=dt.datetime(2026, 3, 1, 12),
        )
        dan = enroll(
            "dan",
            cohort_ana,
            progress_percent=20,
            off_track=True,
            last_activity_at=dt.datetime(2026, 2, 20, 8),
        )
        zoe = enroll("zoe", cohort_ben, progress_percent=50)
        mallory = enroll(
            "mallory",
            cohort_ben,
            progress_percent=10,
            last_activity_at=dt.datetime(2026, 2, 28, 7),
        )
        formula = enroll(
            "formula",
            cohort_ben,
            status=EnrollmentStatus.INACTIVE,
            deactivated_at=dt.datetime(2026, 2, 25),
        )
        session.flush()
        _add_activity(session, cleo, dan, mallory, cohort_ana, cohort_ben)
        return {
            "strength": strength.id,
            "sleep": sleep.id,
            "cohort_ana": cohort_ana.id,
            "cohort_ben": cohort_ben.id,
            "cohort_closed": cohort_closed.id,
            "sleep_cohort": sleep_cohort.id,
            "coach_ana_id": ana.id,
            "coach_ben_id": ben.id,
            "enrollment_cleo": cleo.id,
            "enrollment_dan": dan.id,
            "enrollment_zoe": zoe.id,
            "enrollment_mallory": mallory.id,
            "enrollment_formula": formula.id,
        }


def _add_activity(session, cleo, dan, mallory, cohort_ana, cohort_ben) -> None:
    def entry(kind: ActivityType, enrollment: Enrollment, cohort, when) -> None:
        activity.record(
            session,
            kind,
            wp_user_id=enrollment.wp_user_id,
            program_id=enrollment.program_id,
            cohort_id=cohort.id,
            coach_id=cohort.coach_id,
            enrollment_id=enrollment.id,
            summary=f"{kind.value} entry",
            occurred_at=when,
        )

    entry(ActivityType.PROGRAM_STARTED, cleo, cohort_ana, dt.datetime(2026, 1, 10, 9))
    entry(ActivityType.HABIT_TICKED, cleo, cohort_ana, dt.datetime(2026, 2, 27, 22))
    entry(ActivityType.HABIT_TICKED, cleo, cohort_ana, dt.datetime(2026, 2, 28, 8))
    entry(ActivityType.MILESTONE_COMPLETED, cleo, cohort_ana, dt.datetime(2026, 3, 1))
    entry(ActivityType.OFF_TRACK, dan, cohort_ana, dt.datetime(2026, 2, 20, 8))
    entry(ActivityType.HABIT_TICKED, mallory, cohort_ben, dt.datetime(2026, 2, 28, 7))


@pytest.fixture
def site(make_runtime, tmp_path) -> ConsoleSite:
    return build_console_site(make_runtime, tmp_path)


def _progress(site: ConsoleSite, user: int, **values) -> console.ProgressPage:
    query = console.ProgressQuery(**values)
    return console.list_progress(site.runtime, site.actor(user), query)


def _names(page) -> list[str]:
    return [row.name for row in page.items]


# Client progress


def test_progress_admin_sees_active_clients(site):
    page = _progress(site, site.admin)
    assert page.total == 4
    assert {row.wp_user_id for row in page.items} == {
        site.cleo,
        site.dan,
        site.zoe,
        site.mallory,
    }


def test_progress_default_sort_last_activity(site):
    page = _progress(site, site.admin)
    # Newest activity first; Zoë has none and comes last.
    assert [row.wp_user_id for row in page.items] == [
        site.cleo,
        site.mallory,
        site.dan,
        site.zoe,
    ]


def test_progress_last_activity_ascending_keeps_never_last(site):
    page = _progress(site, site.admin, order="asc")
    assert [row.wp_user_id for row in page.items][-1] == site.zoe
    assert [row.wp_user_id for row in page.items][0] == site.dan


def test_progress_row_fields(site):
    page = _progress(site, site.admin, search="cleo")
    row = page.items[0]
    assert row.name == "Cleo Client"
    assert row.email == "cleo@example.org"
    assert row.program_title == "Strength 💪"
    assert row.cohort_name == "Ana's"
    assert row.coach_name == "Ana Coach"
    assert row.progress_percent == 80
    assert row.off_track is False
    assert row.last_activity_at == dt.datetime(2026, 3, 1, 12)


def test_progress_sort_by_name_ignores_case(site):
    page = _progress(site, site.admin, sort="name")
    assert _names(page) == [SCRIPT_NAME, "Cleo Client", "dan lowercase", TRICKY_NAME]
    descending = _progress(site, site.admin, sort="name", order="desc")
    assert _names(descending) == list(reversed(_names(page)))


def test_progress_sort_by_progress(site):
    page = _progress(site, site.admin, sort="progress")
    assert [row.progress_percent for row in page.items] == [80, 50, 20, 10]


def test_progress_sort_by_program(site):
    runtime = site.runtime
    with runtime.db.session() as session:
        session.add(
            Enrollment(
                wp_user_id=site.nobody,
                program_id=site.sleep,
                cohort_id=site.sleep_cohort,
                start_date=dt.date(2026, 3, 1),
            )
        )
    page = _progress(site, site.admin, sort="program")
    assert [row.program_title for row in page.items][0] == "Sleep"


def test_progress_filters(site):
    by_coach = _progress(site, site.admin, coach_id=site.coach_ben_id)
    assert {row.wp_user_id for row in by_coach.items} == {site.zoe, site.mallory}

    by_cohort = _progress(site, site.admin, cohort_id=site.cohort_ana)
    assert {row.wp_user_id for row in by_cohort.items} == {site.cleo, site.dan}

    by_program = _progress(site, site.admin, program_id=site.sleep)
    assert by_program.total == 0

    off_track = _progress(site, site.admin, off_track=True)
    assert [row.wp_user_id for row in off_track.items] == [site.dan]

    inactive = _progress(site, site.admin, status="inactive")
    assert [row.wp_user_id for row in inactive.items] == [site.formula]

    every = _progress(site, site.admin, status="all")
    assert every.total == 5


def test_progress_search_by_name_and_email(site):
    assert _names(_progress(site, site.admin, search="zoë")) == [TRICKY_NAME]
    by_email = _progress(site, site.admin, search="mal@example")
    assert [row.wp_user_id for row in by_email.items] == [site.mallory]
    assert _progress(site, site.admin, search="no such person").total == 0


def test_progress_search_of_user_without_enrollment(site):
    page = _progress(site, site.admin, search="Nora")
    assert page.total == 0
    assert page.items == []


def test_progress_pagination(site):
    first = _progress(site, site.admin, per_page=3)
    second = _progress(site, site.admin, per_page=3, page=2)
    assert first.total == 4
    assert first.pages == 2
    assert len(first.items) == 3
    assert len(second.items) == 1
    seen = {row.enrollment_id for row in first.items + second.items}
    assert len(seen) == 4


def test_progress_pagination_by_name(site):
    pages = [
        _progress(site, site.admin, sort="name", per_page=2, page=number)
        for number in (1, 2, 3)
    ]
    assert _names(pages[0]) + _names(pages[1]) == [
        SCRIPT_NAME,
        "Cleo Client",
        "dan lowercase",
        TRICKY_NAME,
    ]
    assert pages[2].items == []


@pytest.mark.parametrize(
    "values, message",
    [
        ({"per_page": 101}, "per_page 101"),
        ({"per_page": 0}, "per_page 0"),
        ({"page": 0}, "invalid page 0"),
        ({"page": 1_000_001}, "invalid page 1000001"),
        ({"sort": "email"}, "invalid sort 'email'"),
        ({"order": "up"}, "invalid order"),
        ({"status": "done"}, "invalid status"),
    ],
)
def test_progress_query_rejects(values, message):
    with pytest.raises(InvalidRequest, match=message):
        console.ProgressQuery(**values)


def test_progress_coach_sees_own_cohorts(site):
    page = _progress(site, site.coach_ana, status="all")
    assert {row.wp_user_id for row in page.items} == {site.cleo, site.dan}


def test_progress_coach_filter_by_other_coach_empty(site):
    page = _progress(site, site.coach_ana, coach_id=site.coach_ben_id)
    assert page.total == 0


def test_progress_client_not_found(site):
    with pytest.raises(NotFound):
        _progress(site, site.cleo)


def test_progress_coach_loses_moved_client(site):
    with site.runtime.db.session() as session:
        session.get(Enrollment, site.enrollment_dan).cohort_id = site.cohort_ben
    page = _progress(site, site.coach_ana)
    assert [row.wp_user_id for row in page.items] == [site.cleo]


def test_contacts_wordpress_down(site, monkeypatch):
    def refuse(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(site.runtime.wordpress.engine, "connect", refuse)
    with pytest.raises(Unavailable, match="cannot read WordPress users"):
        console.read_contacts(site.runtime, [site.cleo])


def test_contacts_of_deleted_user(site):
    contacts = console.read_contacts(site.runtime, [site.cleo, 4040])
    assert contacts == {site.cleo: console.Contact("Cleo Client", "cleo@example.org")}


# CSV export


def _parse_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def test_csv_round_trip(site):
    query = console.ProgressQuery(status="all", sort="name")
    rows = console.export_progress(site.runtime, site.actor(site.admin), query)
    parsed = _parse_csv(console.progress_csv(rows, dt.UTC))

    assert parsed[0] == list(console.CSV_HEADER)
    by_id = {int(line[2]): line for line in parsed[1:]}
    assert len(by_id) == 5
    assert by_id[site.zoe][0] == TRICKY_NAME
    assert by_id[site.zoe][3] == "Strength 💪"
    assert by_id[site.mallory][0] == SCRIPT_NAME
    assert by_id[site.cleo][5] == "Ana Coach"
    assert by_id[site.cleo][7] == "80"
    assert by_id[site.cleo][9] == "2026-03-01 12:00"
    assert by_id[site.dan][8] == "yes"
    assert by_id[site.formula][6] == "inactive"


def test_csv_guards_formulas(site):
    query = console.ProgressQuery(status="all")
    rows = console.export_progress(site.runtime, site.actor(site.admin), query)
    parsed = _parse_csv(console.progress_csv(rows, dt.UTC))
    line = next(line for line in parsed[1:] if int(line[2]) == site.formula)
    assert line[0] == "'" + FORMULA_NAME
    assert line[1] == "'-f@example.org"


def test_csv_quotes_special_characters():
    row = console.ProgressRow(
        enrollment_id=1,
        wp_user_id=2,
        name='a,b "c"\nd',
        email="e@example.org",
        program_id=3,
        program_title="+plus",
        cohort_id=4,
        cohort_name="@at",
        coach_id=5,
        coach_name="Ünïcode",
        status="active",
        progress_percent=7,
        off_track=False,
        last_activity_at=None,
        start_date=dt.date(2026, 1, 5),
    )
    text = console.progress_csv([row], dt.UTC)
    assert '"a,b ""c""\nd"' in text
    assert text.endswith("\r\n")
    line = _parse_csv(text)[1]
    assert line[0] == 'a,b "c"\nd'
    assert line[3] == "'+plus"
    assert line[4] == "'@at"
    assert line[5] == "Ünïcode"
    assert line[9] == ""
    assert line[10] == "2026-01-05"


def test_csv_time_in_site_zone(site):
    site.wordpress.set_option("timezone_string", "Europe/Paris")
    query = console.ProgressQuery(search="cleo")
    rows = console.export_progress(site.runtime, site.actor(site.admin), query)
    parsed = _parse_csv(console.progress_csv(rows, site.runtime.site_zone()))
    assert parsed[1][9] == "2026-03-01 13:00"


def test_export_coach_limited(site):
    query = console.ProgressQuery(status="all")
    rows = console.export_progress(site.runtime, site.actor(site.coach_ben), query)
    assert {row.wp_user_id for row in rows} == {site.zoe, site.mallory, site.formula}


# Activity feed


def _feed(site: ConsoleSite, user: int, **values) -> console.FeedPage:
    query = console.FeedQuery(**values)
    return console.list_activity(site.runtime, site.actor(user), query)


def test_feed_newest_first(site):
    page = _feed(site, site.admin)
    times = [entry.occurred_at for entry in page.items]
    assert times == sorted(times, reverse=True)
    assert len(times) == 6
    assert page.items[0].client_name == "Cleo Client"
    assert page.items[0].program_title == "Strength 💪"


def test_feed_filter_by_type(site):
    page = _feed(site, site.admin, types=("habit_ticked",))
    assert [entry.type for entry in page.items] == ["habit_ticked"] * 3
    both = _feed(site, site.admin, types=("off_track", "milestone_completed"))
    assert {entry.type for entry in both.items} == {
        "off_track",
        "milestone_completed",
    }


def test_feed_filter_by_date_range(site):
    page = _feed(
        site,
        site.admin,
        date_from=dt.date(2026, 2, 28),
        date_to=dt.date(2026, 2, 28),
    )
    assert [entry.occurred_at for entry in page.items] == [
        dt.datetime(2026, 2, 28, 8),
        dt.datetime(2026, 2, 28, 7),
    ]


def test_feed_date_range_uses_site_days(site):
    # 22:00 UTC on 27 February is already 28 February in Tokyo.
    site.wordpress.set_option("timezone_string", "Asia/Tokyo")
    page = _feed(site, site.admin, date_from=dt.date(2026, 2, 28))
    assert dt.datetime(2026, 2, 27, 22) in [entry.occurred_at for entry in page.items]
    until = _feed(site, site.admin, date_to=dt.date(2026, 2, 27))
    assert dt.datetime(2026, 2, 27, 22) not in [
        entry.occurred_at for entry in until.items
    ]


def test_feed_inverted_range_empty(site):
    page = _feed(
        site, site.admin, date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 1)
    )
    assert page.items == []
    assert page.has_next is False


def test_feed_calendar_ends(site):
    site.wordpress.set_option("timezone_string", "Asia/Tokyo")
    page = _feed(site, site.admin, date_from=dt.date.min, date_to=dt.date.max)
    assert len(page.items) == 6


def test_feed_pagination(site):
    first = _feed(site, site.admin, per_page=4)
    second = _feed(site, site.admin, per_page=4, page=2)
    assert first.has_next
    assert not second.has_next
    assert len(first.items) == 4
    assert len(second.items) == 2
    ids = [entry.id for entry in first.items + second.items]
    assert len(set(ids)) == 6


def test_feed_coach_scope(site):
    page = _feed(site, site.coach_ben)
    assert [entry.wp_user_id for entry in page.items] == [site.mallory]


def test_feed_filters_program_and_coach(site):
    assert _feed(site, site.admin, program_id=site.sleep).items == []
    by_coach = _feed(site, site.admin, coach_id=site.coach_ben_id)
    assert [entry.wp_user_id for entry in by_coach.items] == [site.mallory]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"types": ("teleported",)}, "invalid activity type 'teleported'"),
        ({"per_page": 500}, "per_page 500"),
    ],
)
def test_feed_query_rejects(values, message):
    with pytest.raises(InvalidRequest, match=message):
        console.FeedQuery(**values)


# Programs


def _program_input(**values) -> console.ProgramInput:
    data = {
        "slug": "mobility",
        "title": "Mobility",
        "milestones": [{"title": "Touch toes", "due_amount": 2, "due_unit": "weeks"}],
        "habits": [
            {
                "title": "Stretch",
                "schedule": "weekdays",
                "weekdays": ["mon", "thu"],
                "length_amount": 6,
                "length_unit": "weeks",
            }
        ],
    }
    data.update(values)
    return console.parse_body(console.ProgramInput, data)


def test_create_program(site):
    body = _program_input(memberships=[site.membership])
    program_id = console.create_program(site.runtime, site.actor(site.admin), body)
    detail = console.program_detail(site.runtime, site.actor(site.admin), program_id)
    assert detail.slug == "mobility"
    assert [m["title"] for m in detail.milestones] == ["Touch toes"]
    assert detail.milestones[0]["due_amount"] == 2
    assert detail.habits[0]["weekdays"] == ["mon", "thu"]
    assert [m.title for m in detail.memberships] == ["Monthly coaching"]
    assert detail.locked is False


def test_create_program_slug_taken(site):
    with pytest.raises(Conflict, match="slug 'strength' already exists"):
        console.create_program(
            site.runtime, site.actor(site.admin), _program_input(slug="strength")
        )


def test_create_program_unknown_membership(site):
    with pytest.raises(Conflict, match="MemberPress has no membership 9999"):
        console.create_program(
            site.runtime, site.actor(site.admin), _program_input(memberships=[9999])
        )


@pytest.mark.parametrize(
    "habit, message",
    [
        ({"schedule": "weekdays"}, "missing weekdays"),
        ({"schedule": "daily", "weekdays": ["mon"]}, "weekdays applies only"),
        ({"schedule": "interval"}, "missing every_days"),
        ({"schedule": "daily", "every_days": 2}, "every_days applies only"),
        ({"schedule": "weekdays", "weekdays": ["mon", "mon"]}, "duplicate weekday"),
        ({"schedule": "weekdays", "weekdays": ["Mon"]}, "weekdays"),
        ({"schedule": "daily", "length_amount": 10_001}, "length_amount"),
    ],
)
def test_habit_body_rules(habit, message):
    values = {"title": "H", "length_amount": 2, "length_unit": "weeks", **habit}
    with pytest.raises(InvalidRequest, match=message):
        console.parse_body(
            console.ProgramInput, {"slug": "x", "title": "X", "habits": [values]}
        )


def test_program_body_validation():
    with pytest.raises(InvalidRequest, match="milestones, item 1, due_amount"):
        console.parse_body(
            console.ProgramInput,
            {
                "slug": "x",
                "title": "X",
                "milestones": [{"title": "T", "due_amount": -1, "due_unit": "days"}],
            },
        )
    with pytest.raises(InvalidRequest, match="title"):
        console.parse_body(console.ProgramInput, {"slug": "x", "title": " padded"})
    with pytest.raises(InvalidRequest, match="duplicate membership"):
        console.parse_body(
            console.ProgramInput, {"slug": "x", "title": "X", "memberships": [4, 4]}
        )
    with pytest.raises(InvalidRequest, match="description may be left out"):
        console.parse_body(console.ProgramChanges, {"description": None})
    with pytest.raises(InvalidRequest, match="slug"):
        console.parse_body(console.ProgramInput, {"slug": "Not A Slug", "title": "X"})
    with pytest.raises(InvalidRequest, match="colour: unknown field"):
        console.parse_body(
            console.ProgramInput, {"slug": "x", "title": "X", "colour": "red"}
        )


def test_update_unlocked_content(site):
    changes = console.parse_body(
        console.ProgramChanges,
        {
            "milestones": [
                {"title": "Sleep 8 hours", "due_amount": 1, "due_unit": "weeks"}
            ],
            "habits": [],
        },
    )
    console.update_program(site.runtime, site.actor(site.admin), site.sleep, changes)
    detail = console.program_detail(site.runtime, site.actor(site.admin), site.sleep)
    assert [m["title"] for m in detail.milestones] == ["Sleep 8 hours"]


def test_locked_content_conflict(site):
    changes = console.parse_body(
        console.ProgramChanges,
        {"milestones": [{"title": "New", "due_amount": 1, "due_unit": "weeks"}]},
    )
    with pytest.raises(Conflict) as raised:
        console.update_program(
            site.runtime, site.actor(site.admin), site.strength, changes
        )
    message = raised.value.message
    assert "locked" in message
    assert "5 enrollments" in message
    assert "Duplicate the program" in message


def test_locked_content_inactive_enrollment_counts(site):
    with site.runtime.db.session() as session:
        session.add(
            Enrollment(
                wp_user_id=site.nobody,
                program_id=site.sleep,
                cohort_id=site.sleep_cohort,
                start_date=dt.date(2026, 3, 1),
                status=EnrollmentStatus.INACTIVE,
            )
        )
    changes = console.parse_body(console.ProgramChanges, {"habits": []})
    detail = console.program_detail(site.runtime, site.actor(site.admin), site.sleep)
    assert detail.locked
    # The sleep program has no habits, so an empty list changes nothing.
    console.update_program(site.runtime, site.actor(site.admin), site.sleep, changes)
    with pytest.raises(Conflict, match="1 enrollment"):
        console.update_program(
            site.runtime,
            site.actor(site.admin),
            site.sleep,
            console.parse_body(
                console.ProgramChanges,
                {"milestones": [{"title": "M", "due_amount": 1, "due_unit": "days"}]},
            ),
        )


def test_locked_program_settings_change(site):
    changes = console.parse_body(
        console.ProgramChanges,
        {
            "title": "Strength 2",
            "description": "New text",
            "messaging_enabled": False,
            "memberships": [],
        },
    )
    console.update_program(site.runtime, site.actor(site.admin), site.strength, changes)
    detail = console.program_detail(site.runtime, site.actor(site.admin), site.strength)
    assert detail.title == "Strength 2"
    assert detail.description == "New text"
    assert detail.messaging_enabled is False
    assert detail.memberships == []


def test_delete_program_with_enrollments_conflict(site):
    with pytest.raises(Conflict, match="cannot be deleted"):
        console.delete_program(site.runtime, site.actor(site.admin), site.strength)


def test_delete_program_removes_cohorts(site):
    console.delete_program(site.runtime, site.actor(site.admin), site.sleep)
    with site.runtime.db.session() as session:
        assert session.get(Program, site.sleep) is None
        assert session.get(Cohort, site.sleep_cohort) is None


def test_duplicate_program(site):
    body = console.DuplicateInput(slug="strength-2")
    copy_id = console.duplicate_program(
        site.runtime, site.actor(site.admin), site.strength, body
    )
    copy = console.program_detail(site.runtime, site.actor(site.admin), copy_id)
    assert copy.title == "Strength 💪 (copy)"
    assert copy.memberships == []
    assert copy.cohorts == []
    assert copy.locked is False

    changes = console.parse_body(
        console.ProgramChanges,
        {"milestones": [{"title": "New", "due_amount": 1, "due_unit": "weeks"}]},
    )
    console.update_program(site.runtime, site.actor(site.admin), copy_id, changes)


def test_duplicate_copies_content(site):
    admin = site.actor(site.admin)
    source = console.create_program(site.runtime, admin, _program_input())
    copy_id = console.duplicate_program(
        site.runtime,
        admin,
        source,
        console.DuplicateInput(slug="mobility-2", title="Mobility again"),
    )
    original = console.program_detail(site.runtime, admin, source)
    copy = console.program_detail(site.runtime, admin, copy_id)
    assert copy.title == "Mobility again"

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    assert strip(copy.milestones) == strip(original.milestones)
    assert strip(copy.habits) == strip(original.habits)


def test_duplicate_slug_taken(site):
    with pytest.raises(Conflict, match="slug 'sleep'"):
        console.duplicate_program(
            site.runtime,
            site.actor(site.admin),
            site.strength,
            console.DuplicateInput(slug="sleep"),
        )


def test_coach_cannot_change_programs(site):
    coach = site.actor(site.coach_ana)
    changes = console.ProgramChanges(title="Mine")
    attempts = [
        lambda: console.create_program(site.runtime, coach, _program_input()),
        lambda: console.update_program(site.runtime, coach, site.strength, changes),
        lambda: console.delete_program(site.runtime, coach, site.sleep),
        lambda: console.duplicate_program(
            site.runtime, coach, site.strength, console.DuplicateInput(slug="x")
        ),
        lambda: console.add_cohort(site.runtime, coach, site.sleep, _cohort_entry()),
        lambda: console.update_cohort(
            site.runtime, coach, site.cohort_ana, console.CohortChanges(capacity=9)
        ),
    ]
    for attempt in attempts:
        with pytest.raises(console.Forbidden, match="only WordPress administrators"):
            attempt()


def test_client_cannot_see_programs(site):
    with pytest.raises(NotFound):
        console.list_programs(site.runtime, site.actor(site.cleo))
    with pytest.raises(NotFound):
        console.update_program(
            site.runtime, site.actor(site.cleo), site.sleep, console.ProgramChanges()
        )


def test_coach_sees_led_programs_only(site):
    programs = console.list_programs(site.runtime, site.actor(site.coach_ben))
    assert [program.slug for program in programs] == ["strength"]
    assert programs[0].cohorts == 2
    assert programs[0].active_clients == 2
    with pytest.raises(NotFound):
        console.program_detail(site.runtime, site.actor(site.coach_ben), site.sleep)
    detail = console.program_detail(
        site.runtime, site.actor(site.coach_ben), site.strength
    )
    assert {cohort.name for cohort in detail.cohorts} == {"Ben's", "Closed"}


def test_program_list_counts(site):
    programs = console.list_programs(site.runtime, site.actor(site.admin))
    strength = next(p for p in programs if p.slug == "strength")
    assert strength.enrollments == 5
    assert strength.active_clients == 4
    assert strength.cohorts == 3
    assert strength.memberships == [site.membership]


# Cohorts


def _cohort_entry(**values) -> console.CohortInput:
    data = {"name": "Summer", "coach": 3}
    data.update(values)
    return console.parse_body(console.CohortInput, data)


def test_add_cohort_to_locked_program(site):
    entry = _cohort_entry(
        coach=site.coach_ana,
        type="fixed",
        start_date=dt.date(2026, 6, 1),
        capacity=10,
        appointments=True,
        booking_url="https://booking.example.org/ana",
    )
    cohort_id = console.add_cohort(
        site.runtime, site.actor(site.admin), site.strength, entry
    )
    detail = console.program_detail(site.runtime, site.actor(site.admin), site.strength)
    cohort = next(c for c in detail.cohorts if c.id == cohort_id)
    assert cohort.type == "fixed"
    assert cohort.start_date == dt.date(2026, 6, 1)
    assert cohort.coach_name == "Ana Coach"
    assert cohort.capacity == 10
    assert cohort.booking_url == "https://booking.example.org/ana"


def test_add_cohort_coach_not_registered(site):
    with pytest.raises(Conflict, match="not a registered coach"):
        console.add_cohort(
            site.runtime,
            site.actor(site.admin),
            site.sleep,
            _cohort_entry(coach=site.stranger),
        )


def test_add_cohort_name_taken(site):
    with pytest.raises(Conflict, match="already has a cohort named"):
        console.add_cohort(
            site.runtime,
            site.actor(site.admin),
            site.strength,
            _cohort_entry(name="Ana's", coach=site.coach_ana),
        )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://booking.example.org",
        "javascript:alert(1)",
        "booking.example.org",
        "https://",
        "https://booking.example.org/a b",
        "https://[::1]/",
        "https://" + "a" * 500,
    ],
)
def test_cohort_booking_url_must_be_web(url):
    with pytest.raises(InvalidRequest, match="booking_url"):
        console.parse_body(
            console.CohortChanges, {"appointments": True, "booking_url": url}
        )


@pytest.mark.parametrize(
    "url",
    ["https://calendly.com/ana/30min?month=2026-03", "http://127.0.0.1:8080/#book"],
)
def test_cohort_booking_url_accepted(url):
    changes = console.parse_body(console.CohortChanges, {"booking_url": url})
    assert changes.booking_url == url


@pytest.mark.parametrize(
    "values, message",
    [
        ({"type": "fixed"}, "missing start_date"),
        ({"start_date": "2026-05-01"}, "start_date is set on a rolling cohort"),
        ({"appointments": True}, "missing booking_url"),
        ({"capacity": 0}, "capacity"),
        ({"name": " Summer"}, "name"),
        ({"coach": None}, "coach: Input should be a valid integer"),
    ],
)
def test_cohort_input_rules(values, message):
    with pytest.raises(InvalidRequest, match=message):
        _cohort_entry(**values)


def test_update_cohort_fields(site):
    console.update_cohort(
        site.runtime,
        site.actor(site.admin),
        site.cohort_ana,
        console.parse_body(
            console.CohortChanges,
            {
                "capacity": None,
                "open": False,
                "appointments": True,
                "booking_url": "http://calendar.example.org/ana",
                "type": "fixed",
                "start_date": "2026-04-01",
            },
        ),
    )
    with site.runtime.db.session() as session:
        cohort = session.get(Cohort, site.cohort_ana)
        assert cohort.capacity is None
        assert cohort.is_open is False
        assert cohort.appointments_enabled is True
        assert cohort.kind is CohortKind.FIXED
        assert cohort.start_date == dt.date(2026, 4, 1)


def test_update_cohort_to_rolling_drops_start(site):
    console.update_cohort(
        site.runtime,
        site.actor(site.admin),
        site.cohort_ben,
        console.CohortChanges(type="rolling"),
    )
    with site.runtime.db.session() as session:
        assert session.get(Cohort, site.cohort_ben).start_date is None


def test_update_cohort_fixed_needs_start(site):
    with pytest.raises(Conflict, match="would make the cohort invalid.*start_date"):
        console.update_cohort(
            site.runtime,
            site.actor(site.admin),
            site.cohort_ana,
            console.CohortChanges(type="fixed"),
        )


def test_assign_cohort_to_other_coach(site):
    console.update_cohort(
        site.runtime,
        site.actor(site.admin),
        site.cohort_ana,
        console.CohortChanges(coach=site.coach_ben),
    )
    page = _progress(site, site.coach_ben)
    assert {row.wp_user_id for row in page.items} == {
        site.cleo,
        site.dan,
        site.zoe,
        site.mallory,
    }
    assert _progress(site, site.coach_ana).total == 0


# Coaches


def test_register_coach(site):
    coach, created = console.register_coach(
        site.runtime, site.actor(site.admin), site.stranger
    )
    assert created
    assert coach.display_name == "Sam Stranger"
    assert coach.email == "sam@example.org"
    again, created_again = console.register_coach(
        site.runtime, site.actor(site.admin), site.stranger
    )
    assert not created_again
    assert again.id == coach.id


def test_register_coach_unknown_user(site):
    with pytest.raises(NotFound, match="WordPress user 4040 not found"):
        console.register_coach(site.runtime, site.actor(site.admin), 4040)


def test_coach_detail_most_active(site):
    detail = console.coach_detail(
        site.runtime, site.actor(site.admin), site.coach_ana_id
    )
    assert [cohort.name for cohort in detail.cohorts] == ["Sleepers", "Ana's"]
    # Cleo's program_started entry is older than 30 days and is not counted.
    assert [(c.wp_user_id, c.entries) for c in detail.most_active] == [
        (site.cleo, 3),
        (site.dan, 1),
    ]
    assert detail.coach.active_clients == 2


def test_coach_detail_scope(site):
    own = console.coach_detail(
        site.runtime, site.actor(site.coach_ana), site.coach_ana_id
    )
    assert own.coach.wp_user_id == site.coach_ana
    with pytest.raises(NotFound):
        console.coach_detail(
            site.runtime, site.actor(site.coach_ana), site.coach_ben_id
        )


def test_list_coaches_scope(site):
    everyone = console.list_coaches(site.runtime, site.actor(site.admin))
    assert [coach.display_name for coach in everyone] == ["Ana Coach", "Ben Coach"]
    own = console.list_coaches(site.runtime, site.actor(site.coach_ben))
    assert [coach.id for coach in own] == [site.coach_ben_id]


def test_search_users_marks_coaches(site):
    found = console.search_users(site.runtime, site.actor(site.admin), "example.org")
    by_id = {user.id: user for user in found}
    assert by_id[site.coach_ana].coach_id == site.coach_ana_id
    assert by_id[site.stranger].coach_id is None
    with pytest.raises(console.Forbidden):
        console.search_users(site.runtime, site.actor(site.coach_ana), "a")


# Clients


def _entries(site: ConsoleSite, kind: str, enrollment_id: int) -> list[Activity]:
    with site.runtime.db.session() as session:
        return list(
            session.scalars(
                sa.select(Activity).where(
                    Activity.type == kind, Activity.enrollment_id == enrollment_id
                )
            )
        )


def test_add_client_by_hand(site):
    info = console.add_client(
        site.runtime, site.actor(site.admin), site.nobody, site.sleep_cohort
    )
    assert info.enrolled_by_hand
    assert info.status == "active"
    assert info.start_date == NOW.date()
    entries = _entries(site, "enrolled", info.id)
    assert len(entries) == 1
    assert entries[0].actor_wp_user_id == site.admin
    assert entries[0].coach_id == site.coach_ana_id
    assert entries[0].details == {"by_hand": True, "reactivated": False}


def test_add_client_fixed_cohort_start(site):
    info = console.add_client(
        site.runtime, site.actor(site.admin), site.nobody, site.cohort_ben
    )
    assert info.start_date == dt.date(2026, 2, 2)


def test_add_client_full_cohort(site):
    with site.runtime.db.session() as session:
        session.get(Cohort, site.cohort_ana).capacity = 2
    with pytest.raises(Conflict, match="is full: 2 active clients of 2"):
        console.add_client(
            site.runtime, site.actor(site.admin), site.nobody, site.cohort_ana
        )


def test_add_client_closed_cohort(site):
    with pytest.raises(Conflict, match="closed"):
        console.add_client(
            site.runtime, site.actor(site.admin), site.nobody, site.cohort_closed
        )


def test_add_client_already_active(site):
    with pytest.raises(Conflict, match="already active"):
        console.add_client(
            site.runtime, site.actor(site.admin), site.cleo, site.cohort_ben
        )


def test_add_client_reactivates(site):
    info = console.add_client(
        site.runtime, site.actor(site.admin), site.formula, site.cohort_ana
    )
    assert info.id == site.enrollment_formula
    assert info.status == "active"
    assert info.cohort_id == site.cohort_ana
    assert info.enrolled_by_hand
    assert info.start_date == dt.date(2026, 2, 2)
    assert _entries(site, "enrolled", info.id)[0].details["reactivated"] is True


def test_add_client_unknown_user(site):
    with pytest.raises(NotFound, match="WordPress user 4040 not found"):
        console.add_client(site.runtime, site.actor(site.admin), 4040, site.cohort_ana)


def test_assign_cohort(site):
    info = console.assign_cohort(
        site.runtime, site.actor(site.admin), site.enrollment_cleo, site.cohort_ben
    )
    assert info.cohort_id == site.cohort_ben
    assert info.start_date == dt.date(2026, 2, 2)
    entries = _entries(site, "cohort_changed", site.enrollment_cleo)
    assert len(entries) == 1
    assert entries[0].actor_wp_user_id == site.admin
    assert entries[0].coach_id == site.coach_ben_id
    assert entries[0].details == {
        "from_cohort_id": site.cohort_ana,
        "to_cohort_id": site.cohort_ben,
        "from_coach_id": site.coach_ana_id,
    }


def test_assign_cohort_full(site):
    with site.runtime.db.session() as session:
        session.get(Cohort, site.cohort_ana).capacity = 2
    with pytest.raises(Conflict, match="is full"):
        console.assign_cohort(
            site.runtime, site.actor(site.admin), site.enrollment_zoe, site.cohort_ana
        )
    assert _entries(site, "cohort_changed", site.enrollment_zoe) == []


def test_assign_inactive_ignores_capacity(site):
    with site.runtime.db.session() as session:
        session.get(Cohort, site.cohort_ana).capacity = 2
    info = console.assign_cohort(
        site.runtime, site.actor(site.admin), site.enrollment_formula, site.cohort_ana
    )
    assert info.cohort_id == site.cohort_ana


def test_assign_cohort_other_program(site):
    with pytest.raises(Conflict, match="belongs to program 'Sleep'"):
        console.assign_cohort(
            site.runtime,
            site.actor(site.admin),
            site.enrollment_cleo,
            site.sleep_cohort,
        )


def test_assign_same_cohort_conflict(site):
    with pytest.raises(Conflict, match="already in cohort"):
        console.assign_cohort(
            site.runtime, site.actor(site.admin), site.enrollment_cleo, site.cohort_ana
        )


def test_unenroll(site):
    result = console.unenroll(site.runtime, site.actor(site.admin), site.enrollment_dan)
    assert result.enrollment.status == "inactive"
    assert result.enrollment.deactivated_at == NOW.replace(tzinfo=None)
    assert result.granting_memberships == []
    entries = _entries(site, "unenrolled", site.enrollment_dan)
    assert len(entries) == 1
    assert entries[0].actor_wp_user_id == site.admin
    assert entries[0].details == {"reason": "by_hand"}
    with site.runtime.db.session() as session:
        # Progress and history stay.
        assert session.get(Enrollment, site.enrollment_dan).progress_percent == 20


def test_unenroll_twice_conflict(site):
    console.unenroll(site.runtime, site.actor(site.admin), site.enrollment_dan)
    with pytest.raises(Conflict, match="already inactive"):
        console.unenroll(site.runtime, site.actor(site.admin), site.enrollment_dan)


def test_unenroll_reports_granting_membership(site):
    site.wordpress.add_transaction(site.cleo, site.membership)
    result = console.unenroll(
        site.runtime, site.actor(site.admin), site.enrollment_cleo
    )
    assert result.granting_memberships == [site.membership]


def test_unenroll_outlasts_granting_membership(site):
    site.wordpress.add_transaction(site.cleo, site.membership)
    admin = site.actor(site.admin)
    console.unenroll(site.runtime, admin, site.enrollment_cleo)

    reconcile_member(site.runtime, site.cleo)
    assert _status(site, site.enrollment_cleo) == EnrollmentStatus.INACTIVE

    with site.runtime.db.session() as session:
        cohort_id = session.get(Enrollment, site.enrollment_cleo).cohort_id
    console.add_client(site.runtime, admin, site.cleo, cohort_id)
    reconcile_member(site.runtime, site.cleo)
    assert _status(site, site.enrollment_cleo) == EnrollmentStatus.ACTIVE


def _status(site, enrollment_id: int) -> EnrollmentStatus:
    with site.runtime.db.session() as session:
        return session.get(Enrollment, enrollment_id).status


def test_coach_client_changes(site):
    coach = site.actor(site.coach_ana)
    # Another coach's client: not found. Own client: forbidden.
    with pytest.raises(NotFound):
        console.unenroll(site.runtime, coach, site.enrollment_zoe)
    with pytest.raises(NotFound):
        console.assign_cohort(site.runtime, coach, site.enrollment_zoe, site.cohort_ana)
    with pytest.raises(console.Forbidden):
        console.unenroll(site.runtime, coach, site.enrollment_cleo)
    with pytest.raises(console.Forbidden):
        console.assign_cohort(
            site.runtime, coach, site.enrollment_cleo, site.cohort_ben
        )
    with pytest.raises(console.Forbidden):
        console.add_client(site.runtime, coach, site.nobody, site.cohort_ana)


def test_client_detail(site):
    detail = console.client_detail(site.runtime, site.actor(site.admin), site.cleo)
    assert detail.name == "Cleo Client"
    assert detail.login == "cleo"
    assert [e.program_title for e in detail.enrollments] == ["Strength 💪"]
    assert [entry.type for entry in detail.activity] == [
        "milestone_completed",
        "habit_ticked",
        "habit_ticked",
        "program_started",
    ]
    assert {cohort.id for cohort in detail.cohort_choices} == {
        site.cohort_ana,
        site.cohort_ben,
        site.cohort_closed,
        site.sleep_cohort,
    }


def test_client_detail_of_user_without_enrollment(site):
    detail = console.client_detail(site.runtime, site.actor(site.admin), site.nobody)
    assert detail.enrollments == []
    assert detail.exists_in_wordpress
    with pytest.raises(NotFound):
        console.client_detail(site.runtime, site.actor(site.admin), 4040)


def test_client_detail_coach_scope(site):
    coach = site.actor(site.coach_ana)
    detail = console.client_detail(site.runtime, coach, site.cleo)
    assert detail.cohort_choices == []
    for other in (site.zoe, site.nobody, site.coach_ben):
        with pytest.raises(NotFound):
            console.client_detail(site.runtime, coach, other)


def test_list_clients(site):
    page = console.list_clients(
        site.runtime, site.actor(site.admin), console.ClientQuery()
    )
    assert page.total == 5
    first = page.items[0]
    assert first.wp_user_id == site.cleo
    assert first.programs == ["Strength 💪"]
    assert first.active == 1
    searched = console.list_clients(
        site.runtime, site.actor(site.admin), console.ClientQuery(search="DAN")
    )
    assert [row.wp_user_id for row in searched.items] == [site.dan]


def test_list_clients_coach_scope(site):
    page = console.list_clients(
        site.runtime, site.actor(site.coach_ben), console.ClientQuery()
    )
    assert {row.wp_user_id for row in page.items} == {
        site.zoe,
        site.mallory,
        site.formula,
    }


def test_list_memberships(site):
    memberships = console.list_memberships(site.runtime, site.actor(site.admin))
    assert [(m.id, m.title, m.program_ids) for m in memberships] == [
        (site.membership, "Monthly coaching", [site.strength])
    ]


def test_choices_scope(site):
    admin = console.program_choices(site.runtime, site.actor(site.admin))
    assert [choice.label for choice in admin] == ["Sleep", "Strength 💪"]
    coach = console.program_choices(site.runtime, site.actor(site.coach_ben))
    assert [choice.label for choice in coach] == ["Strength 💪"]
    coaches = console.coach_choices(site.runtime, site.actor(site.coach_ben))
    assert [choice.id for choice in coaches] == [site.coach_ben_id]


# Capacity under concurrency, on MariaDB where rows are locked


@pytest.mark.mariadb
def test_concurrent_adds_respect_capacity(
    make_runtime, tmp_path, mysql_database_factory
):
    site = build_console_site(
        make_runtime, tmp_path, state_url=mysql_database_factory("console")
    )
    with site.runtime.db.session() as session:
        session.get(Cohort, site.sleep_cohort).capacity = 1
    admin = site.actor(site.admin)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def add(wp_user_id: int) -> None:
        barrier.wait()
        try:
            console.add_client(site.runtime, admin, wp_user_id, site.sleep_cohort)
            outcomes.append("added")
        except Conflict:
            outcomes.append("full")

    threads = [
        threading.Thread(target=add, args=(user,)) for user in (site.nobody, site.cleo)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["added", "full"]
    with site.runtime.db.session() as session:
        count = session.scalar(
            sa.select(sa.func.count()).where(Enrollment.cohort_id == site.sleep_cohort)
        )
    assert count == 1
