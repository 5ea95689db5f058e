"""Tests for milestone due dates and habit schedules."""

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.calendar import DurationUnit
from rules.schedules import (
    HabitSchedule,
    HabitTimeline,
    MilestoneSchedule,
    ScheduleKind,
    all_due_dates,
    count_due_dates_before,
    due_dates_between,
    habit_window,
    is_due_date,
    last_due_date,
    latest_due_dates_before,
    milestone_due_date,
)

MONDAY = date(2024, 1, 1)


def days(first: date, count: int, step: int = 1) -> list[date]:
    return [first + timedelta(days=index * step) for index in range(count)]


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        pytest.param(date(2023, 1, 31), 1, "months", date(2023, 2, 28), id="jan31"),
        pytest.param(
            date(2024, 1, 31), 1, "months", date(2024, 2, 29), id="jan31-leap"
        ),
        pytest.param(date(2024, 8, 31), 1, "months", date(2024, 9, 30), id="aug31"),
        pytest.param(date(2024, 2, 29), 12, "months", date(2025, 2, 28), id="feb29+12"),
        pytest.param(date(2024, 4, 30), 1, "months", date(2024, 5, 30), id="apr30"),
        pytest.param(date(2024, 1, 1), 0, "days", date(2024, 1, 1), id="start-day"),
        pytest.param(date(2024, 1, 1), 3, "weeks", date(2024, 1, 22), id="weeks"),
        pytest.param(date(2024, 12, 25), 10, "days", date(2025, 1, 4), id="days"),
    ],
)
def test_milestone_due_date(start: date, amount: int, unit: str, expected: date):
    milestone = MilestoneSchedule(due_amount=amount, due_unit=unit)

    assert milestone_due_date(milestone, start) == expected


def test_milestone_stores_unit_as_enum():
    milestone = MilestoneSchedule(due_amount=2, due_unit="weeks")

    assert milestone.due_unit is DurationUnit.WEEKS
    assert milestone.due_unit == "weeks"


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        pytest.param(-1, "days", "invalid due_amount -1", id="negative"),
        pytest.param("3", "days", "invalid due_amount '3'", id="string-amount"),
        pytest.param(1, "years", "invalid due_unit 'years'", id="unknown-unit"),
        pytest.param(1, "", "invalid due_unit ''", id="empty-unit"),
    ],
)
def test_milestone_rejects(amount: object, unit: str, message: str):
    with pytest.raises(ValueError, match=message):
        MilestoneSchedule(due_amount=amount, due_unit=unit)


def habit(
    kind: str = "daily",
    offset: int = 0,
    amount: int = 14,
    unit: str = "days",
    weekdays: frozenset[int] = frozenset(),
    interval: int | None = None,
) -> HabitSchedule:
    return HabitSchedule(
        kind=kind,
        start_offset_days=offset,
        length_amount=amount,
        length_unit=unit,
        weekdays=weekdays,
        interval_days=interval,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"kind": "hourly"}, "invalid kind 'hourly'", id="kind"),
        pytest.param({"kind": "weekdays"}, "missing weekdays", id="weekdays-empty"),
        pytest.param(
            {"kind": "weekdays", "weekdays": {7}}, "invalid weekday 7", id="weekday-7"
        ),
        pytest.param(
            {"kind": "weekdays", "weekdays": {-1}},
            "invalid weekday -1",
            id="weekday-neg",
        ),
        pytest.param(
            {"kind": "weekdays", "weekdays": {True}},
            "invalid weekday True",
            id="weekday-bool",
        ),
        pytest.param(
            {"kind": "weekdays", "weekdays": "0,2"}, "invalid weekdays '0,2'", id="str"
        ),
        pytest.param(
            {"weekdays": {0}}, "weekdays apply only to kind 'weekdays'", id="daily-wd"
        ),
        pytest.param(
            {"kind": "interval"}, "missing interval_days", id="interval-missing"
        ),
        pytest.param(
            {"kind": "interval", "interval": 0}, "invalid interval_days 0", id="int-0"
        ),
        pytest.param(
            {"interval": 2}, "interval_days applies only", id="daily-interval"
        ),
        pytest.param({"offset": -1}, "invalid start_offset_days -1", id="offset"),
        pytest.param({"amount": 0}, "invalid length_amount 0", id="length-zero"),
        pytest.param({"unit": "hours"}, "invalid length_unit 'hours'", id="unit"),
    ],
)
def test_habit_schedule_rejects(fields: dict, message: str):
    with pytest.raises(ValueError, match=message):
        habit(**fields)


def test_habit_schedule_coerces_fields():
    schedule = habit(kind="weekdays", weekdays=[0, 2, 2], unit="weeks")

    assert schedule.kind is ScheduleKind.WEEKDAYS
    assert schedule.length_unit is DurationUnit.WEEKS
    assert schedule.weekdays == frozenset({0, 2})


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(habit(amount=5), days(MONDAY, 5), id="daily"),
        pytest.param(
            habit(offset=3, amount=2), days(MONDAY + timedelta(3), 2), id="daily-offset"
        ),
        pytest.param(
            habit(kind="weekdays", weekdays={0, 2, 4}, amount=2, unit="weeks"),
            [date(2024, 1, day) for day in (1, 3, 5, 8, 10, 12)],
            id="weekdays-mon-wed-fri",
        ),
        pytest.param(
            habit(kind="weekdays", weekdays={6}, offset=1, amount=10),
            [date(2024, 1, 7)],
            id="weekdays-sunday-offset",
        ),
        pytest.param(
            habit(kind="interval", interval=3, amount=10),
            days(MONDAY, 4, step=3),
            id="interval-3",
        ),
        pytest.param(
            habit(kind="interval", interval=1, amount=3), days(MONDAY, 3), id="int-1"
        ),
        pytest.param(
            habit(kind="interval", interval=30, amount=10), [MONDAY], id="int-long"
        ),
    ],
)
def test_all_due_dates_per_kind(schedule: HabitSchedule, expected: list[date]):
    assert all_due_dates(schedule, MONDAY) == expected


def test_habit_window_month_end():
    schedule = habit(amount=1, unit="months")

    first, end = habit_window(schedule, date(2024, 1, 31))

    assert first == date(2024, 1, 31)
    assert end == date(2024, 2, 29)
    assert last_due_date(schedule, date(2024, 1, 31)) == date(2024, 2, 28)
    assert len(all_due_dates(schedule, date(2024, 1, 31))) == 29


def test_habit_window_offset_then_months():
    schedule = habit(offset=1, amount=1, unit="months")

    assert habit_window(schedule, date(2024, 1, 30)) == (
        date(2024, 1, 31),
        date(2024, 2, 29),
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2024, 1, 2), False, id="before-window"),
        pytest.param(date(2024, 1, 3), True, id="window-first"),
        pytest.param(date(2024, 1, 4), False, id="between-intervals"),
        pytest.param(date(2024, 1, 5), True, id="second"),
        pytest.param(date(2024, 1, 9), True, id="last"),
        pytest.param(date(2024, 1, 10), False, id="window-end-excluded"),
        pytest.param(date(2024, 1, 11), False, id="after-window"),
    ],
)
def test_is_due_date_interval_bounds(day: date, expected: bool):
    schedule = habit(kind="interval", interval=2, offset=2, amount=8)

    assert is_due_date(schedule, MONDAY, day) is expected


def test_is_due_date_weekdays():
    schedule = habit(kind="weekdays", weekdays={1}, amount=3, unit="weeks")

    assert is_due_date(schedule, MONDAY, date(2024, 1, 2))
    assert not is_due_date(schedule, MONDAY, date(2024, 1, 3))
    assert not is_due_date(schedule, MONDAY, date(2024, 1, 23))


@pytest.mark.parametrize(
    ("window_start", "window_end", "expected"),
    [
        pytest.param(
            date(2024, 1, 5), date(2024, 1, 11), [date(2024, 1, 7), date(2024, 1, 10)],
            id="middle",
        ),
        pytest.param(
            date(2023, 12, 1), date(2024, 1, 5), [date(2024, 1, 1), date(2024, 1, 4)],
            id="before-start",
        ),
        pytest.param(
            date(2024, 1, 13), date(2024, 3, 1), [date(2024, 1, 13)], id="past-end"
        ),
        pytest.param(date(2024, 1, 14), date(2024, 3, 1), [], id="after-window"),
        pytest.param(date(2024, 1, 5), date(2024, 1, 5), [], id="empty"),
        pytest.param(date(2024, 1, 5), date(2024, 1, 2), [], id="reversed"),
    ],
)  # fmt: skip
def test_due_dates_between_interval(
    window_start: date, window_end: date, expected: list[date]
):
    schedule = habit(kind="interval", interval=3, amount=14)

    assert due_dates_between(schedule, MONDAY, window_start, window_end) == expected


def test_last_due_date_none_when_weekday_missed():
    schedule = habit(kind="weekdays", weekdays={5}, amount=3)

    assert all_due_dates(schedule, MONDAY) == []
    assert last_due_date(schedule, MONDAY) is None


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(habit(amount=14), date(2024, 1, 14), id="daily"),
        pytest.param(
            habit(kind="weekdays", weekdays={0}, amount=2, unit="weeks"),
            date(2024, 1, 8),
            id="weekdays",
        ),
        pytest.param(
            habit(kind="interval", interval=4, amount=14), date(2024, 1, 13), id="int"
        ),
    ],
)
def test_last_due_date(schedule: HabitSchedule, expected: date):
    assert last_due_date(schedule, MONDAY) == expected


def test_latest_due_dates_before_today():
    schedule = habit(kind="weekdays", weekdays={0, 3}, amount=4, unit="weeks")

    latest = latest_due_dates_before(schedule, MONDAY, date(2024, 1, 15), 3)

    assert latest == [date(2024, 1, 4), date(2024, 1, 8), date(2024, 1, 11)]


def test_latest_due_dates_before_fewer_exist():
    schedule = habit()

    assert latest_due_dates_before(schedule, MONDAY, date(2024, 1, 3), 5) == [
        date(2024, 1, 1),
        date(2024, 1, 2),
    ]
    assert latest_due_dates_before(schedule, MONDAY, MONDAY, 3) == []


def test_count_due_dates_before_long_habit():
    schedule = habit(kind="weekdays", weekdays={0, 2, 4}, amount=12, unit="months")

    count = count_due_dates_before(schedule, MONDAY, date(2030, 1, 1))

    assert count == len(all_due_dates(schedule, MONDAY))
    assert count == 157


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda schedule: latest_due_dates_before(schedule, MONDAY, MONDAY, -1),
            "invalid count -1",
            id="negative-count",
        ),
        pytest.param(
            lambda schedule: is_due_date(schedule, MONDAY, "2024-01-01"),
            "invalid day '2024-01-01'",
            id="string-day",
        ),
        pytest.param(
            lambda schedule: due_dates_between(schedule, MONDAY, MONDAY, None),
            "invalid window_end None",
            id="missing-window-end",
        ),
    ],
)
def test_schedule_functions_reject(call, message: str):
    with pytest.raises(ValueError, match=message):
        call(habit())


# Property tests compare the arithmetic shortcuts with a plain walk over every date.

start_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def habit_schedules(draw) -> HabitSchedule:
    kind = draw(st.sampled_from(list(ScheduleKind)))
    unit = draw(st.sampled_from(list(DurationUnit)))
    maximum_amount = {"days": 400, "weeks": 60, "months": 14}[unit.value]
    weekdays: frozenset[int] = frozenset()
    interval = None
    if kind is ScheduleKind.WEEKDAYS:
        weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    if kind is ScheduleKind.INTERVAL:
        interval = draw(st.integers(1, 40))
    return HabitSchedule(
        kind=kind,
        start_offset_days=draw(st.integers(0, 60)),
        length_amount=draw(st.integers(1, maximum_amount)),
        length_unit=unit,
        weekdays=weekdays,
        interval_days=interval,
    )


def walk_due_dates(schedule: HabitSchedule, start_date: date) -> list[date]:
    first, end = habit_window(schedule, start_date)
    due_dates = []
    day = first
    while day < end:
        if schedule.kind is ScheduleKind.DAILY:
            due = True
        elif schedule.kind is ScheduleKind.WEEKDAYS:
            due = day.weekday() in schedule.weekdays
        else:
            due = (day - first).days % schedule.interval_days == 0
        if due:
            due_dates.append(day)
        day += timedelta(days=1)
    return due_dates


@given(schedule=habit_schedules(), start_date=start_dates)
def test_due_dates_sorted_unique_in_window(schedule: HabitSchedule, start_date: date):
    first, end = habit_window(schedule, start_date)

    due_dates = all_due_dates(schedule, start_date)

    assert due_dates == sorted(set(due_dates))
    assert all(first <= day < end for day in due_dates)
    assert due_dates == walk_due_dates(schedule, start_date)
    if schedule.kind is ScheduleKind.WEEKDAYS:
        assert all(day.weekday() in schedule.weekdays for day in due_dates)
    if schedule.kind is ScheduleKind.INTERVAL:
        assert due_dates[0] == first
        gaps = {(later - earlier).days for earlier, later in pairwise(due_dates)}
        assert gaps <= {schedule.interval_days}
    if schedule.kind is not ScheduleKind.WEEKDAYS:
        assert due_dates
    assert last_due_date(schedule, start_date) == (due_dates[-1] if due_dates else None)


@given(
    schedule=habit_schedules(),
    start_date=start_dates,
    shift=st.integers(-30, 500),
    width=st.integers(0, 60),
)
def test_window_queries_match_walk(
    schedule: HabitSchedule, start_date: date, shift: int, width: int
):
    expected = walk_due_dates(schedule, start_date)
    window_start = start_date + timedelta(days=shift)
    window_end = window_start + timedelta(days=width)

    between = due_dates_between(schedule, start_date, window_start, window_end)

    assert between == [day for day in expected if window_start <= day < window_end]
    assert is_due_date(schedule, start_date, window_start) is (window_start in expected)


@given(
    schedule=habit_schedules(),
    start_date=start_dates,
    shift=st.integers(-30, 500),
    count=st.integers(0, 8),
)
def test_closed_due_date_queries_match_walk(
    schedule: HabitSchedule, start_date: date, shift: int, count: int
):
    expected = walk_due_dates(schedule, start_date)
    before = start_date + timedelta(days=shift)
    closed = [day for day in expected if day < before]
    timeline = HabitTimeline.for_client(schedule, start_date)

    latest = latest_due_dates_before(schedule, start_date, before, count)

    assert latest == closed[len(closed) - min(count, len(closed)) :]
    assert count_due_dates_before(schedule, start_date, before) == len(closed)
    assert timeline.count_due_dates_before(before) == len(closed)


@pytest.mark.parametrize("span_days", range(0, 22))
def test_count_weekdays_every_partial_week(span_days: int):
    schedule = habit(
        kind="weekdays", weekdays={1, 5, 6}, offset=2, amount=3, unit="weeks"
    )
    before = MONDAY + timedelta(days=2 + span_days)
    expected = [day for day in walk_due_dates(schedule, MONDAY) if day < before]

    assert count_due_dates_before(schedule, MONDAY, before) == len(expected)
    assert latest_due_dates_before(schedule, MONDAY, before, 4) == expected[-4:]
