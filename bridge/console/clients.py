"""Clients in the console: list, detail, add, move cohort and unenroll."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from bridge import activity
from bridge.auth import Actor
from bridge.console.cohorts import list_cohorts
from bridge.console.common import (
    CohortInfo,
    PageRequest,
    _email_of,
    _name_of,
    _write,
    console_enrollments,
    read_contacts,
    read_users,
    require_change,
    require_console,
    search_user_ids,
)
from bridge.console.feed import FeedEntry, FeedQuery, list_activity
from bridge.enrollment import count_active, load_programs_by_membership, naive_utc
from bridge.enrollment import start_date_for as enrollment_start_date
from bridge.errors import Conflict, NotFound
from bridge.models import ActivityType, Cohort, Enrollment, EnrollmentStatus, Program
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)


CLIENT_ACTIVITY_LIMIT = 20


# Clients


@dataclass(frozen=True)
class ClientQuery(PageRequest):
    """Search and page of the clients list."""

    search: str = ""
    program_id: int | None = None


@dataclass(frozen=True)
class ClientSummary:
    """A client in the clients list: one WordPress user and their enrollments."""

    wp_user_id: int
    name: str
    email: str
    programs: list[str]
    enrollments: int
    active: int
    last_activity_at: dt.datetime | None


@dataclass(frozen=True)
class ClientPage:
    """One page of the clients list, most recently active first."""

    items: list[ClientSummary]
    total: int
    page: int
    per_page: int
    search_truncated: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class EnrollmentInfo:
    """An enrollment with its program, cohort, coach and progress figures."""

    id: int
    wp_user_id: int
    program_id: int
    program_title: str
    cohort_id: int
    cohort_name: str
    coach_id: int
    coach_name: str
    status: str
    start_date: dt.date
    enrolled_by_hand: bool
    membership_id: int | None
    progress_percent: int
    off_track: bool
    milestones_done: int
    milestones_total: int
    habit_dates_done: int
    habit_dates_due: int
    completed_on: dt.date | None
    last_activity_at: dt.datetime | None
    deactivated_at: dt.datetime | None


@dataclass(frozen=True)
class ClientDetail:
    """Everything the console shows about one client."""

    wp_user_id: int
    name: str
    email: str
    login: str
    exists_in_wordpress: bool
    enrollments: list[EnrollmentInfo]
    activity: list[FeedEntry]
    # Cohorts an administrator can add the client to or move them into.
    cohort_choices: list[CohortInfo] = field(default_factory=list)


def list_clients(runtime: Runtime, actor: Actor, query: ClientQuery) -> ClientPage:
    """Return one page of clients, most recently active first."""
    require_console(actor)
    found = search_user_ids(runtime, query.search)
    truncated = found is not None and found.truncated
    if found is not None and not found.ids:
        return ClientPage([], 0, query.page, query.per_page, truncated)

    conditions = [console_enrollments(actor)]
    if query.program_id is not None:
        conditions.append(Enrollment.program_id == query.program_id)
    if found is not None:
        conditions.append(Enrollment.wp_user_id.in_(found.ids))

    last = sa.func.max(Enrollment.last_activity_at)
    active = sa.func.sum(
        sa.case((Enrollment.status == EnrollmentStatus.ACTIVE, 1), else_=0)
    )
    select = (
        sa.select(
            Enrollment.wp_user_id,
            sa.func.count().label("enrollments"),
            active.label("active"),
            last.label("last_activity_at"),
        )
        .where(*conditions)
        .group_by(Enrollment.wp_user_id)
        .order_by(sa.case((last.is_(None), 1), else_=0), last.desc())
        .order_by(Enrollment.wp_user_id)
        .limit(query.per_page)
        .offset(query.offset)
    )
    count = sa.select(sa.func.count(sa.distinct(Enrollment.wp_user_id))).where(
        *conditions
    )
    with runtime.db.session() as session:
        total = session.scalar(count) or 0
        rows = session.execute(select).all()
        programs = _program_titles_by_user(
            session, actor, [row.wp_user_id for row in rows]
        )

    users = read_contacts(runtime, [row.wp_user_id for row in rows])
    items = [
        ClientSummary(
            wp_user_id=row.wp_user_id,
            name=_name_of(users, row.wp_user_id),
            email=_email_of(users, row.wp_user_id),
            programs=programs.get(row.wp_user_id, []),
            enrollments=row.enrollments,
            active=int(row.active or 0),
            last_activity_at=row.last_activity_at,
        )
        for row in rows
    ]
    return ClientPage(items, total, query.page, query.per_page, truncated)


def _program_titles_by_user(
    session: Session, actor: Actor, wp_user_ids: Sequence[int]
) -> dict[int, list[str]]:
    if not wp_user_ids:
        return {}
    select = (
        sa.select(Enrollment.wp_user_id, Program.title)
        .join(Program, Enrollment.program_id == Program.id)
        .where(console_enrollments(actor), Enrollment.wp_user_id.in_(wp_user_ids))
        .order_by(Program.title)
    )
    titles: dict[int, list[str]] = {}
    for wp_user_id, title in session.execute(select):
        titles.setdefault(wp_user_id, []).append(title)
    return titles


def client_detail(runtime: Runtime, actor: Actor, wp_user_id: int) -> ClientDetail:
    """Return a client's enrollments, progress and recent activity.

    An administrator may open any WordPress user, enrolled or not, to add them
    to a cohort. A coach sees only the client's enrollments in cohorts they
    lead, and NotFound when there are none.
    """
    require_console(actor)
    user = read_users(runtime, [wp_user_id]).get(wp_user_id)
    with runtime.db.session() as session:
        enrollments = _client_enrollments(session, actor, wp_user_id)
        if not enrollments and (user is None or not actor.is_admin):
            raise NotFound(f"client {wp_user_id} not found")
        infos = [enrollment_info(enrollment) for enrollment in enrollments]

    feed = list_activity(
        runtime,
        actor,
        FeedQuery(wp_user_id=wp_user_id, per_page=CLIENT_ACTIVITY_LIMIT),
    )
    choices = list_cohorts(runtime, actor) if actor.is_admin else []
    return ClientDetail(
        wp_user_id=wp_user_id,
        name=user.display_name if user else f"deleted user {wp_user_id}",
        email=user.email if user else "",
        login=user.login if user else "",
        exists_in_wordpress=user is not None,
        enrollments=infos,
        activity=feed.items,
        cohort_choices=choices,
    )


def _client_enrollments(
    session: Session, actor: Actor, wp_user_id: int
) -> list[Enrollment]:
    select = (
        sa.select(Enrollment)
        .join(Program, Enrollment.program_id == Program.id)
        .options(
            selectinload(Enrollment.program),
            selectinload(Enrollment.cohort).selectinload(Cohort.coach),
        )
        .where(console_enrollments(actor), Enrollment.wp_user_id == wp_user_id)
        .order_by(Program.title, Enrollment.id)
    )
    return list(session.scalars(select).all())


def enrollment_info(enrollment: Enrollment) -> EnrollmentInfo:
    """Describe an enrollment whose program, cohort and coach can be loaded."""
    return EnrollmentInfo(
        id=enrollment.id,
        wp_user_id=enrollment.wp_user_id,
        program_id=enrollment.program_id,
        program_title=enrollment.program.title,
        cohort_id=enrollment.cohort_id,
        cohort_name=enrollment.cohort.name,
        coach_id=enrollment.cohort.coach_id,
        coach_name=enrollment.cohort.coach.display_name,
        status=EnrollmentStatus(enrollment.status).value,
        start_date=enrollment.start_date,
        enrolled_by_hand=enrollment.enrolled_by_hand,
        membership_id=enrollment.membership_id,
        progress_percent=enrollment.progress_percent,
        off_track=enrollment.off_track,
        milestones_done=enrollment.milestones_done,
        milestones_total=enrollment.milestones_total,
        habit_dates_done=enrollment.habit_dates_done,
        habit_dates_due=enrollment.habit_dates_due,
        completed_on=enrollment.completed_on,
        last_activity_at=enrollment.last_activity_at,
        deactivated_at=enrollment.deactivated_at,
    )


def add_client(
    runtime: Runtime, actor: Actor, wp_user_id: int, cohort_id: int
) -> EnrollmentInfo:
    """Enroll a WordPress user by hand in a cohort of any program.

    The enrollment is marked as by hand, so a reconcile never deactivates it. An
    inactive enrollment in the same program is made active again in the chosen
    cohort with its start date kept. Raises Conflict when the client is already
    active in the program or the cohort is closed or full, and NotFound when
    WordPress has no such user or bridge no such cohort.
    """
    require_change(actor, "add clients")
    if wp_user_id not in read_users(runtime, [wp_user_id]):
        raise NotFound(f"WordPress user {wp_user_id} not found")
    now = naive_utc(runtime.now())
    today = runtime.today()

    def work(session: Session) -> int:
        enrollments = _lock_member_enrollments(session, wp_user_id)
        cohort = _lock_cohort_with_room(session, cohort_id)

        enrollment = enrollments.get(cohort.program_id)
        if enrollment is None:
            enrollment = Enrollment(
                wp_user_id=wp_user_id,
                program_id=cohort.program_id,
                start_date=enrollment_start_date(cohort, today),
            )
            session.add(enrollment)
        elif enrollment.status == EnrollmentStatus.ACTIVE:
            raise Conflict(
                f"WordPress user {wp_user_id} is already active in program "
                f"{cohort.program.title!r} (enrollment {enrollment.id}); move them "
                "to another cohort instead"
            )

        reactivated = enrollment.id is not None
        enrollment.cohort_id = cohort.id
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.enrolled_by_hand = True
        enrollment.unenrolled_by_hand = False
        enrollment.deactivated_at = None
        session.flush()

        activity.record(
            session,
            ActivityType.ENROLLED,
            **_subject(enrollment, cohort),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Added by hand to {cohort.program.title}, cohort {cohort.name}",
            details={"by_hand": True, "reactivated": reactivated},
            occurred_at=now,
        )
        return enrollment.id

    enrollment_id = _write(
        runtime, work, f"add user {wp_user_id} to cohort {cohort_id}"
    )
    log.info(
        "user %s added WordPress user %s to cohort %s (enrollment %s)",
        actor.wp_user_id,
        wp_user_id,
        cohort_id,
        enrollment_id,
    )
    return _enrollment_by_id(runtime, enrollment_id)


def assign_cohort(
    runtime: Runtime, actor: Actor, enrollment_id: int, cohort_id: int
) -> EnrollmentInfo:
    """Move an enrollment to another cohort of the same program.

    An active client takes a seat, so the cohort must be open with room, checked
    under the same row locks as an enrollment. An inactive client takes no seat
    and is moved without that check; they resume in the new cohort. The start
    date is kept, because the client's due dates count from it.
    """
    _require_enrollment_change(runtime, actor, enrollment_id, "move clients")
    now = naive_utc(runtime.now())

    def work(session: Session) -> None:
        enrollment = _lock_enrollment(session, enrollment_id)
        if enrollment.cohort_id == cohort_id:
            raise Conflict(
                f"enrollment {enrollment_id} is already in cohort {cohort_id}"
            )
        active = enrollment.status == EnrollmentStatus.ACTIVE
        target = (
            _lock_cohort_with_room(session, cohort_id)
            if active
            else _lock_cohort(session, cohort_id)
        )
        if target.program_id != enrollment.program_id:
            raise Conflict(
                f"cohort {cohort_id} belongs to program "
                f"{target.program.title!r}, not to the enrollment's program "
                f"{enrollment.program.title!r}; add the client to that program instead"
            )
        source = enrollment.cohort
        enrollment.cohort_id = target.id
        session.flush()
        activity.record(
            session,
            ActivityType.COHORT_CHANGED,
            **_subject(enrollment, target),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Moved from cohort {source.name} to cohort {target.name}",
            details={
                "from_cohort_id": source.id,
                "to_cohort_id": target.id,
                "from_coach_id": source.coach_id,
            },
            occurred_at=now,
        )

    _write(runtime, work, f"move enrollment {enrollment_id} to cohort {cohort_id}")
    log.info(
        "user %s moved enrollment %s to cohort %s",
        actor.wp_user_id,
        enrollment_id,
        cohort_id,
    )
    return _enrollment_by_id(runtime, enrollment_id)


@dataclass(frozen=True)
class UnenrollResult:
    """An unenrolled enrollment and the memberships that still grant its program."""

    enrollment: EnrollmentInfo
    # Membership ids that still grant the program, or None when WordPress
    # could not be read.
    granting_memberships: list[int] | None


def unenroll(runtime: Runtime, actor: Actor, enrollment_id: int) -> UnenrollResult:
    """Make an active enrollment inactive, keeping its data, with activity.

    The sync leaves the enrollment inactive from then on, even while a
    membership grants the program, until an administrator adds the client
    again. The result lists such memberships, which MemberPress may still bill.
    """
    _require_enrollment_change(runtime, actor, enrollment_id, "unenroll clients")
    now = naive_utc(runtime.now())

    def work(session: Session) -> None:
        enrollment = _lock_enrollment(session, enrollment_id)
        if enrollment.status != EnrollmentStatus.ACTIVE:
            raise Conflict(f"enrollment {enrollment_id} is already inactive")
        enrollment.status = EnrollmentStatus.INACTIVE
        enrollment.unenrolled_by_hand = True
        enrollment.deactivated_at = now
        activity.record(
            session,
            ActivityType.UNENROLLED,
            **_subject(enrollment, enrollment.cohort),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Unenrolled from {enrollment.program.title} by hand",
            details={"reason": "by_hand"},
            occurred_at=now,
        )

    _write(runtime, work, f"unenroll enrollment {enrollment_id}")
    log.info("user %s unenrolled enrollment %s", actor.wp_user_id, enrollment_id)
    info = _enrollment_by_id(runtime, enrollment_id)
    return UnenrollResult(info, _granting_memberships(runtime, info))


def _require_enrollment_change(
    runtime: Runtime, actor: Actor, enrollment_id: int, change: str
) -> None:
    """Raise NotFound for an enrollment hidden from the actor, else Forbidden.

    Checking visibility first means a coach learns nothing about other coaches'
    clients from the status. Administrators pass both checks.
    """
    if not actor.is_admin:
        load_console_enrollment(runtime, actor, enrollment_id)
    require_change(actor, change)


def _granting_memberships(runtime: Runtime, info: EnrollmentInfo) -> list[int] | None:
    try:
        grants = runtime.wordpress.access(info.wp_user_id, runtime.now())
    except WordPressUnavailable as error:
        log.warning(
            "cannot check the memberships of WordPress user %s after unenrolling "
            "enrollment %s: %s",
            info.wp_user_id,
            info.id,
            error,
        )
        return None
    with runtime.db.session() as session:
        programs = load_programs_by_membership(session, grants.keys())
    return sorted(m for m, ids in programs.items() if info.program_id in ids)


def _lock_member_enrollments(
    session: Session, wp_user_id: int
) -> dict[int, Enrollment]:
    # The member's rows are locked before any cohort row, the order that
    # reconcile_member uses, so the two never wait on each other in a cycle.
    # Database.run retries a deadlock that MySQL reports anyway.
    select = (
        sa.select(Enrollment)
        .where(Enrollment.wp_user_id == wp_user_id)
        .with_for_update()
    )
    return {row.program_id: row for row in session.scalars(select)}


def _lock_enrollment(session: Session, enrollment_id: int) -> Enrollment:
    select = sa.select(Enrollment).where(Enrollment.id == enrollment_id)
    enrollment = session.scalar(select.with_for_update())
    if enrollment is None:
        raise NotFound(f"enrollment {enrollment_id} not found")
    return enrollment


def _lock_cohort(session: Session, cohort_id: int) -> Cohort:
    select = sa.select(Cohort).where(Cohort.id == cohort_id).with_for_update()
    cohort = session.scalar(select)
    if cohort is None:
        raise NotFound(f"cohort {cohort_id} not found")
    return cohort


def _lock_cohort_with_room(session: Session, cohort_id: int) -> Cohort:
    """Lock a cohort row, then raise Conflict unless it is open with a free seat.

    Automatic enrollment locks the same row before counting, so the count
    cannot change until this transaction ends.
    """
    cohort = _lock_cohort(session, cohort_id)
    if not cohort.is_open:
        raise Conflict(
            f"cohort {cohort.name!r} is closed to new clients; open it first or "
            "choose another cohort"
        )
    if cohort.capacity is not None:
        taken = count_active(session, [cohort.id]).get(cohort.id, 0)
        if taken >= cohort.capacity:
            raise Conflict(
                f"cohort {cohort.name!r} is full: {taken} active clients of "
                f"{cohort.capacity}; raise its capacity or choose another cohort"
            )
    return cohort


def _subject(enrollment: Enrollment, cohort: Cohort) -> dict[str, Any]:
    return {
        "wp_user_id": enrollment.wp_user_id,
        "program_id": enrollment.program_id,
        "cohort_id": cohort.id,
        "coach_id": cohort.coach_id,
        "enrollment_id": enrollment.id,
    }


def _enrollment_by_id(runtime: Runtime, enrollment_id: int) -> EnrollmentInfo:
    with runtime.db.session() as session:
        enrollment = session.get_one(Enrollment, enrollment_id)
        return enrollment_info(enrollment)


def load_console_enrollment(
    runtime: Runtime, actor: Actor, enrollment_id: int
) -> EnrollmentInfo:
    """Return an enrollment the actor may see in the console, or raise NotFound."""
    require_console(actor)
    select = sa.select(Enrollment).where(
        Enrollment.id == enrollment_id, console_enrollments(actor)
    )
    with runtime.db.session() as session:
        enrollment = session.scalar(select)
        if enrollment is None:
            raise NotFound(f"enrollment {enrollment_id} not found")
        return enrollment_info(enrollment)
