"""Ticks of milestones and habits by a client, with activity and evaluation.

The HTTP API calls these functions with an enrollment id it has already
authorized. Each call is one transaction that locks the enrollment row, so
concurrent ticks of one enrollment run one after the other:

- An unknown enrollment, milestone or habit, or a milestone or habit of another
  program, raises NotFound.
- An inactive enrollment raises Conflict: the request is valid, but the
  enrollment's state forbids changes until the member regains access.
- A habit tick on a date that is not one of the habit's due dates for this
  client, or that is after the site's today, raises InvalidRequest. A due date
  that has closed may still be ticked: the tick is late and counts.
- Ticking what is already ticked and unticking what is not ticked change
  nothing and write no activity entry.
- An untick removes an existing tick whatever its date, so a tick that a
  schedule change left on a date that is no longer due can still be removed.

Each effective change writes one activity entry (milestone_completed,
milestone_reopened, habit_ticked, habit_unticked) with the due date in its
details. A habit change also rewrites that habit's row in
``habit_tick_summaries``. Then the enrollment is evaluated at once, in the
same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge import activity, tick_summaries
from bridge.errors import Conflict, InvalidRequest, NotFound
from bridge.evaluation import EvaluationState, evaluate_enrollment_now, habit_schedule
from bridge.models import (
    ActivityType,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    Milestone,
    MilestoneTick,
)
from bridge.runtime import Runtime
from rules.progress import is_late_tick
from rules.schedules import HabitTimeline, MilestoneSchedule, milestone_due_date

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    """Outcome of one tick or untick: whether it changed anything, and the state."""

    changed: bool
    state: EvaluationState

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values."""
        return {"changed": self.changed, "evaluation": self.state.as_dict()}


def tick_milestone(
    runtime: Runtime, enrollment_id: int, milestone_id: int, actor_wp_user_id: int
) -> TickResult:
    """Mark a milestone done for an enrollment, then evaluate the enrollment."""
    work = partial(
        _set_milestone, runtime, enrollment_id, milestone_id, actor_wp_user_id, True
    )
    what = f"tick of milestone {milestone_id} for enrollment {enrollment_id}"
    return runtime.db.run(work, what)


def untick_milestone(
    runtime: Runtime, enrollment_id: int, milestone_id: int, actor_wp_user_id: int
) -> TickResult:
    """Reopen a milestone of an enrollment, then evaluate the enrollment."""
    work = partial(
        _set_milestone, runtime, enrollment_id, milestone_id, actor_wp_user_id, False
    )
    what = f"untick of milestone {milestone_id} for enrollment {enrollment_id}"
    return runtime.db.run(work, what)


def tick_habit(
    runtime: Runtime,
    enrollment_id: int,
    habit_id: int,
    due_date: dt.date,
    actor_wp_user_id: int,
) -> TickResult:
    """Mark one due date of a habit done, then evaluate the enrollment."""
    work = partial(
        _set_habit, runtime, enrollment_id, habit_id, due_date, actor_wp_user_id, True
    )
    what = f"tick of habit {habit_id} on {due_date} for enrollment {enrollment_id}"
    return runtime.db.run(work, what)


def untick_habit(
    runtime: Runtime,
    enrollment_id: int,
    habit_id: int,
    due_date: dt.date,
    actor_wp_user_id: int,
) -> TickResult:
    """Remove the tick of one date of a habit, then evaluate the enrollment."""
    work = partial(
        _set_habit, runtime, enrollment_id, habit_id, due_date, actor_wp_user_id, False
    )
    what = f"untick of habit {habit_id} on {due_date} for enrollment {enrollment_id}"
    return runtime.db.run(work, what)


def _set_milestone(
    runtime: Runtime,
    enrollment_id: int,
    milestone_id: int,
    actor_wp_user_id: int,
    done: bool,
    session: Session,
) -> TickResult:
    enrollment = _lock_active_enrollment(session, enrollment_id)
    milestone = session.get(Milestone, milestone_id)
    if milestone is None or milestone.program_id != enrollment.program_id:
        raise NotFound(
            f"milestone {milestone_id} not found in program {enrollment.program_id} "
            f"of enrollment {enrollment_id}"
        )

    today = runtime.today()
    now = _stored_now(runtime)
    existing = session.get(MilestoneTick, (enrollment_id, milestone_id))
    changed = (existing is None) == done
    if changed:
        if done:
            session.add(MilestoneTick(**_milestone_key(enrollment, milestone, now)))
        else:
            session.delete(existing)
        _record_milestone(session, enrollment, milestone, actor_wp_user_id, done, now)
        enrollment.last_activity_at = now
        session.flush()

    state = evaluate_enrollment_now(session, runtime, enrollment, today)
    return TickResult(changed, state)


def _milestone_key(
    enrollment: Enrollment, milestone: Milestone, now: dt.datetime
) -> dict[str, Any]:
    return {
        "enrollment_id": enrollment.id,
        "milestone_id": milestone.id,
        "ticked_at": now,
    }


def _record_milestone(
    session: Session,
    enrollment: Enrollment,
    milestone: Milestone,
    actor_wp_user_id: int,
    done: bool,
    now: dt.datetime,
) -> None:
    schedule = MilestoneSchedule(milestone.due_amount, milestone.due_unit)
    due_date = milestone_due_date(schedule, enrollment.start_date)
    kind = ActivityType.MILESTONE_COMPLETED if done else ActivityType.MILESTONE_REOPENED
    verb = "Completed" if done else "Reopened"
    activity.record(
        session,
        kind,
        **_subject(enrollment),
        actor_wp_user_id=actor_wp_user_id,
        summary=f"{verb} milestone {milestone.title}",
        details={"milestone_id": milestone.id, "due_date": due_date.isoformat()},
        occurred_at=now,
    )
    log.info(
        "%s milestone %s of enrollment %s by user %s",
        "ticked" if done else "unticked",
        milestone.id,
        enrollment.id,
        actor_wp_user_id,
    )


def _set_habit(
    runtime: Runtime,
    enrollment_id: int,
    habit_id: int,
    due_date: dt.date,
    actor_wp_user_id: int,
    done: bool,
    session: Session,
) -> TickResult:
    _require_date(due_date)
    enrollment = _lock_active_enrollment(session, enrollment_id)
    habit = session.get(Habit, habit_id)
    if habit is None or habit.program_id != enrollment.program_id:
        raise NotFound(
            f"habit {habit_id} not found in program {enrollment.program_id} "
            f"of enrollment {enrollment_id}"
        )

    today = runtime.today()
    if done:
        _check_due(enrollment, habit, due_date, today)
    now = _stored_now(runtime)
    key = (enrollment_id, habit_id, due_date)
    existing = session.get(HabitTick, key)
    changed = (existing is None) == done
    if changed:
        if done:
            session.add(HabitTick(**_habit_key(key), ticked_at=now))
        else:
            session.delete(existing)
        _record_habit(
            runtime, session, enrollment, habit, due_date, actor_wp_user_id, done
        )
        enrollment.last_activity_at = now
        tick_summaries.refresh_habit(session, enrollment_id, habit_id)

    state = evaluate_enrollment_now(session, runtime, enrollment, today)
    return TickResult(changed, state)


def _require_date(due_date: object) -> None:
    if not isinstance(due_date, dt.date) or isinstance(due_date, dt.datetime):
        raise InvalidRequest(
            f"invalid due date {due_date!r}, expected a calendar date such as "
            "2025-03-10"
        )


def _check_due(
    enrollment: Enrollment, habit: Habit, due_date: dt.date, today: dt.date
) -> None:
    if due_date > today:
        raise InvalidRequest(
            f"due date {due_date} of habit {habit.id} is in the future: the site's "
            f"today is {today}, so tick it on or after that date"
        )

    timeline = HabitTimeline.for_client(habit_schedule(habit), enrollment.start_date)
    if not timeline.is_due(due_date):
        raise InvalidRequest(
            f"habit {habit.id} is not due on {due_date} for enrollment "
            f"{enrollment.id}: its due dates follow its schedule from the start "
            f"date {enrollment.start_date}"
        )


def _habit_key(key: tuple[int, int, dt.date]) -> dict[str, Any]:
    enrollment_id, habit_id, due_date = key
    return {"enrollment_id": enrollment_id, "habit_id": habit_id, "due_date": due_date}


def _record_habit(
    runtime: Runtime,
    session: Session,
    enrollment: Enrollment,
    habit: Habit,
    due_date: dt.date,
    actor_wp_user_id: int,
    done: bool,
) -> None:
    late = is_late_tick(due_date, runtime.now(), runtime.site_zone())
    kind = ActivityType.HABIT_TICKED if done else ActivityType.HABIT_UNTICKED
    verb = "Ticked" if done else "Unticked"
    activity.record(
        session,
        kind,
        **_subject(enrollment),
        actor_wp_user_id=actor_wp_user_id,
        summary=f"{verb} {habit.title} for {due_date.isoformat()}",
        details={"habit_id": habit.id, "due_date": due_date.isoformat(), "late": late},
        occurred_at=_stored_now(runtime),
    )
    log.info(
        "%s habit %s on %s of enrollment %s by user %s%s",
        "ticked" if done else "unticked",
        habit.id,
        due_date,
        enrollment.id,
        actor_wp_user_id,
        " (late)" if late and done else "",
    )


def _lock_active_enrollment(session: Session, enrollment_id: int) -> Enrollment:
    query = (
        sa.select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update()
    )
    enrollment = session.scalar(query)
    if enrollment is None:
        raise NotFound(f"enrollment {enrollment_id} not found")
    if enrollment.status != EnrollmentStatus.ACTIVE:
        raise Conflict(
            f"enrollment {enrollment_id} is inactive, so its ticks cannot change "
            "until the member regains access to the program"
        )
    return enrollment


def _subject(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "wp_user_id": enrollment.wp_user_id,
        "program_id": enrollment.program_id,
        "cohort_id": enrollment.cohort_id,
        "coach_id": enrollment.cohort.coach_id,
        "enrollment_id": enrollment.id,
    }


def _stored_now(runtime: Runtime) -> dt.datetime:
    # MariaDB DATETIME keeps whole seconds, so the stored value drops the rest.
    return runtime.now().astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
