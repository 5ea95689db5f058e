"""Milestone due dates and habit schedules.

A client's start date anchors everything. A milestone is due a fixed delay after it.
A habit is due on some dates of its window, which opens ``start_offset_days`` after
the start date and lasts ``length_amount`` ``length_unit``. The window excludes its
end date. Date windows passed to these functions also exclude their end.

Counting due dates takes constant time, and finding the latest ones takes at most
seven steps per date returned, so a habit with hundreds of due dates costs no more
to evaluate than one with three.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from rules.calendar import (
    DurationUnit,
    add_duration,
    parse_duration_unit,
    require_date,
    require_whole_number,
)

_ONE_DAY = timedelta(days=1)


class ScheduleKind(StrEnum):
    """Kind of habit schedule, stored as its string value."""

    DAILY = "daily"
    WEEKDAYS = "weekdays"
    INTERVAL = "interval"


@dataclass(frozen=True)
class MilestoneSchedule:
    """Delay from the client's start date to a milestone's due date."""

    due_amount: int
    due_unit: DurationUnit

    def __post_init__(self) -> None:
        require_whole_number(self.due_amount, "due_amount", 0)
        unit = parse_duration_unit(self.due_unit, "due_unit")
        object.__setattr__(self, "due_unit", unit)


def milestone_due_date(milestone: MilestoneSchedule, start_date: date) -> date:
    """Return the date a milestone is due for a client who started on ``start_date``."""
    return add_duration(start_date, milestone.due_amount, milestone.due_unit)


@dataclass(frozen=True)
class HabitSchedule:
    """Recurrence and window of a habit, relative to the client's start date.

    ``weekdays`` uses Monday=0 to Sunday=6 and must be non-empty for the weekdays
    kind and empty otherwise. ``interval_days`` is required for the interval kind
    and must be None otherwise, so a mistyped kind cannot silently ignore a field.
    Any iterable of weekdays is accepted and stored as a frozenset.
    """

    kind: ScheduleKind
    start_offset_days: int
    length_amount: int
    length_unit: DurationUnit
    weekdays: frozenset[int] = frozenset()
    interval_days: int | None = None

    def __post_init__(self) -> None:
        kind = _parse_kind(self.kind)
        object.__setattr__(self, "kind", kind)

        require_whole_number(self.start_offset_days, "start_offset_days", 0)
        require_whole_number(self.length_amount, "length_amount", 1)
        unit = parse_duration_unit(self.length_unit, "length_unit")
        object.__setattr__(self, "length_unit", unit)

        weekdays = _parse_weekdays(self.weekdays)
        object.__setattr__(self, "weekdays", weekdays)
        if kind is ScheduleKind.WEEKDAYS and not weekdays:
            raise ValueError(
                "missing weekdays for kind 'weekdays', expected at least one "
                "weekday from 0 (Monday) to 6 (Sunday)"
            )
        if kind is not ScheduleKind.WEEKDAYS and weekdays:
            raise ValueError(
                f"invalid weekdays {sorted(weekdays)} for kind {kind.value!r}, "
                "because weekdays apply only to kind 'weekdays'"
            )

        if kind is ScheduleKind.INTERVAL:
            if self.interval_days is None:
                raise ValueError(
                    "missing interval_days for kind 'interval', "
                    "expected the number of days between due dates (at least 1)"
                )
            require_whole_number(self.interval_days, "interval_days", 1)
        elif self.interval_days is not None:
            raise ValueError(
                f"invalid interval_days {self.interval_days!r} for kind "
                f"{kind.value!r}, because interval_days applies only to kind "
                "'interval'"
            )


def _parse_kind(value: str | ScheduleKind) -> ScheduleKind:
    try:
        return ScheduleKind(value)
    except ValueError:
        allowed = ", ".join(repr(kind.value) for kind in ScheduleKind)
        message = f"invalid kind {value!r}, expected one of {allowed}"
        raise ValueError(message) from None


def _parse_weekdays(values: Iterable[int]) -> frozenset[int]:
    if isinstance(values, str | bytes):
        raise ValueError(
            f"invalid weekdays {values!r}, expected a collection of integers 0 to 6"
        )
    weekdays = frozenset(values)
    for weekday in weekdays:
        valid = isinstance(weekday, int) and not isinstance(weekday, bool)
        if not valid or not 0 <= weekday <= 6:
            raise ValueError(
                f"invalid weekday {weekday!r} in weekdays, "
                "expected integers from 0 (Monday) to 6 (Sunday)"
            )
    return weekdays


def habit_window(schedule: HabitSchedule, start_date: date) -> tuple[date, date]:
    """Return the habit's window [first, end) for a client who started on a date.

    The end is the first date plus the habit length in calendar arithmetic, so a
    one-month habit opening on 31 January ends on the last day of February.
    """
    first = add_duration(start_date, schedule.start_offset_days, DurationUnit.DAYS)
    end = add_duration(first, schedule.length_amount, schedule.length_unit)
    return first, end


@dataclass(frozen=True)
class HabitTimeline:
    """A habit's schedule placed on one client's calendar.

    Build it with ``HabitTimeline.for_client`` so the window is computed once when
    several questions are asked about the same habit and client.
    """

    schedule: HabitSchedule
    first: date
    end: date

    @classmethod
    def for_client(cls, schedule: HabitSchedule, start_date: date) -> HabitTimeline:
        """Compute the habit's window for a client who started on ``start_date``."""
        first, end = habit_window(schedule, start_date)
        return cls(schedule, first, end)

    def is_due(self, day: date) -> bool:
        """Return whether the habit is due on ``day``."""
        return self.first <= day < self.end and self._matches_recurrence(day)

    def _matches_recurrence(self, day: date) -> bool:
        schedule = self.schedule
        if schedule.kind is ScheduleKind.DAILY:
            return True
        if schedule.kind is ScheduleKind.WEEKDAYS:
            return day.weekday() in schedule.weekdays
        return (day - self.first).days % schedule.interval_days == 0

    def count_due_among(self, days: Iterable[date], through: date) -> int:
        """Count the dates in ``days`` that are due and not later than ``through``.

        ``days`` must not repeat a date. The loop checks the kind once instead of
        per date, because evaluation runs it over every tick of every enrollment.
        """
        low = self.first
        high = min(self.end, through + _ONE_DAY)
        schedule = self.schedule
        if schedule.kind is ScheduleKind.DAILY:
            return sum(1 for day in days if low <= day < high)

        if schedule.kind is ScheduleKind.WEEKDAYS:
            weekdays = schedule.weekdays
            return sum(
                1 for day in days if low <= day < high and day.weekday() in weekdays
            )

        first_ordinal = low.toordinal()
        interval = schedule.interval_days
        return sum(
            1
            for day in days
            if low <= day < high and (day.toordinal() - first_ordinal) % interval == 0
        )

    def due_dates_between(self, window_start: date, window_end: date) -> list[date]:
        """List the due dates in [window_start, window_end), in ascending order."""
        low = max(self.first, window_start)
        high = min(self.end, window_end)
        if low >= high:
            return []

        schedule = self.schedule
        if schedule.kind is ScheduleKind.INTERVAL:
            step = timedelta(days=schedule.interval_days)
            steps_to_low = -(-(low - self.first).days // schedule.interval_days)
            day = self.first + steps_to_low * step
            due_dates = []
            while day < high:
                due_dates.append(day)
                day += step
            return due_dates

        days = (low + timedelta(days=offset) for offset in range((high - low).days))
        if schedule.kind is ScheduleKind.DAILY:
            return list(days)
        return [day for day in days if day.weekday() in schedule.weekdays]

    def last_due_date(self) -> date | None:
        """Return the final due date, or None if the window contains none."""
        return self.last_due_on_or_before(self.end - _ONE_DAY)

    def last_due_on_or_before(self, day: date) -> date | None:
        """Return the latest due date not after ``day``, or None if there is none."""
        day = min(day, self.end - _ONE_DAY)
        if day < self.first:
            return None

        schedule = self.schedule
        if schedule.kind is ScheduleKind.DAILY:
            return day
        if schedule.kind is ScheduleKind.INTERVAL:
            whole_intervals = (day - self.first).days // schedule.interval_days
            return self.first + timedelta(days=whole_intervals * schedule.interval_days)

        for days_back in range(7):
            candidate = day - timedelta(days=days_back)
            if candidate < self.first:
                return None
            if candidate.weekday() in schedule.weekdays:
                return candidate
        return None

    def latest_due_dates_before(self, before: date, count: int) -> list[date]:
        """List the last ``count`` due dates earlier than ``before``, ascending.

        Fewer are returned when fewer exist.
        """
        latest: list[date] = []
        day = self.last_due_on_or_before(before - _ONE_DAY)
        while day is not None and len(latest) < count:
            latest.append(day)
            day = self.last_due_on_or_before(day - _ONE_DAY)

        latest.reverse()
        return latest

    def count_due_dates_before(self, before: date) -> int:
        """Count the due dates earlier than ``before``."""
        high = min(self.end, before)
        span_days = (high - self.first).days
        if span_days <= 0:
            return 0

        schedule = self.schedule
        if schedule.kind is ScheduleKind.DAILY:
            return span_days
        if schedule.kind is ScheduleKind.INTERVAL:
            return (span_days - 1) // schedule.interval_days + 1

        # Every run of seven days contains each chosen weekday exactly once.
        whole_weeks, remaining_days = divmod(span_days, 7)
        count = whole_weeks * len(schedule.weekdays)
        first_weekday = self.first.weekday()
        for offset in range(remaining_days):
            if (first_weekday + offset) % 7 in schedule.weekdays:
                count += 1
        return count


def is_due_date(schedule: HabitSchedule, start_date: date, day: date) -> bool:
    """Return whether the habit is due on ``day`` for a client who started on a date."""
    require_date(day, "day")
    return HabitTimeline.for_client(schedule, start_date).is_due(day)


def due_dates_between(
    schedule: HabitSchedule, start_date: date, window_start: date, window_end: date
) -> list[date]:
    """List the habit's due dates in [window_start, window_end), in ascending order.

    The client UI draws this as a grid, so the cost grows with the window, not with
    the habit's length.
    """
    require_date(window_start, "window_start")
    require_date(window_end, "window_end")
    timeline = HabitTimeline.for_client(schedule, start_date)
    return timeline.due_dates_between(window_start, window_end)


def all_due_dates(schedule: HabitSchedule, start_date: date) -> list[date]:
    """List every due date of the habit, in ascending order."""
    timeline = HabitTimeline.for_client(schedule, start_date)
    return timeline.due_dates_between(timeline.first, timeline.end)


def last_due_date(schedule: HabitSchedule, start_date: date) -> date | None:
    """Return the habit's final due date, or None if its window contains none.

    Only the weekdays kind can have no due date, when the window is shorter than a
    week and misses every chosen weekday.
    """
    return HabitTimeline.for_client(schedule, start_date).last_due_date()


def latest_due_dates_before(
    schedule: HabitSchedule, start_date: date, before: date, count: int
) -> list[date]:
    """List the last ``count`` due dates earlier than ``before``, in ascending order.

    Fewer are returned when fewer exist. With ``before`` set to the site's today,
    these are the latest closed due dates.
    """
    require_date(before, "before")
    require_whole_number(count, "count", 0)
    timeline = HabitTimeline.for_client(schedule, start_date)
    return timeline.latest_due_dates_before(before, count)


def count_due_dates_before(
    schedule: HabitSchedule, start_date: date, before: date
) -> int:
    """Count the habit's due dates earlier than ``before``.

    With ``before`` set to the site's today, this counts the closed due dates.
    """
    require_date(before, "before")
    return HabitTimeline.for_client(schedule, start_date).count_due_dates_before(before)
