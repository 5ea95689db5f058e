"""Tests of roles and object visibility on a WordPress database from WordPressSite."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from bridge.auth import (
    Actor,
    can_see_cohort,
    can_see_enrollment,
    current_actor,
    load_activity,
    load_cohort,
    load_enrollment,
    load_habit,
    load_milestone,
    require_admin,
    require_coach_or_admin,
    visible_enrollments,
)
from bridge.errors import NotFound, Unauthorized, Unavailable
from bridge.models import (
    Activity,
    Coach,
    Cohort,
    CohortKind,
    DueUnit,
    Enrollment,
    Habit,
    Milestone,
    Program,
    ScheduleKind,
)
from sync.reader import WordPressUnavailable
from tests.wpsite import WordPressSite


@dataclass
class Site:
    """Ids of the users and objects that the tests refer to."""

    runtime: object
    admin: int
    coach_ana: int
    coach_ben: int
    client_cleo: int
    client_dan: int
    cohort_ana: int
    cohort_ben: int
    enrollment_cleo: int
    enrollment_dan: int
    milestone: int
    other_milestone: int
    habit: int
    activity_cleo: int
    activity_dan: int
    activity_dan_without_enrollment: int


@pytest.fixture
def site(make_runtime, tmp_path) -> Site:
    wordpress_url = f"sqlite:///{tmp_path}/wordpress.sqlite3"
    engine = sa.create_engine(wordpress_url)
    wordpress = WordPressSite(engine, prefix="wp_")
    wordpress.create_schema()
    admin = wordpress.add_user(
        "root", "root@example.org", "Site Admin", roles=("administrator",)
    )
    coach_ana = wordpress.add_user("ana", "ana@example.org", "Ana Coach")
    coach_ben = wordpress.add_user("ben", "ben@example.org", "Ben Coach")
    client_cleo = wordpress.add_user("cleo", "cleo@example.org", "Cleo Client")
    client_dan = wordpress.add_user("dan", "dan@example.org", "Dan Client")
    engine.dispose()

    runtime = make_runtime(wordpress_url=wordpress_url)
    with runtime.db.session() as session:
        program = Program(slug="strength", title="Strength")
        other_program = Program(slug="sleep", title="Sleep")
        milestone = Milestone(
            program=program, title="First squat", due_amount=1, due_unit=DueUnit.WEEKS
        )
        other_milestone = Milestone(
            program=other_program,
            title="Bed by ten",
            due_amount=2,
            due_unit=DueUnit.WEEKS,
        )
        habit = Habit(
            program=program,
            title="Walk",
            schedule=ScheduleKind.DAILY,
            length_amount=4,
            length_unit=DueUnit.WEEKS,
        )
        ana = Coach(wp_user_id=coach_ana, display_name="Ana Coach")
        ben = Coach(wp_user_id=coach_ben, display_name="Ben Coach")
        cohort_ana = Cohort(
            program=program, name="Ana's", kind=CohortKind.ROLLING, coach=ana
        )
        cohort_ben = Cohort(
            program=program, name="Ben's", kind=CohortKind.ROLLING, coach=ben
        )
        session.add_all([other_milestone, habit, cohort_ana, cohort_ben])
        session.flush()
        start = dt.date(2026, 3, 2)
        cleo = Enrollment(
            wp_user_id=client_cleo,
            program_id=program.id,
            cohort_id=cohort_ana.id,
            start_date=start,
        )
        dan = Enrollment(
            wp_user_id=client_dan,
            program_id=program.id,
            cohort_id=cohort_ana.id,
            start_date=start,
        )
        session.add_all([cleo, dan])
        session.flush()
        activity_cleo = Activity(
            type="enrolled", wp_user_id=client_cleo, enrollment_id=cleo.id
        )
        activity_dan = Activity(
            type="enrolled", wp_user_id=client_dan, enrollment_id=dan.id
        )
        activity_dan_without_enrollment = Activity(
            type="no_open_cohort", wp_user_id=client_dan
        )
        session.add_all([activity_cleo, activity_dan, activity_dan_without_enrollment])
        session.flush()
        return Site(
            runtime=runtime,
            admin=admin,
            coach_ana=coach_ana,
            coach_ben=coach_ben,
            client_cleo=client_cleo,
            client_dan=client_dan,
            cohort_ana=cohort_ana.id,
            cohort_ben=cohort_ben.id,
            enrollment_cleo=cleo.id,
            enrollment_dan=dan.id,
            milestone=milestone.id,
            other_milestone=other_milestone.id,
            habit=habit.id,
            activity_cleo=activity_cleo.id,
            activity_dan=activity_dan.id,
            activity_dan_without_enrollment=activity_dan_without_enrollment.id,
        )


def _actor(site: Site, user_id: int) -> Actor:
    return current_actor(site.runtime, user_id)


def _move_dan_to_ben(site: Site) -> None:
    with site.runtime.db.session() as session:
        session.get(Enrollment, site.enrollment_dan).cohort_id = site.cohort_ben


def _load_everything(site: Site, actor: Actor, enrollment_id: int) -> list[str]:
    """Return the loaders that raised NotFound for one enrollment's objects."""
    loaders = {
        "enrollment": lambda s: load_enrollment(s, actor, enrollment_id),
        "milestone": lambda s: load_milestone(s, actor, enrollment_id, site.milestone),
        "habit": lambda s: load_habit(s, actor, enrollment_id, site.habit),
    }
    hidden = []
    for name, loader in loaders.items():
        with site.runtime.db.session() as session:
            try:
                loader(session)
            except NotFound:
                hidden.append(name)
    return hidden


def test_actor_administrator(site):
    actor = _actor(site, site.admin)
    assert actor == Actor(
        wp_user_id=site.admin, is_admin=True, coach_id=None, display_name="Site Admin"
    )


def test_actor_coach(site):
    actor = _actor(site, site.coach_ana)
    assert actor.is_coach
    assert actor.coach_id is not None
    assert not actor.is_admin
    assert actor.display_name == "Ana Coach"


def test_actor_client(site):
    actor = _actor(site, site.client_cleo)
    assert not actor.is_coach
    assert not actor.is_admin


def test_actor_without_user_rejected(site):
    with pytest.raises(Unauthorized, match="signed-in WordPress user"):
        _actor(site, 0)


def test_actor_unknown_user_rejected(site):
    with pytest.raises(Unauthorized, match="WordPress user 999 does not exist"):
        _actor(site, 999)


def test_actor_wordpress_down_unavailable(site, monkeypatch):
    def fail(user_id: int):
        raise WordPressUnavailable("connection refused")

    monkeypatch.setattr(site.runtime.wordpress_reader, "user", fail)
    with pytest.raises(Unavailable, match="try again"):
        _actor(site, site.client_cleo)


def test_client_sees_own_objects(site):
    actor = _actor(site, site.client_cleo)
    assert _load_everything(site, actor, site.enrollment_cleo) == []
    with site.runtime.db.session() as session:
        assert (
            load_activity(session, actor, site.activity_cleo).id == site.activity_cleo
        )


def test_other_client_objects_not_found(site):
    actor = _actor(site, site.client_cleo)
    hidden = _load_everything(site, actor, site.enrollment_dan)
    assert hidden == ["enrollment", "milestone", "habit"]
    with site.runtime.db.session() as session:
        with pytest.raises(NotFound):
            load_activity(session, actor, site.activity_dan)
        with pytest.raises(NotFound):
            load_activity(session, actor, site.activity_dan_without_enrollment)
        with pytest.raises(NotFound):
            load_cohort(session, actor, site.cohort_ana)


def test_hidden_and_missing_look_alike(site):
    actor = _actor(site, site.client_cleo)
    with site.runtime.db.session() as session:
        with pytest.raises(NotFound) as hidden:
            load_enrollment(session, actor, site.enrollment_dan)
        with pytest.raises(NotFound) as missing:
            load_enrollment(session, actor, 424242)
    assert hidden.value.status == missing.value.status == 404
    assert hidden.value.message == f"enrollment {site.enrollment_dan} not found"
    assert missing.value.message == "enrollment 424242 not found"


def test_milestone_of_other_program_not_found(site):
    actor = _actor(site, site.client_cleo)
    with site.runtime.db.session() as session:
        with pytest.raises(NotFound, match="milestone"):
            load_milestone(session, actor, site.enrollment_cleo, site.other_milestone)
        with pytest.raises(NotFound, match="habit"):
            load_habit(session, actor, site.enrollment_cleo, 424242)


def test_coach_sees_cohort_clients(site):
    actor = _actor(site, site.coach_ana)
    assert _load_everything(site, actor, site.enrollment_dan) == []
    with site.runtime.db.session() as session:
        assert load_activity(session, actor, site.activity_dan).id == site.activity_dan
        assert load_cohort(session, actor, site.cohort_ana).id == site.cohort_ana


def test_coach_other_cohort_not_found(site):
    actor = _actor(site, site.coach_ben)
    hidden = _load_everything(site, actor, site.enrollment_dan)
    assert hidden == ["enrollment", "milestone", "habit"]
    with site.runtime.db.session() as session:
        with pytest.raises(NotFound):
            load_cohort(session, actor, site.cohort_ana)
        with pytest.raises(NotFound):
            load_activity(session, actor, site.activity_dan_without_enrollment)


def test_coach_loses_moved_client(site):
    _move_dan_to_ben(site)
    ana = _actor(site, site.coach_ana)
    ben = _actor(site, site.coach_ben)
    assert _load_everything(site, ana, site.enrollment_dan) == [
        "enrollment",
        "milestone",
        "habit",
    ]
    assert _load_everything(site, ben, site.enrollment_dan) == []
    with site.runtime.db.session() as session:
        with pytest.raises(NotFound):
            load_activity(session, ana, site.activity_dan)
        assert load_activity(session, ben, site.activity_dan).id == site.activity_dan


def test_admin_sees_everything(site):
    actor = _actor(site, site.admin)
    for enrollment_id in (site.enrollment_cleo, site.enrollment_dan):
        assert _load_everything(site, actor, enrollment_id) == []
    with site.runtime.db.session() as session:
        load_activity(session, actor, site.activity_dan_without_enrollment)
        load_cohort(session, actor, site.cohort_ben)


def test_can_see_enrollment_rules(site):
    actors = {
        "admin": _actor(site, site.admin),
        "ana": _actor(site, site.coach_ana),
        "ben": _actor(site, site.coach_ben),
        "cleo": _actor(site, site.client_cleo),
        "dan": _actor(site, site.client_dan),
    }
    with site.runtime.db.session() as session:
        enrollment = session.get(Enrollment, site.enrollment_dan)
        visible = {
            name
            for name, actor in actors.items()
            if can_see_enrollment(actor, enrollment)
        }
    assert visible == {"admin", "ana", "dan"}


def test_can_see_cohort_rules(site):
    # Actors are looked up first: SQLite allows one open write transaction.
    ana = _actor(site, site.coach_ana)
    admin = _actor(site, site.admin)
    ben = _actor(site, site.coach_ben)
    cleo = _actor(site, site.client_cleo)
    with site.runtime.db.session() as session:
        cohort = session.get(Cohort, site.cohort_ana)
        assert can_see_cohort(ana, cohort)
        assert can_see_cohort(admin, cohort)
        assert not can_see_cohort(ben, cohort)
        assert not can_see_cohort(cleo, cohort)


def _visible_ids(site: Site, actor: Actor) -> set[int]:
    with site.runtime.db.session() as session:
        query = sa.select(Enrollment.id).where(visible_enrollments(actor))
        return set(session.scalars(query))


def test_visible_enrollments_matches_rule(site):
    both = {site.enrollment_cleo, site.enrollment_dan}
    assert _visible_ids(site, _actor(site, site.admin)) == both
    assert _visible_ids(site, _actor(site, site.coach_ana)) == both
    assert _visible_ids(site, _actor(site, site.coach_ben)) == set()
    assert _visible_ids(site, _actor(site, site.client_cleo)) == {site.enrollment_cleo}
    _move_dan_to_ben(site)
    assert _visible_ids(site, _actor(site, site.coach_ana)) == {site.enrollment_cleo}
    assert _visible_ids(site, _actor(site, site.coach_ben)) == {site.enrollment_dan}


def test_require_admin_hides_page(site):
    require_admin(_actor(site, site.admin))
    for user_id in (site.coach_ana, site.client_cleo):
        with pytest.raises(NotFound):
            require_admin(_actor(site, user_id))


def test_require_coach_or_admin_hides_page(site):
    require_coach_or_admin(_actor(site, site.admin))
    require_coach_or_admin(_actor(site, site.coach_ana))
    with pytest.raises(NotFound):
        require_coach_or_admin(_actor(site, site.client_cleo))
