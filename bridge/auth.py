"""Roles of the acting user and the rules for which objects they may see.

A role is never taken from the request. The signed request names only a WordPress
user id, and the role comes from two places: the user's WordPress roles
(``administrator``) and bridge's own tables (a ``coaches`` row makes a coach, an
enrollment makes a client). A user may be a coach and a client at once.

Loaders raise NotFound both for a missing object and for one the actor may not
see, so that a response never reveals whether another user's object exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge.errors import NotFound, Unauthorized, Unavailable
from bridge.models import (
    Activity,
    Coach,
    Cohort,
    Enrollment,
    EnrollmentStatus,
    Habit,
    Milestone,
)
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

ADMINISTRATOR_ROLE = "administrator"


@dataclass(frozen=True)
class Actor:
    """The WordPress user a signed request acts for, with the roles bridge grants."""

    wp_user_id: int
    is_admin: bool
    # The id of the user's ``coaches`` row, or None when the user is not a coach.
    coach_id: int | None
    display_name: str

    @property
    def is_coach(self) -> bool:
        return self.coach_id is not None


def current_actor(runtime: Runtime, user_id: int) -> Actor:
    """Look up the roles of a WordPress user and return them as an Actor.

    Raises Unauthorized when ``user_id`` is 0 (no signed-in user) or no longer
    exists in WordPress, and Unavailable when the WordPress database cannot be
    reached.
    """
    if user_id <= 0:
        raise Unauthorized("this request needs a signed-in WordPress user")
    try:
        user = runtime.wordpress.user(user_id)
    except WordPressUnavailable as error:
        raise Unavailable(
            f"cannot read WordPress user {user_id}: the WordPress database is "
            "unavailable; try again in a few minutes"
        ) from error
    if user is None:
        raise Unauthorized(f"WordPress user {user_id} does not exist")

    coach_id = runtime.db.run(
        lambda session: session.scalar(
            sa.select(Coach.id).where(Coach.wp_user_id == user_id)
        ),
        "look up the coach row of a user",
    )
    return Actor(
        wp_user_id=user_id,
        is_admin=ADMINISTRATOR_ROLE in user.roles,
        coach_id=coach_id,
        display_name=user.display_name,
    )


def can_see_enrollment(actor: Actor, enrollment: Enrollment) -> bool:
    """Return whether the actor may see an enrollment and everything under it.

    Administrators see every enrollment. Clients see their own while it is
    active: after a refund, an expiry or an unenrollment the program leaves their
    Coaching tab, and its data stays for coaches and administrators. A coach sees
    the enrollments in the cohorts they lead now, so when a client moves to
    another coach's cohort the first coach loses access. ``enrollment.cohort`` is
    read, so the enrollment must be attached to a session or have its cohort
    loaded.
    """
    if actor.is_admin:
        return True
    if (
        enrollment.wp_user_id == actor.wp_user_id
        and enrollment.status is EnrollmentStatus.ACTIVE
    ):
        return True
    return actor.is_coach and enrollment.cohort.coach_id == actor.coach_id


def can_see_cohort(actor: Actor, cohort: Cohort) -> bool:
    """Return whether the actor may see a cohort's page: its coach or an admin."""
    return actor.is_admin or (actor.is_coach and cohort.coach_id == actor.coach_id)


def visible_enrollments(actor: Actor) -> sa.ColumnElement[bool]:
    """Build a WHERE clause on ``Enrollment`` with the rule of can_see_enrollment.

    Use it for lists, so that a list and a single object follow the same rule.
    """
    if actor.is_admin:
        return sa.true()
    own = sa.and_(
        Enrollment.wp_user_id == actor.wp_user_id,
        Enrollment.status == EnrollmentStatus.ACTIVE,
    )
    if not actor.is_coach:
        return own
    led_cohorts = sa.select(Cohort.id).where(Cohort.coach_id == actor.coach_id)
    return sa.or_(own, Enrollment.cohort_id.in_(led_cohorts))


def require_admin(actor: Actor) -> None:
    """Raise NotFound unless the actor is a WordPress administrator."""
    if not actor.is_admin:
        raise NotFound("page not found")


def require_coach_or_admin(actor: Actor) -> None:
    """Raise NotFound unless the actor is a coach or a WordPress administrator."""
    if not (actor.is_admin or actor.is_coach):
        raise NotFound("page not found")


def load_enrollment(session: Session, actor: Actor, enrollment_id: int) -> Enrollment:
    """Return an enrollment the actor may see, or raise NotFound."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or not can_see_enrollment(actor, enrollment):
        raise NotFound(f"enrollment {enrollment_id} not found")
    return enrollment


def load_milestone(
    session: Session, actor: Actor, enrollment_id: int, milestone_id: int
) -> tuple[Enrollment, Milestone]:
    """Return a visible enrollment and a milestone of its program, or raise NotFound.

    A milestone of another program is reported as not found, the same as a
    milestone that does not exist.
    """
    enrollment = load_enrollment(session, actor, enrollment_id)
    milestone = session.get(Milestone, milestone_id)
    if milestone is None or milestone.program_id != enrollment.program_id:
        raise NotFound(
            f"milestone {milestone_id} not found in enrollment {enrollment_id}"
        )
    return enrollment, milestone


def load_habit(
    session: Session, actor: Actor, enrollment_id: int, habit_id: int
) -> tuple[Enrollment, Habit]:
    """Return a visible enrollment and a habit of its program, or raise NotFound."""
    enrollment = load_enrollment(session, actor, enrollment_id)
    habit = session.get(Habit, habit_id)
    if habit is None or habit.program_id != enrollment.program_id:
        raise NotFound(f"habit {habit_id} not found in enrollment {enrollment_id}")
    return enrollment, habit


def load_cohort(session: Session, actor: Actor, cohort_id: int) -> Cohort:
    """Return a cohort that the actor may see, or raise NotFound."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None or not can_see_cohort(actor, cohort):
        raise NotFound(f"cohort {cohort_id} not found")
    return cohort


def load_activity(session: Session, actor: Actor, activity_id: int) -> Activity:
    """Return an activity entry the actor may see, or raise NotFound.

    The client an entry is about may see it. A coach may see it while the
    entry's enrollment is visible to them, under the current-cohort rule of
    can_see_enrollment. Entries without an enrollment are for the client and
    administrators only.
    """
    entry = session.get(Activity, activity_id)
    if entry is None or not _can_see_activity(session, actor, entry):
        raise NotFound(f"activity entry {activity_id} not found")
    return entry


def _can_see_activity(session: Session, actor: Actor, entry: Activity) -> bool:
    if actor.is_admin or entry.wp_user_id == actor.wp_user_id:
        return True
    if not actor.is_coach or entry.enrollment_id is None:
        return False
    enrollment = session.get(Enrollment, entry.enrollment_id)
    return enrollment is not None and can_see_enrollment(actor, enrollment)
