"""Tests for off-track status, progress, completion and enrollment evaluation."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.calendar import site_today, site_zone
from rules.progress import (
    Progress,
    evaluate_enrollment,
    is_late_tick,
    is_off_track,
    is_tick_allowed,
)
from rules.schedules import HabitSchedule, all_due_dates

START = date(2024, 1, 1)
DAILY = HabitSchedule(
    kind="daily", start_offset_days=0, length_amount=30, length_unit="days"
)
MON_WED_FRI = HabitSchedule(
    kind="weekdays",
    start_offset_days=0,
    length_amount=4,
    length_unit="weeks",
    weekdays={0, 2, 4},
)


def january(*day_numbers: int) -> set[date]:
    return {date(2024, 1, day) for day in day_numbers}


@pytest.mark.parametrize(
    ("ticked", "today", "threshold", "expected"),
    [
        pytest.param(january(*range(1, 7)), date(2024, 1, 10), 3, True, id="3-missed"),
        pytest.param(
            january(*range(1, 8)), date(2024, 1, 10), 3, False, id="2-missed"
        ),
        pytest.param(
            january(*range(1, 7), 8), date(2024, 1, 10), 3, False,
            id="late-tick-repairs",
        ),
        pytest.param(
            january(*range(1, 7)), date(2024, 1, 9), 3, False, id="today-stays-open"
        ),
        pytest.param(set(), date(2024, 1, 3), 3, False, id="only-2-closed"),
        pytest.param(set(), date(2024, 1, 4), 3, True, id="first-3-closed-missed"),
        pytest.param(january(*range(1, 9)), date(2024, 1, 10), 1, True, id="thr1-miss"),
        pytest.param(january(*range(1, 10)), date(2024, 1, 10), 1, False, id="thr1-ok"),
        pytest.param(january(1, 2, 3, 4), date(2024, 1, 10), 5, True, id="thr5-miss"),
        pytest.param(january(1, 2, 3, 5), date(2024, 1, 10), 5, False, id="thr5-ok"),
        pytest.param(set(), date(2024, 1, 5), 5, False, id="thr5-only-4-closed"),
        pytest.param(
            january(*range(1, 28)), date(2024, 6, 1), 3, True, id="window-ended-missed"
        ),
        pytest.param(
            january(*range(1, 29)), date(2024, 6, 1), 3, False, id="window-ended-ok"
        ),
    ],
)  # fmt: skip
def test_off_track_daily(ticked: set[date], today: date, threshold: int, expected):
    assert is_off_track(DAILY, START, today, ticked, threshold) is expected


@pytest.mark.parametrize(
    ("ticked", "today", "expected"),
    [
        # Closed due dates before Monday 15 January: 1, 3, 5, 8, 10, 12.
        pytest.param(january(1, 3, 5), date(2024, 1, 15), True, id="missed-8-10-12"),
        pytest.param(january(1, 3, 10), date(2024, 1, 15), False, id="ticked-10"),
        pytest.param(
            january(1, 3, 5), date(2024, 1, 12), False, id="friday-12-still-open"
        ),
        pytest.param(january(1), date(2024, 1, 6), False, id="missed-3-5-only"),
    ],
)
def test_off_track_weekdays_counts_due_dates(ticked: set[date], today, expected):
    assert is_off_track(MON_WED_FRI, START, today, ticked) is expected


@pytest.mark.parametrize("threshold", [0, -1, True])
def test_off_track_rejects_threshold(threshold: object):
    with pytest.raises(ValueError, match="invalid threshold"):
        is_off_track(DAILY, START, date(2024, 1, 10), set(), threshold)


@pytest.mark.parametrize(
    ("due_date", "today", "expected"),
    [
        pytest.param(date(2024, 1, 10), date(2024, 1, 10), True, id="today"),
        pytest.param(date(2024, 1, 3), date(2024, 1, 10), True, id="closed"),
        pytest.param(date(2024, 1, 11), date(2024, 1, 10), False, id="future"),
        pytest.param(date(2024, 1, 9), date(2024, 1, 10), False, id="not-due-tuesday"),
        pytest.param(date(2023, 12, 29), date(2024, 1, 10), False, id="before-window"),
    ],
)
def test_is_tick_allowed(due_date: date, today: date, expected: bool):
    assert is_tick_allowed(MON_WED_FRI, START, due_date, today) is expected


@pytest.mark.parametrize(
    ("zone_name", "due_date", "ticked_at"),
    [
        pytest.param(
            "Europe/Paris",
            date(2024, 3, 30),
            datetime(2024, 3, 30, 23, 0, 30, tzinfo=UTC),
            id="paris-spring-forward",
        ),
        pytest.param(
            "Europe/Paris",
            date(2024, 10, 26),
            datetime(2024, 10, 26, 22, 0, 30, tzinfo=UTC),
            id="paris-fall-back",
        ),
        pytest.param(
            "America/Los_Angeles",
            date(2024, 3, 9),
            datetime(2024, 3, 10, 8, 0, 30, tzinfo=UTC),
            id="los-angeles-spring-forward",
        ),
        pytest.param(
            "America/Los_Angeles",
            date(2024, 11, 2),
            datetime(2024, 11, 3, 7, 0, 30, tzinfo=UTC),
            id="los-angeles-fall-back",
        ),
    ],
)
def test_late_tick_after_midnight_counts(
    zone_name: str, due_date: date, ticked_at: datetime
):
    zone = ZoneInfo(zone_name)
    schedule = HabitSchedule(
        kind="daily", start_offset_days=0, length_amount=1, length_unit="months"
    )
    start_date = due_date - timedelta(days=5)
    today = site_today(ticked_at, zone)

    allowed = is_tick_allowed(schedule, start_date, due_date, today)
    late = is_late_tick(due_date, ticked_at, zone)
    evaluation = evaluate_enrollment(
        start_date=start_date,
        today=today,
        milestone_done={},
        habits={7: schedule},
        ticks={(7, due_date)},
    )

    assert today == due_date + timedelta(days=1)
    assert allowed
    assert late
    assert evaluation.progress.habit_dates_done == 1
    assert evaluation.progress.habit_dates_due == 6


@pytest.mark.parametrize(
    ("gmt_offset", "due_date", "ticked_at", "expected_late"),
    [
        pytest.param(
            "5.5", date(2024, 6, 1), datetime(2024, 6, 1, 18, 29, tzinfo=UTC), False,
            id="+5.5-before-midnight",
        ),
        pytest.param(
            "5.5", date(2024, 6, 1), datetime(2024, 6, 1, 18, 31, tzinfo=UTC), True,
            id="+5.5-after-midnight",
        ),
        pytest.param(
            -9.5, date(2024, 6, 1), datetime(2024, 6, 2, 9, 29, tzinfo=UTC), False,
            id="-9.5-before-midnight",
        ),
        pytest.param(
            -9.5, date(2024, 6, 1), datetime(2024, 6, 2, 9, 31, tzinfo=UTC), True,
            id="-9.5-after-midnight",
        ),
    ],
)  # fmt: skip
def test_is_late_tick_fixed_offset(
    gmt_offset: object, due_date: date, ticked_at: datetime, expected_late: bool
):
    zone = site_zone("", gmt_offset)

    assert is_late_tick(due_date, ticked_at, zone) is expected_late


def test_is_late_tick_rejects_naive():
    with pytest.raises(ValueError, match="expected an aware datetime"):
        is_late_tick(date(2024, 1, 1), datetime(2024, 1, 2), UTC)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        pytest.param((0, 0, 0, 0), 0, id="nothing-to-do"),
        pytest.param((1, 2, 0, 0), 50, id="milestones-only"),
        pytest.param((0, 0, 2, 3), 66, id="habits-only-rounds-down"),
        pytest.param((2, 2, 3, 3), 100, id="all-done"),
        pytest.param((1, 2, 1, 4), 37, id="mean-of-shares"),
        pytest.param((5, 5, 364, 365), 99, id="one-miss-not-100"),
        pytest.param((0, 4, 0, 0), 0, id="none-done"),
        pytest.param((1, 3, 0, 0), 33, id="third"),
    ],
)
def test_progress_percent(counts: tuple[int, int, int, int], expected: int):
    progress = Progress(*counts)

    assert progress.percent == expected


def test_progress_percent_matches_integer_formula():
    for milestones_done, milestones_total in [(0, 1), (1, 3), (2, 7), (7, 7)]:
        for habit_dates_done, habit_dates_due in [(0, 1), (5, 9), (364, 365)]:
            progress = Progress(
                milestones_done, milestones_total, habit_dates_done, habit_dates_due
            )
            numerator = 100 * (
                milestones_done * habit_dates_due + habit_dates_done * milestones_total
            )
            denominator = 2 * milestones_total * habit_dates_due

            assert progress.percent == numerator // denominator


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        pytest.param((3, 2, 0, 0), "milestones_done 3, exceeds", id="milestones"),
        pytest.param((0, 0, 4, 3), "habit_dates_done 4, exceeds", id="habit-dates"),
        pytest.param((0, -1, 0, 0), "invalid milestones_total -1", id="negative"),
    ],
)
def test_progress_rejects(counts: tuple[int, int, int, int], message: str):
    with pytest.raises(ValueError, match=message):
        Progress(*counts)


def evaluate(
    today: date,
    milestone_done: dict[int, bool] | None = None,
    habits: dict[int, HabitSchedule] | None = None,
    ticks: set[tuple[int, date]] | None = None,
    threshold: int = 3,
):
    return evaluate_enrollment(
        start_date=START,
        today=today,
        milestone_done=milestone_done or {},
        habits=habits or {},
        ticks=ticks or set(),
        threshold=threshold,
    )


def test_evaluate_counts_today_only_when_ticked():
    ticks = {(1, day) for day in january(1, 2, 4)}

    open_today = evaluate(date(2024, 1, 5), habits={1: DAILY}, ticks=ticks)
    ticked_today = evaluate(
        date(2024, 1, 5), habits={1: DAILY}, ticks=ticks | {(1, date(2024, 1, 5))}
    )

    assert open_today.progress == Progress(0, 0, 3, 4)
    assert ticked_today.progress == Progress(0, 0, 4, 5)


def test_evaluate_ignores_stray_ticks():
    ticks = {
        (1, date(2024, 1, 2)),  # a Tuesday, not due
        (1, date(2024, 1, 10)),  # after today
        (1, date(2023, 12, 29)),  # before the window
        (99, date(2024, 1, 3)),  # unknown habit
    }

    evaluation = evaluate(date(2024, 1, 9), habits={1: MON_WED_FRI}, ticks=ticks)

    # Closed due dates: 1, 3, 5, 8. None of them is ticked.
    assert evaluation.progress == Progress(0, 0, 0, 4)
    assert evaluation.off_track_habit_ids == frozenset({1})


def test_evaluate_flags_each_habit():
    habits = {1: DAILY, 2: MON_WED_FRI}
    ticks = {(2, day) for day in january(1, 3, 5, 8)}

    evaluation = evaluate(date(2024, 1, 10), habits=habits, ticks=ticks)

    assert evaluation.off_track_habit_ids == frozenset({1})
    assert evaluation.off_track


def test_evaluate_all_habits_on_track():
    ticks = {(1, day) for day in january(1, 2, 3, 4, 5, 6, 7, 8)}

    evaluation = evaluate(date(2024, 1, 10), habits={1: DAILY}, ticks=ticks)

    assert evaluation.off_track_habit_ids == frozenset()
    assert not evaluation.off_track


def test_evaluate_uses_threshold():
    ticks = {(1, day) for day in january(1, 2, 3, 4, 5, 6, 7, 8)}

    evaluation = evaluate(
        date(2024, 1, 10), habits={1: DAILY}, ticks=ticks, threshold=1
    )

    assert evaluation.off_track_habit_ids == frozenset({1})


def test_evaluate_counts_milestones():
    evaluation = evaluate(
        date(2024, 1, 10), milestone_done={1: True, 2: False, 3: True}
    )

    assert evaluation.progress == Progress(2, 3, 0, 0)
    assert evaluation.progress.percent == 66


@pytest.mark.parametrize(
    ("today", "milestone_done", "habits", "expected"),
    [
        pytest.param(
            date(2024, 1, 31), {1: True}, {1: DAILY}, True, id="last-due-closed"
        ),
        pytest.param(
            date(2024, 1, 30), {1: True}, {1: DAILY}, False, id="last-due-is-today"
        ),
        pytest.param(
            date(2024, 2, 1), {1: True, 2: False}, {1: DAILY}, False,
            id="milestone-open",
        ),
        pytest.param(
            date(2024, 1, 31), {1: True}, {1: DAILY, 2: MON_WED_FRI}, True,
            id="latest-of-two-habits-closed",
        ),
        pytest.param(
            date(2024, 1, 26), {}, {1: MON_WED_FRI}, False, id="weekdays-open"
        ),
        pytest.param(
            date(2024, 1, 27), {}, {1: MON_WED_FRI}, True, id="habits-only-closed"
        ),
        pytest.param(
            date(2024, 1, 2), {1: True}, {}, True, id="milestones-only-done"
        ),
        pytest.param(
            date(2024, 1, 2), {1: False}, {}, False, id="milestones-only-open"
        ),
        pytest.param(date(2030, 1, 1), {}, {}, False, id="empty-program-never"),
        pytest.param(
            date(2030, 1, 1), {},
            {1: HabitSchedule("weekdays", 0, 2, "days", weekdays={6})}, False,
            id="habit-without-due-dates-never",
        ),
    ],
)  # fmt: skip
def test_evaluate_completed(today: date, milestone_done, habits, expected: bool):
    evaluation = evaluate(today, milestone_done=milestone_done, habits=habits)

    assert evaluation.completed is expected


def test_evaluate_before_start_date():
    evaluation = evaluate(
        date(2023, 12, 1), milestone_done={1: False}, habits={1: DAILY}
    )

    assert evaluation.progress == Progress(0, 1, 0, 0)
    assert not evaluation.off_track
    assert not evaluation.completed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"threshold": 0}, "invalid threshold 0", id="threshold"),
        pytest.param(
            {"today": datetime(2024, 1, 10, tzinfo=UTC)}, "invalid today", id="dt"
        ),
        pytest.param(
            {"ticks": {(1, datetime(2024, 1, 2, tzinfo=UTC))}},
            "invalid tick due date",
            id="tick-datetime",
        ),
    ],
)
def test_evaluate_rejects(fields: dict, message: str):
    arguments = {
        "start_date": START,
        "today": date(2024, 1, 10),
        "milestone_done": {},
        "habits": {1: DAILY},
        "ticks": set(),
    }
    arguments.update(fields)

    with pytest.raises(ValueError, match=message):
        evaluate_enrollment(**arguments)


# Property tests compare evaluate_enrollment with a reference built on the plain list
# of due dates, as a set-based SQL query would see them.


def reference_off_track(due_dates, ticked, today, threshold) -> bool:
    closed = [day for day in due_dates if day < today]
    if len(closed) < threshold:
        return False
    return all(day not in ticked for day in closed[-threshold:])


habit_schedules = st.one_of(
    st.builds(
        HabitSchedule,
        kind=st.just("daily"),
        start_offset_days=st.integers(0, 10),
        length_amount=st.integers(1, 60),
        length_unit=st.just("days"),
    ),
    st.builds(
        HabitSchedule,
        kind=st.just("weekdays"),
        start_offset_days=st.integers(0, 10),
        length_amount=st.integers(1, 8),
        length_unit=st.just("weeks"),
        weekdays=st.frozensets(st.integers(0, 6), min_size=1),
    ),
    st.builds(
        HabitSchedule,
        kind=st.just("interval"),
        start_offset_days=st.integers(0, 10),
        length_amount=st.integers(1, 3),
        length_unit=st.just("months"),
        interval_days=st.integers(1, 10),
    ),
)


@given(
    schedule=habit_schedules,
    today_shift=st.integers(-5, 100),
    threshold=st.integers(1, 6),
    data=st.data(),
)
def test_off_track_matches_reference(schedule, today_shift, threshold, data):
    due_dates = all_due_dates(schedule, START)
    today = START + timedelta(days=today_shift)
    # Weekly dates that are not due check that stray ticks never repair a miss.
    tick_candidates = due_dates + [START + timedelta(days=n) for n in range(0, 100, 7)]
    ticked = data.draw(st.sets(st.sampled_from(tick_candidates)))

    result = is_off_track(schedule, START, today, ticked, threshold)

    assert result is reference_off_track(due_dates, ticked, today, threshold)


@given(
    habits=st.dictionaries(st.integers(1, 5), habit_schedules, max_size=3),
    milestone_done=st.dictionaries(st.integers(1, 5), st.booleans(), max_size=4),
    today_shift=st.integers(-5, 120),
    threshold=st.integers(1, 5),
    data=st.data(),
)
def test_evaluate_matches_reference(
    habits, milestone_done, today_shift, threshold, data
):
    today = START + timedelta(days=today_shift)
    due_by_habit = {
        habit_id: all_due_dates(schedule, START)
        for habit_id, schedule in habits.items()
    }
    # Habit id 6 never exists, and some dates fall before the start date.
    candidates = [
        (habit_id, START + timedelta(days=n))
        for habit_id in range(1, 7)
        for n in range(-3, 130, 2)
    ]
    ticks = data.draw(st.sets(st.sampled_from(candidates), max_size=60))

    evaluation = evaluate_enrollment(
        start_date=START,
        today=today,
        milestone_done=milestone_done,
        habits=habits,
        ticks=ticks,
        threshold=threshold,
    )

    expected_off_track = set()
    for habit_id, due_dates in due_by_habit.items():
        ticked = {day for tick_habit_id, day in ticks if tick_habit_id == habit_id}
        if reference_off_track(due_dates, ticked, today, threshold):
            expected_off_track.add(habit_id)
    counted = [
        (habit_id, day)
        for habit_id, due_dates in due_by_habit.items()
        for day in due_dates
        if day < today or (day == today and (habit_id, day) in ticks)
    ]
    expected_progress = Progress(
        milestones_done=sum(milestone_done.values()),
        milestones_total=len(milestone_done),
        habit_dates_done=sum(1 for pair in counted if pair in ticks),
        habit_dates_due=len(counted),
    )
    last_due_dates = [due_dates[-1] for due_dates in due_by_habit.values() if due_dates]
    expected_completed = (
        (bool(milestone_done) or bool(last_due_dates))
        and all(milestone_done.values())
        and all(day < today for day in last_due_dates)
    )

    assert evaluation.off_track_habit_ids == expected_off_track
    assert evaluation.progress == expected_progress
    assert evaluation.completed is expected_completed
