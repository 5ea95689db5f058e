"""Coaches in the console: list, detail, registration and user search."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge.auth import Actor
from bridge.console.common import (
    CohortInfo,
    _email_of,
    _name_of,
    _write,
    cohort_info,
    read_contacts,
    read_users,
    require_change,
    require_console,
)
from bridge.enrollment import count_active, naive_utc
from bridge.errors import NotFound, Unavailable
from bridge.models import Activity, Coach, Cohort, Enrollment, EnrollmentStatus, Program
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)


USER_PICKER_LIMIT = 20
MOST_ACTIVE_DAYS = 30
MOST_ACTIVE_LIMIT = 10


# Coaches


@dataclass(frozen=True)
class CoachSummary:
    """A registered coach with counts of cohorts and active clients."""

    id: int
    wp_user_id: int
    display_name: str
    email: str
    cohorts: int
    active_clients: int


@dataclass(frozen=True)
class ActiveClient:
    """A client of a coach with their number of activity entries in a period."""

    enrollment_id: int
    wp_user_id: int
    name: str
    email: str
    program_title: str
    cohort_name: str
    entries: int
    last_activity_at: dt.datetime | None


@dataclass(frozen=True)
class CoachDetail:
    """A coach, the cohorts they lead and their most active clients."""

    coach: CoachSummary
    cohorts: list[CohortInfo]
    most_active: list[ActiveClient]
    most_active_days: int


def list_coaches(runtime: Runtime, actor: Actor) -> list[CoachSummary]:
    """Return the registered coaches by name; a coach gets only themselves."""
    require_console(actor)
    select = sa.select(Coach).order_by(Coach.display_name, Coach.id)
    if not actor.is_admin:
        select = select.where(Coach.id == actor.coach_id)
    with runtime.db.session() as session:
        coaches = session.scalars(select).all()
        return _coach_summaries(session, coaches)


def _coach_summaries(session: Session, coaches: Sequence[Coach]) -> list[CoachSummary]:
    ids = [coach.id for coach in coaches]
    cohort_counts = dict(
        session.execute(
            sa.select(Cohort.coach_id, sa.func.count())
            .where(Cohort.coach_id.in_(ids))
            .group_by(Cohort.coach_id)
        ).all()
    )
    client_counts = dict(
        session.execute(
            sa.select(Cohort.coach_id, sa.func.count())
            .join(Enrollment, Enrollment.cohort_id == Cohort.id)
            .where(
                Cohort.coach_id.in_(ids),
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
            .group_by(Cohort.coach_id)
        ).all()
    )
    return [
        CoachSummary(
            id=coach.id,
            wp_user_id=coach.wp_user_id,
            display_name=coach.display_name,
            email=coach.email,
            cohorts=cohort_counts.get(coach.id, 0),
            active_clients=client_counts.get(coach.id, 0),
        )
        for coach in coaches
    ]


def coach_detail(runtime: Runtime, actor: Actor, coach_id: int) -> CoachDetail:
    """Return a coach's cohorts and most active clients, or raise NotFound.

    The most active clients are those in the coach's cohorts now with the most
    activity entries in the last MOST_ACTIVE_DAYS days.
    """
    require_console(actor)
    if not actor.is_admin and coach_id != actor.coach_id:
        raise NotFound(f"coach {coach_id} not found")

    since = naive_utc(runtime.now()) - dt.timedelta(days=MOST_ACTIVE_DAYS)
    with runtime.db.session() as session:
        coach = session.get(Coach, coach_id)
        if coach is None:
            raise NotFound(f"coach {coach_id} not found")
        summary = _coach_summaries(session, [coach])[0]
        cohorts = sorted(coach.cohorts, key=lambda c: (c.program.title, c.name, c.id))
        active = count_active(session, [cohort.id for cohort in cohorts])
        infos = [cohort_info(cohort, active) for cohort in cohorts]
        counted = _most_active(session, coach.id, since)

    users = read_contacts(runtime, [row.wp_user_id for row in counted])
    most_active = [
        ActiveClient(
            enrollment_id=row.id,
            wp_user_id=row.wp_user_id,
            name=_name_of(users, row.wp_user_id),
            email=_email_of(users, row.wp_user_id),
            program_title=row.program_title,
            cohort_name=row.cohort_name,
            entries=row.entries,
            last_activity_at=row.last_activity_at,
        )
        for row in counted
    ]
    return CoachDetail(summary, infos, most_active, MOST_ACTIVE_DAYS)


def _most_active(session: Session, coach_id: int, since: dt.datetime) -> list[sa.Row]:
    entries = sa.func.count(Activity.id).label("entries")
    select = (
        sa.select(
            Enrollment.id,
            Enrollment.wp_user_id,
            Enrollment.last_activity_at,
            Program.title.label("program_title"),
            Cohort.name.label("cohort_name"),
            entries,
        )
        .join(Activity, Activity.enrollment_id == Enrollment.id)
        .join(Cohort, Enrollment.cohort_id == Cohort.id)
        .join(Program, Enrollment.program_id == Program.id)
        .where(Cohort.coach_id == coach_id, Activity.occurred_at >= since)
        .group_by(
            Enrollment.id,
            Enrollment.wp_user_id,
            Enrollment.last_activity_at,
            Program.title,
            Cohort.name,
        )
        .order_by(entries.desc(), Enrollment.id)
        .limit(MOST_ACTIVE_LIMIT)
    )
    return list(session.execute(select).all())


def register_coach(
    runtime: Runtime, actor: Actor, wp_user_id: int
) -> tuple[CoachSummary, bool]:
    """Register an existing WordPress user as a coach.

    Returns the coach and whether it was created; registering a coach twice
    returns the existing one. Raises NotFound when WordPress has no such user.
    """
    require_change(actor, "register coaches")
    users = read_users(runtime, [wp_user_id])
    user = users.get(wp_user_id)
    if user is None:
        raise NotFound(f"WordPress user {wp_user_id} not found")

    def work(session: Session) -> tuple[int, bool]:
        coach = session.scalar(sa.select(Coach).where(Coach.wp_user_id == user.id))
        created = coach is None
        if coach is None:
            coach = Coach(wp_user_id=user.id)
            session.add(coach)
        coach.display_name = user.display_name[:250]
        coach.email = user.email[:100]
        session.flush()
        return coach.id, created

    coach_id, created = _write(runtime, work, f"register coach {wp_user_id}")
    if created:
        log.info(
            "user %s registered WordPress user %s as coach %s",
            actor.wp_user_id,
            wp_user_id,
            coach_id,
        )
    with runtime.db.session() as session:
        coach = session.get_one(Coach, coach_id)
        return _coach_summaries(session, [coach])[0], created


@dataclass(frozen=True)
class UserChoice:
    """A WordPress user found by a search, with their coach id if registered."""

    id: int
    login: str
    email: str
    display_name: str
    coach_id: int | None


def search_users(runtime: Runtime, actor: Actor, text: str) -> list[UserChoice]:
    """Find WordPress users by login, email or name for the coach and client pickers."""
    require_change(actor, "search WordPress users")
    if not text.strip():
        return []
    try:
        users = runtime.wordpress.search_users(text.strip(), limit=USER_PICKER_LIMIT)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot search WordPress users: {error}") from error
    with runtime.db.session() as session:
        coach_ids = dict(
            session.execute(
                sa.select(Coach.wp_user_id, Coach.id).where(
                    Coach.wp_user_id.in_([user.id for user in users])
                )
            ).all()
        )
    return [
        UserChoice(u.id, u.login, u.email, u.display_name, coach_ids.get(u.id))
        for u in users
    ]
