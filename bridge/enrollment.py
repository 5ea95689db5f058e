"""Enrollments of one member: reconcile with WordPress access, enroll, list.

Rules that this module applies (the decision itself is ``rules.enrollment``):

- A new enrollment joins a random open cohort with room. Its start date is the
  site-local day of enrollment for a rolling cohort, the cohort's own start date
  for a fixed one.
- Lost access makes the enrollment inactive unless another membership the member
  still has grants the program. Regained access resumes the same row in the same
  cohort with the same start date. A resume is allowed into a cohort that filled
  up or closed meanwhile, because the seat was the member's before.
- With no open cohort with room the member is not enrolled. A ``no_open_cohort``
  entry is written once per member, program and site day (two reconciles of one
  member at the same moment may both write one), and the next reconcile tries
  again.
- Capacity is checked inside the transaction with the program's open cohort rows
  locked (SELECT ... FOR UPDATE on MySQL and MariaDB, a write lock on SQLite), so
  concurrent enrollments cannot overfill a cohort.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge import activity
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
from rules.calendar import site_day_start_utc
from rules.cohorts import CohortOption, choose_cohort
from rules.enrollment import (
    Action,
    ExistingEnrollment,
    GrantLike,
    PlannedChange,
    plan_enrollments,
)

log = logging.getLogger(__name__)

# A duplicate-key error means another transaction enrolled the member in the same
# program first. Each retry re-reads the enrollments, so two attempts suffice in
# practice; the third is a margin.
DUPLICATE_ATTEMPTS = 3


@dataclass(frozen=True)
class EnrollmentChange:
    """One enrollment that a reconcile created, resumed or deactivated."""

    enrollment_id: int
    program_id: int
    cohort_id: int


@dataclass
class MemberChanges:
    """The changes one reconcile made to a member's enrollments."""

    wp_user_id: int
    enrolled: list[EnrollmentChange] = field(default_factory=list)
    resumed: list[EnrollmentChange] = field(default_factory=list)
    deactivated: list[EnrollmentChange] = field(default_factory=list)
    # Programs the member has access to but no open cohort with room.
    waiting_for_cohort: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Tell whether any enrollment was created, resumed or deactivated."""
        return bool(self.enrolled or self.resumed or self.deactivated)

    def as_dict(self) -> dict[str, Any]:
        """Return the changes as plain JSON-ready values."""
        return {
            "wp_user_id": self.wp_user_id,
            "enrolled": [change.__dict__ for change in self.enrolled],
            "resumed": [change.__dict__ for change in self.resumed],
            "deactivated": [change.__dict__ for change in self.deactivated],
            "waiting_for_cohort": list(self.waiting_for_cohort),
        }


def reconcile_member(runtime: Runtime, wp_user_id: int) -> MemberChanges:
    """Bring one member's enrollments in line with their WordPress access now.

    Reads the member's grants, then applies the plan in one state transaction.
    Raises ``sync.reader.WordPressUnavailable`` when WordPress cannot be reached,
    in which case nothing was changed. Safe to call repeatedly and concurrently.
    """
    grants = runtime.wordpress.access(wp_user_id, runtime.now())
    today = runtime.today()
    work = partial(_reconcile_in_session, runtime, wp_user_id, grants, today)
    what = f"reconcile of member {wp_user_id}"
    for attempt in range(1, DUPLICATE_ATTEMPTS + 1):
        try:
            return runtime.db.run(work, what)
        except sa.exc.IntegrityError as error:
            if attempt == DUPLICATE_ATTEMPTS:
                raise
            log.info(
                "member %s was enrolled concurrently, re-reading (attempt %d): %s",
                wp_user_id,
                attempt,
                error.orig,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _reconcile_in_session(
    runtime: Runtime,
    wp_user_id: int,
    grants: Mapping[int, GrantLike],
    today: dt.date,
    session: Session,
) -> MemberChanges:
    enrollments = _lock_member_enrollments(session, wp_user_id)
    programs_by_membership = load_programs_by_membership(session, grants.keys())
    existing = {
        program_id: as_existing(enrollment)
        for program_id, enrollment in enrollments.items()
    }
    plan = plan_enrollments(grants.values(), programs_by_membership, existing)

    changes = MemberChanges(wp_user_id)
    for change in plan.changes:
        enrollment = enrollments.get(change.program_id)
        _apply_change(session, runtime, wp_user_id, change, enrollment, today, changes)
    return changes


def _apply_change(
    session: Session,
    runtime: Runtime,
    wp_user_id: int,
    change: PlannedChange,
    enrollment: Enrollment | None,
    today: dt.date,
    changes: MemberChanges,
) -> None:
    if change.action is Action.CREATE:
        program = session.get_one(Program, change.program_id)
        created = enroll(session, runtime, wp_user_id, program, change.grant, today)
        if created is None:
            changes.waiting_for_cohort.append(change.program_id)
        else:
            changes.enrolled.append(_change_of(created))
        return

    assert enrollment is not None
    now = naive_utc(runtime.now())
    if change.action is Action.RESUME:
        resume(session, enrollment, change.grant, now)
        changes.resumed.append(_change_of(enrollment))
    elif change.action is Action.DEACTIVATE:
        deactivate(session, enrollment, now)
        changes.deactivated.append(_change_of(enrollment))
    elif change.grant is not None:
        _record_grant(enrollment, change.grant)


def enroll(
    session: Session,
    runtime: Runtime,
    wp_user_id: int,
    program: Program,
    grant: GrantLike | None,
    today: dt.date,
) -> Enrollment | None:
    """Enroll a member in a random open cohort of the program, with activity.

    ``grant`` is the membership and transaction that give access, or None for an
    enrollment by hand. Returns None, after a warning and a ``no_open_cohort``
    entry, when no cohort is open with room. Raises IntegrityError (at the flush)
    when the member already has an enrollment in the program.
    """
    cohort = lock_and_choose_cohort(session, program.id, runtime.rng)
    if cohort is None:
        note_no_open_cohort(session, runtime, wp_user_id, program, today)
        return None

    enrollment = Enrollment(
        wp_user_id=wp_user_id,
        program_id=program.id,
        cohort_id=cohort.id,
        status=EnrollmentStatus.ACTIVE,
        start_date=start_date_for(cohort, today),
        membership_id=grant.membership_id if grant else None,
        transaction_id=grant.transaction_id if grant else None,
        enrolled_by_hand=grant is None,
    )
    session.add(enrollment)
    session.flush()

    activity.record(
        session,
        ActivityType.PROGRAM_STARTED,
        **_subject(enrollment, cohort),
        summary=f"Started {program.title} in cohort {cohort.name}",
        details={"start_date": enrollment.start_date.isoformat()},
        occurred_at=naive_utc(runtime.now()),
    )
    log.info(
        "enrolled member %s in program %s, cohort %s (enrollment %s)",
        wp_user_id,
        program.id,
        cohort.id,
        enrollment.id,
    )
    return enrollment


def start_date_for(cohort: Cohort, today: dt.date) -> dt.date:
    """Return the start date of a new enrollment in the cohort.

    A rolling cohort starts each client on the enrollment day, a fixed cohort all
    clients on the cohort's start date (which may be in the past).
    """
    if cohort.kind is CohortKind.FIXED and cohort.start_date is not None:
        return cohort.start_date
    return today


def lock_and_choose_cohort(
    session: Session, program_id: int, rng: random.Random
) -> Cohort | None:
    """Lock the program's open cohorts, then choose one with room at random.

    The rows are locked in id order so that two transactions that both lock
    cohorts of several programs take the locks in the same order.
    """
    query = (
        sa.select(Cohort)
        .where(Cohort.program_id == program_id, Cohort.is_open.is_(True))
        .order_by(Cohort.id)
        .with_for_update()
    )
    cohorts = session.scalars(query).all()
    counts = count_active(session, [c.id for c in cohorts if c.capacity is not None])
    options = [cohort_option(cohort, counts) for cohort in cohorts]

    chosen = choose_cohort(options, rng)
    if chosen is None:
        return None
    return next(cohort for cohort in cohorts if cohort.id == chosen.cohort_id)


def count_active(session: Session, cohort_ids: Collection[int]) -> dict[int, int]:
    """Count the active enrollments of each cohort; cohorts without any are absent."""
    if not cohort_ids:
        return {}

    query = (
        sa.select(Enrollment.cohort_id, sa.func.count())
        .where(
            Enrollment.cohort_id.in_(cohort_ids),
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(Enrollment.cohort_id)
    )
    return {cohort_id: count for cohort_id, count in session.execute(query)}


def cohort_option(cohort: Cohort, active_counts: Mapping[int, int]) -> CohortOption:
    """Describe a cohort for the random choice, with its count of active clients."""
    return CohortOption(
        cohort_id=cohort.id,
        is_open=cohort.is_open,
        capacity=cohort.capacity,
        active_enrollments=active_counts.get(cohort.id, 0),
    )


def note_no_open_cohort(
    session: Session,
    runtime: Runtime,
    wp_user_id: int,
    program: Program,
    today: dt.date,
) -> bool:
    """Log a warning and, once per site day, write a ``no_open_cohort`` entry.

    Returns True when an entry was written.
    """
    log.warning(
        "no open cohort with room in program %s (%s) for member %s; "
        "the next reconcile tries again",
        program.id,
        program.slug,
        wp_user_id,
    )
    day_start = naive_utc(site_day_start_utc(today, runtime.site_zone()))
    if waiting_noted_since(session, {wp_user_id}, program.id, day_start):
        return False

    activity.record(
        session,
        ActivityType.NO_OPEN_COHORT,
        **no_open_cohort_subject(wp_user_id, program.id),
        summary=f"No open cohort with room in {program.title}",
        occurred_at=naive_utc(runtime.now()),
    )
    return True


def no_open_cohort_subject(wp_user_id: int, program_id: int) -> dict[str, Any]:
    """Return the subject columns of a ``no_open_cohort`` entry."""
    return {
        "wp_user_id": wp_user_id,
        "program_id": program_id,
        "cohort_id": None,
        "coach_id": None,
        "enrollment_id": None,
    }


def waiting_noted_since(
    session: Session,
    wp_user_ids: Collection[int],
    program_id: int,
    since: dt.datetime,
) -> set[int]:
    """Return which members already have a ``no_open_cohort`` entry for the program.

    Only entries at or after ``since`` (naive UTC) count.
    """
    query = sa.select(Activity.wp_user_id).where(
        Activity.type == ActivityType.NO_OPEN_COHORT.value,
        Activity.occurred_at >= since,
        Activity.program_id == program_id,
        Activity.wp_user_id.in_(wp_user_ids),
    )
    return set(session.scalars(query))


def resume(
    session: Session,
    enrollment: Enrollment,
    grant: GrantLike | None,
    now: dt.datetime,
) -> None:
    """Make an inactive enrollment active again, in its cohort, with activity."""
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.deactivated_at = None
    if grant is not None:
        _record_grant(enrollment, grant)

    activity.record(
        session,
        ActivityType.RESUMED,
        **_subject(enrollment, enrollment.cohort),
        summary=f"Resumed {enrollment.program.title}",
        occurred_at=now,
    )
    log.info(
        "resumed enrollment %s of member %s in program %s",
        enrollment.id,
        enrollment.wp_user_id,
        enrollment.program_id,
    )


def deactivate(session: Session, enrollment: Enrollment, now: dt.datetime) -> None:
    """Make an active enrollment inactive after lost access, with activity."""
    enrollment.status = EnrollmentStatus.INACTIVE
    enrollment.deactivated_at = now

    activity.record(
        session,
        ActivityType.UNENROLLED,
        **_subject(enrollment, enrollment.cohort),
        summary=f"Access to {enrollment.program.title} ended",
        details={"reason": "access_lost"},
        occurred_at=now,
    )
    log.info(
        "deactivated enrollment %s of member %s in program %s: access lost",
        enrollment.id,
        enrollment.wp_user_id,
        enrollment.program_id,
    )


def as_existing(enrollment: Enrollment) -> ExistingEnrollment:
    """Reduce an enrollment row to what the enrollment decision reads."""
    return ExistingEnrollment(
        program_id=enrollment.program_id,
        active=enrollment.status == EnrollmentStatus.ACTIVE,
        enrolled_by_hand=enrollment.enrolled_by_hand,
        unenrolled_by_hand=enrollment.unenrolled_by_hand,
        membership_id=enrollment.membership_id,
        transaction_id=enrollment.transaction_id,
    )


def load_programs_by_membership(
    session: Session, membership_ids: Iterable[int] | None = None
) -> dict[int, set[int]]:
    """Map membership ids onto the programs they grant (all when ids is None)."""
    query = sa.select(ProgramMembership.membership_id, ProgramMembership.program_id)
    if membership_ids is not None:
        wanted = list(membership_ids)
        if not wanted:
            return {}
        query = query.where(ProgramMembership.membership_id.in_(wanted))

    programs: dict[int, set[int]] = {}
    for membership_id, program_id in session.execute(query):
        programs.setdefault(membership_id, set()).add(program_id)
    return programs


def list_enrollments(runtime: Runtime) -> list[dict[str, Any]]:
    """Return every enrollment as a JSON-ready dict, by member then program slug."""
    query = (
        sa.select(Enrollment, Program.slug, Cohort.name)
        .join(Program, Enrollment.program_id == Program.id)
        .join(Cohort, Enrollment.cohort_id == Cohort.id)
        .order_by(Enrollment.wp_user_id, Program.slug)
    )
    with runtime.db.session() as session:
        rows = session.execute(query).all()
    return [_listed(enrollment, slug, name) for enrollment, slug, name in rows]


def _listed(enrollment: Enrollment, slug: str, cohort_name: str) -> dict[str, Any]:
    return {
        "wp_user_id": enrollment.wp_user_id,
        "program": slug,
        "cohort": cohort_name,
        "cohort_id": enrollment.cohort_id,
        "status": EnrollmentStatus(enrollment.status).value,
        "start_date": enrollment.start_date.isoformat(),
        "membership_id": enrollment.membership_id,
        "transaction_id": enrollment.transaction_id,
    }


def refresh_coach_cache(runtime: Runtime) -> int:
    """Copy coaches' display names and emails from WordPress; return how many changed.

    Costs one WordPress read for all coaches. A coach whose WordPress user is gone
    keeps the cached values.
    """
    with runtime.db.session() as session:
        coaches = session.scalars(sa.select(Coach)).all()
        users = runtime.wordpress.users(coach.wp_user_id for coach in coaches)
        changed = 0
        for coach in coaches:
            user = users.get(coach.wp_user_id)
            if user is not None and _update_coach(coach, user):
                changed += 1
    if changed:
        log.info("refreshed the cached name or email of %d coaches", changed)
    return changed


def _update_coach(coach: Coach, user: Any) -> bool:
    if (coach.display_name, coach.email) == (user.display_name, user.email):
        return False
    coach.display_name = user.display_name
    coach.email = user.email
    return True


def naive_utc(instant: dt.datetime) -> dt.datetime:
    """Return an aware instant as the naive UTC datetime that columns store."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def _lock_member_enrollments(
    session: Session, wp_user_id: int
) -> dict[int, Enrollment]:
    # Locking the member's rows serializes concurrent reconciles of one member,
    # so a lost access is deactivated (and written to the feed) only once.
    query = (
        sa.select(Enrollment)
        .where(Enrollment.wp_user_id == wp_user_id)
        .with_for_update()
    )
    return {row.program_id: row for row in session.scalars(query)}


def _record_grant(enrollment: Enrollment, grant: GrantLike) -> None:
    enrollment.membership_id = grant.membership_id
    enrollment.transaction_id = grant.transaction_id


def _subject(enrollment: Enrollment, cohort: Cohort) -> dict[str, Any]:
    return {
        "wp_user_id": enrollment.wp_user_id,
        "program_id": enrollment.program_id,
        "cohort_id": enrollment.cohort_id,
        "coach_id": cohort.coach_id,
        "enrollment_id": enrollment.id,
    }


def _change_of(enrollment: Enrollment) -> EnrollmentChange:
    return EnrollmentChange(
        enrollment_id=enrollment.id,
        program_id=enrollment.program_id,
        cohort_id=enrollment.cohort_id,
    )
