"""Off-track status, progress and completion of one enrollment.

``evaluate_enrollment`` is the reference for these rules. Any other implementation,
such as a set-based SQL query over many enrollments, must return the same values.

A due date is closed once the site's day has ended, that is when it is earlier than
the site's today. Today's due date stays open until midnight, site time. A tick
marks one due date of one habit as done, whenever it was made, so a late tick
repairs a miss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from fractions import Fraction

from rules.calendar import require_date, require_whole_number, to_site_date
from rules.schedules import HabitSchedule, HabitTimeline

DEFAULT_OFF_TRACK_THRESHOLD = 3


@dataclass(frozen=True)
class Progress:
    """Completion counts of one enrollment, as the client sees them.

    All milestones count in ``milestones_total``. ``habit_dates_due`` counts the
    closed due dates of all habits, plus today's due dates that are already ticked.
    An unticked due date today is left out until it closes, which matches the
    off-track rule and keeps progress from dropping at the site's midnight.
    ``habit_dates_done`` counts the ticked dates among them.
    """

    milestones_done: int
    milestones_total: int
    habit_dates_done: int
    habit_dates_due: int

    def __post_init__(self) -> None:
        for field in (
            "milestones_done",
            "milestones_total",
            "habit_dates_done",
            "habit_dates_due",
        ):
            require_whole_number(getattr(self, field), field, 0)
        if self.milestones_done > self.milestones_total:
            raise ValueError(
                f"invalid milestones_done {self.milestones_done}, exceeds "
                f"milestones_total {self.milestones_total}"
            )
        if self.habit_dates_done > self.habit_dates_due:
            raise ValueError(
                f"invalid habit_dates_done {self.habit_dates_done}, exceeds "
                f"habit_dates_due {self.habit_dates_due}"
            )

    @property
    def percent(self) -> int:
        """Overall progress from 0 to 100, rounded down.

        It is the mean of the milestone share and the habit share, each counted
        only when its total is above 0, and 0 when both totals are 0. Pooling the
        counts instead would let a daily habit's hundreds of dates drown out a
        handful of milestones. Rounding down keeps 100 for a fully done program.
        With both totals above 0 it equals, in integer arithmetic,
        100 * (milestones_done * habit_dates_due
        + habit_dates_done * milestones_total)
        // (2 * milestones_total * habit_dates_due).
        """
        shares: list[Fraction] = []
        if self.milestones_total:
            shares.append(Fraction(self.milestones_done, self.milestones_total))
        if self.habit_dates_due:
            shares.append(Fraction(self.habit_dates_done, self.habit_dates_due))
        if not shares:
            return 0
        return math.floor(100 * sum(shares) / len(shares))


@dataclass(frozen=True)
class Evaluation:
    """Result of evaluating one enrollment on one site date."""

    off_track_habit_ids: frozenset[int]
    progress: Progress
    completed: bool

    @property
    def off_track(self) -> bool:
        """Whether any habit of the enrollment is off track."""
        return bool(self.off_track_habit_ids)


def is_off_track(
    schedule: HabitSchedule,
    start_date: date,
    today: date,
    ticked_dates: Set[date],
    threshold: int = DEFAULT_OFF_TRACK_THRESHOLD,
) -> bool:
    """Return whether the habit's last ``threshold`` closed due dates were all missed.

    A habit with fewer than ``threshold`` closed due dates is not off track.
    """
    require_date(today, "today")
    require_whole_number(threshold, "threshold", 1)
    timeline = HabitTimeline.for_client(schedule, start_date)
    return _is_off_track(timeline, today, ticked_dates, threshold)


def _is_off_track(
    timeline: HabitTimeline, today: date, ticked_dates: Set[date], threshold: int
) -> bool:
    latest_closed = timeline.latest_due_dates_before(today, threshold)
    if len(latest_closed) < threshold:
        return False
    return not any(day in ticked_dates for day in latest_closed)


def is_tick_allowed(
    schedule: HabitSchedule, start_date: date, due_date: date, today: date
) -> bool:
    """Return whether a client may tick ``due_date`` on the site date ``today``.

    Any due date up to today may be ticked, including closed ones, so a client can
    catch up after midnight. Future dates and dates that are not due are rejected.
    """
    require_date(due_date, "due_date")
    require_date(today, "today")
    timeline = HabitTimeline.for_client(schedule, start_date)
    return due_date <= today and timeline.is_due(due_date)


def is_late_tick(due_date: date, ticked_at: datetime, zone: tzinfo) -> bool:
    """Return whether a tick made at the aware instant ``ticked_at`` is late.

    A tick is late when the site's day of ``due_date`` had ended when it was made.
    A late tick still counts as done.
    """
    require_date(due_date, "due_date")
    return to_site_date(ticked_at, zone) > due_date


def evaluate_enrollment(
    *,
    start_date: date,
    today: date,
    milestone_done: Mapping[int, bool],
    habits: Mapping[int, HabitSchedule],
    ticks: Iterable[tuple[int, date]],
    threshold: int = DEFAULT_OFF_TRACK_THRESHOLD,
) -> Evaluation:
    """Compute off-track flags, progress and completion of one enrollment.

    ``milestone_done`` maps each milestone id of the program to whether the client
    completed it, and ``habits`` maps each habit id to its schedule. ``ticks``
    contains (habit id, due date) pairs. Ticks for unknown habits, on dates that
    are not due, or after today are ignored.

    The program is completed when every milestone is done and the last due date
    over all habits is closed. A program with neither milestones nor habit due
    dates is never completed, because there is nothing to finish.
    """
    require_date(start_date, "start_date")
    require_date(today, "today")
    require_whole_number(threshold, "threshold", 1)
    ticks_by_habit = _group_ticks(ticks)

    off_track_habit_ids: set[int] = set()
    habit_dates_done = 0
    habit_dates_due = 0
    last_due_dates: list[date] = []
    for habit_id, schedule in habits.items():
        timeline = HabitTimeline.for_client(schedule, start_date)
        ticked_dates = ticks_by_habit.get(habit_id, frozenset())

        if _is_off_track(timeline, today, ticked_dates, threshold):
            off_track_habit_ids.add(habit_id)

        done, due = _count_habit_dates(timeline, today, ticked_dates)
        habit_dates_done += done
        habit_dates_due += due

        last_due = timeline.last_due_date()
        if last_due is not None:
            last_due_dates.append(last_due)

    milestones_total = len(milestone_done)
    milestones_done = sum(1 for done in milestone_done.values() if done)
    progress = Progress(
        milestones_done=milestones_done,
        milestones_total=milestones_total,
        habit_dates_done=habit_dates_done,
        habit_dates_due=habit_dates_due,
    )

    completed = _is_completed(progress, last_due_dates, today)
    return Evaluation(frozenset(off_track_habit_ids), progress, completed)


def _group_ticks(ticks: Iterable[tuple[int, date]]) -> dict[int, set[date]]:
    ticks_by_habit: dict[int, set[date]] = {}
    for habit_id, due_date in ticks:
        # The exact type test skips the slower check for the usual plain date.
        if type(due_date) is not date:
            require_date(due_date, "tick due date")
        ticks_by_habit.setdefault(habit_id, set()).add(due_date)
    return ticks_by_habit


def _count_habit_dates(
    timeline: HabitTimeline, today: date, ticked_dates: Set[date]
) -> tuple[int, int]:
    done = timeline.count_due_among(ticked_dates, today)

    due = timeline.count_due_dates_before(today)
    if today in ticked_dates and timeline.is_due(today):
        due += 1
    return done, due


def _is_completed(progress: Progress, last_due_dates: list[date], today: date) -> bool:
    if progress.milestones_total == 0 and not last_due_dates:
        return False
    if progress.milestones_done < progress.milestones_total:
        return False
    return all(last_due < today for last_due in last_due_dates)
