"""Ticks through the service: validation, activity, evaluation and site time.

The ``Coaching`` helper here builds programs, habits and enrollments on a
``Harness``, and tests/test_evaluation.py uses it too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from bridge.errors import Conflict, InvalidRequest, NotFound
from bridge.models import (
    Activity,
    ActivityType,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    Milestone,
    MilestoneTick,
)
from bridge.ticks import tick_habit, tick_milestone, untick_habit, untick_milestone
from tests.test_enrollment_harness import BACKENDS, Harness, build_harness

UTC = dt.UTC
COACH_ACTOR = 900
CLIENT = 501


@dataclass
class Coaching:
    """A program with one cohort on a harness, and helpers to fill and read it."""

    harness: Harness
    program_id: int
    cohort_id: int

    @property
    def runtime(self):
        return self.harness.runtime

    def at(self, instant: dt.datetime) -> None:
        """Set the runtime's clock to an aware instant."""
        self.harness.clock.now = instant

    def add_milestone(self, title: str, amount: int, unit: str = "weeks") -> int:
        milestone = Milestone(
            program_id=self.program_id, title=title, due_amount=amount, due_unit=unit
        )
        return self._add(milestone)

    def add_habit(
        self,
        title: str,
        schedule: str = "daily",
        *,
        weekdays: tuple[int, ...] = (),
        interval: int | None = None,
        offset: int = 0,
        amount: int = 4,
        unit: str = "weeks",
        program_id: int | None = None,
    ) -> int:
        habit = Habit(
            program_id=program_id or self.program_id,
            title=title,
            schedule=schedule,
            weekdays=sum(1 << day for day in weekdays),
            interval_days=interval,
            start_offset_days=offset,
            length_amount=amount,
            length_unit=unit,
        )
        return self._add(habit)

    def enroll(
        self,
        start_date: dt.date,
        wp_user_id: int = CLIENT,
        status: EnrollmentStatus = EnrollmentStatus.ACTIVE,
        program_id: int | None = None,
        cohort_id: int | None = None,
    ) -> int:
        enrollment = Enrollment(
            wp_user_id=wp_user_id,
            program_id=program_id or self.program_id,
            cohort_id=cohort_id or self.cohort_id,
            status=status,
            start_date=start_date,
        )
        return self._add(enrollment)

    def enrollment(self, enrollment_id: int) -> Enrollment:
        with self.runtime.db.session() as session:
            return session.get_one(Enrollment, enrollment_id)

    def set_status(self, enrollment_id: int, status: EnrollmentStatus) -> None:
        with self.runtime.db.session() as session:
            session.get_one(Enrollment, enrollment_id).status = status

    def activities(self, kind: ActivityType | None = None) -> list[Activity]:
        return self.harness.activities(kind)

    def habit_ticks(self, enrollment_id: int) -> list[tuple[int, dt.date]]:
        query = (
            sa.select(HabitTick.habit_id, HabitTick.due_date)
            .where(HabitTick.enrollment_id == enrollment_id)
            .order_by(HabitTick.habit_id, HabitTick.due_date)
        )
        with self.runtime.db.session() as session:
            return [tuple(row) for row in session.execute(query)]

    def milestone_ticks(self, enrollment_id: int) -> list[int]:
        query = sa.select(MilestoneTick.milestone_id).where(
            MilestoneTick.enrollment_id == enrollment_id
        )
        with self.runtime.db.session() as session:
            return list(session.scalars(query))

    def _add(self, row) -> int:
        with self.runtime.db.session() as session:
            session.add(row)
            session.flush()
            return row.id


def build_coaching(harness: Harness, slug: str = "strength") -> Coaching:
    """Add a program with one rolling cohort to the harness."""
    program = harness.add_program(slug, [], title=slug.title())
    return Coaching(harness, program.id, program.cohort_ids[0])


def set_site_zone(harness: Harness, timezone_string: str, gmt_offset: str) -> None:
    """Store the WordPress time zone options that the runtime reads.

    Call it before the runtime first reads the zone, which it then caches.
    """
    harness.site.set_option("timezone_string", timezone_string)
    harness.site.set_option("gmt_offset", gmt_offset)


@pytest.fixture(params=BACKENDS)
def harness(request, make_runtime, tmp_path) -> Harness:
    return build_harness(request, make_runtime, tmp_path)


@pytest.fixture
def coaching(harness: Harness) -> Coaching:
    return build_coaching(harness)


START = dt.date(2025, 3, 3)  # a Monday
NOON = dt.time(12, 0)


def noon_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, NOON, tzinfo=UTC)


# Milestones.


def test_milestone_tick_writes_activity(coaching):
    milestone = coaching.add_milestone("First check-in", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=2)))

    result = tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    assert result.changed
    assert result.state.milestones_done == 1
    assert result.state.milestones_total == 1
    assert coaching.milestone_ticks(enrollment) == [milestone]
    [entry] = coaching.activities(ActivityType.MILESTONE_COMPLETED)
    assert entry.enrollment_id == enrollment
    assert entry.actor_wp_user_id == CLIENT
    assert entry.wp_user_id == CLIENT
    assert entry.details == {"milestone_id": milestone, "due_date": "2025-03-10"}
    assert "First check-in" in entry.summary


def test_milestone_tick_twice_changes_once(coaching):
    milestone = coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    first = tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)
    second = tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    assert first.changed
    assert not second.changed
    assert second.state == first.state
    assert coaching.milestone_ticks(enrollment) == [milestone]
    assert len(coaching.activities(ActivityType.MILESTONE_COMPLETED)) == 1


def test_milestone_untick_reopens(coaching):
    milestone = coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))
    tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    result = untick_milestone(coaching.runtime, enrollment, milestone, COACH_ACTOR)

    assert result.changed
    assert result.state.milestones_done == 0
    assert coaching.milestone_ticks(enrollment) == []
    [entry] = coaching.activities(ActivityType.MILESTONE_REOPENED)
    assert entry.actor_wp_user_id == COACH_ACTOR
    assert entry.details["due_date"] == "2025-03-10"


def test_milestone_untick_not_ticked_is_noop(coaching):
    milestone = coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    result = untick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    assert not result.changed
    assert coaching.activities(ActivityType.MILESTONE_REOPENED) == []


@pytest.mark.parametrize(
    ("start", "expected_due"),
    [
        pytest.param(dt.date(2025, 1, 31), "2025-02-28", id="jan31"),
        pytest.param(dt.date(2024, 1, 31), "2024-02-29", id="jan31-leap"),
        pytest.param(dt.date(2025, 8, 31), "2025-09-30", id="aug31"),
    ],
)
def test_milestone_month_end_due_date(coaching, start, expected_due):
    milestone = coaching.add_milestone("Month review", 1, "months")
    enrollment = coaching.enroll(start)
    coaching.at(noon_utc(start + dt.timedelta(days=40)))

    result = tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    [entry] = coaching.activities(ActivityType.MILESTONE_COMPLETED)
    assert entry.details["due_date"] == expected_due
    # With every milestone done and no habit, the program is complete.
    assert result.state.completed_on == (start + dt.timedelta(days=40))
    assert len(coaching.activities(ActivityType.PROGRAM_COMPLETED)) == 1


def test_milestone_of_other_program_not_found(coaching, harness):
    other = build_coaching(harness, "mobility")
    milestone = other.add_milestone("Elsewhere", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    with pytest.raises(NotFound, match=f"milestone {milestone} not found"):
        tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)


def test_unknown_milestone_not_found(coaching):
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    with pytest.raises(NotFound, match="milestone 4242 not found"):
        tick_milestone(coaching.runtime, enrollment, 4242, CLIENT)


# Habits: validation.


def test_unknown_enrollment_not_found(coaching):
    habit = coaching.add_habit("Walk")
    coaching.at(noon_utc(START))

    with pytest.raises(NotFound, match="enrollment 777 not found"):
        tick_habit(coaching.runtime, 777, habit, START, CLIENT)


def test_unknown_habit_not_found(coaching):
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    with pytest.raises(NotFound, match="habit 4242 not found"):
        tick_habit(coaching.runtime, enrollment, 4242, START, CLIENT)


def test_habit_of_other_program_not_found(coaching, harness):
    other = build_coaching(harness, "mobility")
    habit = other.add_habit("Stretch")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    with pytest.raises(NotFound, match=f"habit {habit} not found in program"):
        tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)
    assert coaching.habit_ticks(enrollment) == []


def test_habit_not_due_rejected(coaching):
    habit = coaching.add_habit("Lift", "weekdays", weekdays=(0, 2, 4))
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=3)))
    tuesday = START + dt.timedelta(days=1)

    with pytest.raises(InvalidRequest, match=f"not due on {tuesday}"):
        tick_habit(coaching.runtime, enrollment, habit, tuesday, CLIENT)
    assert coaching.habit_ticks(enrollment) == []
    assert coaching.activities(ActivityType.HABIT_TICKED) == []


def test_habit_before_window_rejected(coaching):
    habit = coaching.add_habit("Run", offset=7)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=3)))

    with pytest.raises(InvalidRequest, match="not due on"):
        tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)


def test_habit_after_window_rejected(coaching):
    habit = coaching.add_habit("Run", amount=7, unit="days")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=10)))

    with pytest.raises(InvalidRequest, match="not due on"):
        tick_habit(coaching.runtime, enrollment, habit, START + dt.timedelta(7), CLIENT)


def test_habit_future_date_rejected(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))
    tomorrow = START + dt.timedelta(days=1)

    with pytest.raises(InvalidRequest, match=f"{tomorrow} of habit {habit} is in"):
        tick_habit(coaching.runtime, enrollment, habit, tomorrow, CLIENT)
    assert coaching.habit_ticks(enrollment) == []


def test_habit_datetime_rejected(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    with pytest.raises(InvalidRequest, match="expected a calendar date"):
        tick_habit(coaching.runtime, enrollment, habit, noon_utc(START), CLIENT)


def test_inactive_enrollment_conflict(coaching):
    habit = coaching.add_habit("Walk")
    milestone = coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START, status=EnrollmentStatus.INACTIVE)
    coaching.at(noon_utc(START))

    with pytest.raises(Conflict, match=f"enrollment {enrollment} is inactive"):
        tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)
    with pytest.raises(Conflict, match="is inactive"):
        untick_habit(coaching.runtime, enrollment, habit, START, CLIENT)
    with pytest.raises(Conflict, match="is inactive"):
        tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)
    with pytest.raises(Conflict, match="is inactive"):
        untick_milestone(coaching.runtime, enrollment, milestone, CLIENT)
    assert coaching.activities() == []


# Habits: effects.


def test_habit_tick_writes_activity(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    result = tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    assert result.changed
    assert coaching.habit_ticks(enrollment) == [(habit, START)]
    [entry] = coaching.activities(ActivityType.HABIT_TICKED)
    assert entry.details == {"habit_id": habit, "due_date": "2025-03-03", "late": False}
    assert entry.actor_wp_user_id == CLIENT
    assert result.state.habit_dates_done == 1
    assert result.state.habit_dates_due == 1
    assert result.state.evaluated_on == START
    assert coaching.enrollment(enrollment).last_activity_at == noon_utc(START).replace(
        tzinfo=None
    )


def test_habit_tick_twice_changes_once(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    first = tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)
    second = tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    assert first.changed
    assert not second.changed
    assert coaching.habit_ticks(enrollment) == [(habit, START)]
    assert len(coaching.activities(ActivityType.HABIT_TICKED)) == 1
    assert second.as_dict()["evaluation"]["habit_dates_done"] == 1


def test_habit_untick_removes(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))
    tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    result = untick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    assert result.changed
    assert coaching.habit_ticks(enrollment) == []
    [entry] = coaching.activities(ActivityType.HABIT_UNTICKED)
    assert entry.details["due_date"] == "2025-03-03"
    # An unticked date of today stays open, so it leaves the due count.
    assert result.state.habit_dates_due == 0
    assert result.state.habit_dates_done == 0


def test_habit_untick_not_ticked_is_noop(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))

    result = untick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    assert not result.changed
    assert coaching.activities(ActivityType.HABIT_UNTICKED) == []


def test_late_tick_counts_and_repairs(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=3)))
    # Three closed due dates all missed: the tick of an unrelated date makes
    # the evaluation run, and it finds the client off track.
    today = START + dt.timedelta(days=3)
    off = tick_habit(coaching.runtime, enrollment, habit, today, CLIENT)
    assert off.state.off_track

    late = tick_habit(
        coaching.runtime, enrollment, habit, START + dt.timedelta(days=1), CLIENT
    )

    assert late.changed
    assert not late.state.off_track
    assert late.state.habit_dates_done == 2
    assert late.state.habit_dates_due == 4
    entries = coaching.activities(ActivityType.HABIT_TICKED)
    assert [entry.details["late"] for entry in entries] == [False, True]
    assert len(coaching.activities(ActivityType.OFF_TRACK)) == 1
    assert len(coaching.activities(ActivityType.BACK_ON_TRACK)) == 1


def test_untick_puts_off_track(coaching):
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START))
    tick_habit(coaching.runtime, enrollment, habit, START, CLIENT)
    coaching.at(noon_utc(START + dt.timedelta(days=3)))

    result = untick_habit(coaching.runtime, enrollment, habit, START, CLIENT)

    assert result.state.off_track
    [entry] = coaching.activities(ActivityType.OFF_TRACK)
    assert entry.details["habit_ids"] == [habit]
    assert entry.actor_wp_user_id is None


def test_progress_percent_after_ticks(coaching):
    walk = coaching.add_habit("Walk")
    milestone = coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(START + dt.timedelta(days=4)))

    tick_habit(coaching.runtime, enrollment, walk, START, CLIENT)
    result = tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    # Milestones 1 of 1 and habit dates 1 of 4: (100% + 25%) / 2.
    assert result.state.progress_percent == 62
    assert coaching.enrollment(enrollment).progress_percent == 62


# Site time: the site's today decides which dates are in the future.


def midnight_utc(day: dt.date, zone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "day", "midnight"),
    [
        pytest.param(
            "Europe/Paris",
            dt.date(2025, 3, 31),
            dt.datetime(2025, 3, 30, 22, 0, tzinfo=UTC),
            id="paris-after-spring-switch",
        ),
        pytest.param(
            "Europe/Paris",
            dt.date(2025, 3, 30),
            dt.datetime(2025, 3, 29, 23, 0, tzinfo=UTC),
            id="paris-spring-switch-day",
        ),
        pytest.param(
            "Europe/Paris",
            dt.date(2025, 10, 26),
            dt.datetime(2025, 10, 25, 22, 0, tzinfo=UTC),
            id="paris-autumn-switch-day",
        ),
        pytest.param(
            "Europe/Paris",
            dt.date(2025, 10, 27),
            dt.datetime(2025, 10, 26, 23, 0, tzinfo=UTC),
            id="paris-after-autumn-switch",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.date(2025, 3, 9),
            dt.datetime(2025, 3, 9, 8, 0, tzinfo=UTC),
            id="la-spring-switch-day",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.date(2025, 3, 10),
            dt.datetime(2025, 3, 10, 7, 0, tzinfo=UTC),
            id="la-after-spring-switch",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.date(2025, 11, 2),
            dt.datetime(2025, 11, 2, 7, 0, tzinfo=UTC),
            id="la-autumn-switch-day",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.date(2025, 11, 3),
            dt.datetime(2025, 11, 3, 8, 0, tzinfo=UTC),
            id="la-after-autumn-switch",
        ),
    ],
)
def test_site_midnight_across_dst(coaching, harness, zone, day, midnight):
    set_site_zone(harness, zone, "")
    assert midnight_utc(day, zone) == midnight
    habit = coaching.add_habit("Walk", amount=1, unit="months")
    enrollment = coaching.enroll(day - dt.timedelta(days=5))

    coaching.at(midnight - dt.timedelta(seconds=1))
    with pytest.raises(InvalidRequest, match="is in the future"):
        tick_habit(coaching.runtime, enrollment, habit, day, CLIENT)

    coaching.at(midnight)
    result = tick_habit(coaching.runtime, enrollment, habit, day, CLIENT)

    assert result.changed
    assert result.state.evaluated_on == day
    [entry] = coaching.activities(ActivityType.HABIT_TICKED)
    assert entry.details["late"] is False


@pytest.mark.parametrize(
    ("timezone_string", "gmt_offset", "midnight"),
    [
        pytest.param(
            "", "5.5", dt.datetime(2025, 6, 9, 18, 30, tzinfo=UTC), id="gmt+5.5"
        ),
        pytest.param(
            "", "-9.5", dt.datetime(2025, 6, 10, 9, 30, tzinfo=UTC), id="gmt-9.5"
        ),
        pytest.param(
            "UTC+5.5",
            "",
            dt.datetime(2025, 6, 9, 18, 30, tzinfo=UTC),
            id="manual-utc+5.5",
        ),
    ],
)
def test_site_midnight_fixed_offsets(
    coaching, harness, timezone_string, gmt_offset, midnight
):
    set_site_zone(harness, timezone_string, gmt_offset)
    day = dt.date(2025, 6, 10)
    habit = coaching.add_habit("Walk")
    enrollment = coaching.enroll(day - dt.timedelta(days=3))

    coaching.at(midnight - dt.timedelta(seconds=1))
    with pytest.raises(InvalidRequest, match="is in the future"):
        tick_habit(coaching.runtime, enrollment, habit, day, CLIENT)

    coaching.at(midnight)
    assert tick_habit(coaching.runtime, enrollment, habit, day, CLIENT).changed


@pytest.mark.parametrize(
    ("zone", "midnight"),
    [
        pytest.param(
            "Europe/Paris",
            dt.datetime(2025, 3, 30, 22, 0, tzinfo=UTC),
            id="paris-spring",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.datetime(2025, 11, 3, 8, 0, tzinfo=UTC),
            id="la-autumn",
        ),
    ],
)
def test_tick_just_after_midnight_is_late(coaching, harness, zone, midnight):
    set_site_zone(harness, zone, "")
    habit = coaching.add_habit("Walk")
    today = midnight.astimezone(harness.runtime.site_zone()).date()
    yesterday = today - dt.timedelta(days=1)
    enrollment = coaching.enroll(yesterday - dt.timedelta(days=2))

    coaching.at(midnight + dt.timedelta(seconds=1))
    result = tick_habit(coaching.runtime, enrollment, habit, yesterday, CLIENT)

    assert result.changed
    [entry] = coaching.activities(ActivityType.HABIT_TICKED)
    assert entry.details == {
        "habit_id": habit,
        "due_date": yesterday.isoformat(),
        "late": True,
    }
    # Three closed due dates, one ticked: counted and not off track.
    assert result.state.habit_dates_done == 1
    assert result.state.habit_dates_due == 3
    assert not result.state.off_track
