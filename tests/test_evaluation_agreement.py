"""The batched evaluation agrees with the reference rule on random programs.

Each example builds a program with random habit schedules and milestones, and
enrollments with random start dates and random ticks. Some ticks are on dates
that are not due, outside the habit window, in the future or of another
program's habit. The ticks are summarized with ``bridge.tick_summaries.rebuild``,
as after an import. The test runs ``evaluate_all`` on a real state database and
compares every stored state with ``rules.progress.evaluate_enrollment``. One database
serves all examples of a test, and its tables are cleared between examples.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import tick_summaries
from bridge.evaluation import evaluate_all, evaluate_enrollment_now
from bridge.models import (
    Activity,
    ActivityType,
    Coach,
    Cohort,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    HabitTickSummary,
    Milestone,
    MilestoneTick,
    Program,
)
from rules.progress import evaluate_enrollment
from rules.schedules import HabitSchedule, HabitTimeline, all_due_dates

# Near month ends and 29 February, so month-long windows get clamped.
BASE = dt.date(2024, 1, 20)
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
# Deleting from the tables in this order respects the foreign keys.
TABLES = (
    Activity,
    HabitTickSummary,
    HabitTick,
    MilestoneTick,
    Enrollment,
    Habit,
    Milestone,
    Cohort,
    Program,
    Coach,
)


@dataclass(frozen=True)
class EnrollmentCase:
    start_offset: int
    active: bool
    milestone_ticks: frozenset[int]
    # Pairs of habit index and day offset from the start date. Index -1 is the
    # habit of another program.
    habit_ticks: frozenset[tuple[int, int]]


@dataclass(frozen=True)
class Case:
    schedules: tuple[HabitSchedule, ...]
    milestone_count: int
    enrollments: tuple[EnrollmentCase, ...]
    today_offset: int


@st.composite
def schedules(draw) -> HabitSchedule:
    kind = draw(st.sampled_from(["daily", "weekdays", "interval"]))
    unit = draw(st.sampled_from(["days", "weeks", "months"]))
    limits = {"days": 40, "weeks": 8, "months": 3}
    weekdays = frozenset()
    if kind == "weekdays":
        weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    interval = draw(st.integers(1, 9)) if kind == "interval" else None
    return HabitSchedule(
        kind=kind,
        start_offset_days=draw(st.integers(0, 10)),
        length_amount=draw(st.integers(1, limits[unit])),
        length_unit=unit,
        weekdays=weekdays,
        interval_days=interval,
    )


@st.composite
def enrollment_cases(
    draw, schedules: tuple[HabitSchedule, ...], milestone_count: int, today: dt.date
) -> EnrollmentCase:
    """Draw an enrollment whose ticks are mostly due dates, as the service writes.

    Half of the examples add a few arbitrary ticks: dates that are not due, out
    of the window, in the future, or of the other program's habit.
    """
    start_offset = draw(st.integers(0, 45))
    start = BASE + dt.timedelta(days=start_offset)
    ticks: set[tuple[int, int]] = set()
    for index, schedule in enumerate(schedules):
        due_dates = all_due_dates(schedule, start)
        if not due_dates:
            continue
        chosen = draw(st.sets(st.sampled_from(due_dates), max_size=40))
        closed = [day for day in due_dates if day < today]
        recent = draw(st.integers(0, 4))
        if recent and closed:
            # The last few closed due dates decide whether the habit is off track.
            chosen.update(draw(st.sets(st.sampled_from(closed[-recent:]))))
        if today in due_dates and draw(st.booleans()):
            chosen.add(today)
        ticks.update((index, (day - start).days) for day in chosen)

    if draw(st.booleans()):
        ticks.update(draw(st.sets(noise(schedules, start), min_size=1, max_size=3)))

    milestone_ticks = st.just(frozenset())
    if milestone_count:
        milestone_ticks = st.frozensets(st.integers(0, milestone_count - 1))
    return EnrollmentCase(
        start_offset=start_offset,
        active=draw(st.booleans()) or draw(st.booleans()),
        milestone_ticks=draw(milestone_ticks),
        habit_ticks=frozenset(ticks),
    )


def noise(
    schedules: tuple[HabitSchedule, ...], start: dt.date
) -> st.SearchStrategy[tuple[int, int]]:
    """Draw a tick that the reference rule ignores or that is hard to verify.

    Dates one recurrence step outside the window fall on the schedule, so only
    the window check rejects them. Index -1 is the other program's habit.
    """
    anywhere = st.tuples(st.integers(-1, len(schedules) - 1), st.integers(-3, 110))
    near_window = []
    for index, schedule in enumerate(schedules):
        timeline = HabitTimeline.for_client(schedule, start)
        step = schedule.interval_days or (7 if schedule.weekdays else 1)
        last_due = timeline.last_due_date() or timeline.first
        for day in (
            timeline.first - dt.timedelta(days=step),
            last_due + dt.timedelta(days=step),
            timeline.first + dt.timedelta(days=1),
        ):
            near_window.append((index, (day - start).days))
    if not near_window:
        return anywhere
    return st.one_of(anywhere, st.sampled_from(near_window))


@st.composite
def cases(draw) -> Case:
    habits = tuple(draw(st.lists(schedules(), max_size=3)))
    milestone_count = draw(st.integers(0, 3))
    today_offset = draw(st.integers(0, 160))
    today = BASE + dt.timedelta(days=today_offset)
    enrollments = draw(
        st.lists(
            enrollment_cases(habits, milestone_count, today), min_size=1, max_size=4
        )
    )
    return Case(habits, milestone_count, tuple(enrollments), today_offset)


@dataclass
class Built:
    habit_ids: list[int]
    other_habit_id: int
    milestone_ids: list[int]
    enrollment_ids: list[int]


def clear(runtime) -> None:
    with runtime.db.session() as session:
        for model in TABLES:
            session.execute(sa.delete(model))


def build(runtime, case: Case) -> Built:
    """Insert the case's programs, habits, milestones, enrollments and ticks."""
    with runtime.db.session() as session:
        coach = Coach(wp_user_id=1)
        program = Program(slug="main", title="Main")
        other = Program(slug="other", title="Other")
        session.add_all([coach, program, other])
        session.flush()
        cohort = Cohort(program_id=program.id, name="All", kind="rolling")
        cohort.coach_id = coach.id
        session.add(cohort)

        habits = [habit_row(program.id, schedule) for schedule in case.schedules]
        other_habit = habit_row(other.id, case.schedules[0] if case.schedules else None)
        milestones = [
            Milestone(
                program_id=program.id, title=f"M{i}", due_amount=i, due_unit="weeks"
            )
            for i in range(case.milestone_count)
        ]
        session.add_all([*habits, other_habit, *milestones])
        session.flush()

        built = Built(
            [habit.id for habit in habits],
            other_habit.id,
            [milestone.id for milestone in milestones],
            [],
        )
        for index, enrollment_case in enumerate(case.enrollments):
            built.enrollment_ids.append(
                add_enrollment(session, program, cohort, index, enrollment_case, built)
            )
        session.flush()
        tick_summaries.rebuild(session.connection())
    return built


def habit_row(program_id: int, schedule: HabitSchedule | None) -> Habit:
    if schedule is None:
        schedule = HabitSchedule(
            kind="daily", start_offset_days=0, length_amount=9, length_unit="days"
        )
    return Habit(
        program_id=program_id,
        title="Habit",
        schedule=schedule.kind.value,
        weekdays=sum(1 << day for day in schedule.weekdays),
        interval_days=schedule.interval_days,
        start_offset_days=schedule.start_offset_days,
        length_amount=schedule.length_amount,
        length_unit=schedule.length_unit.value,
    )


def add_enrollment(session, program, cohort, index, case: EnrollmentCase, built) -> int:
    start = BASE + dt.timedelta(days=case.start_offset)
    status = EnrollmentStatus.ACTIVE if case.active else EnrollmentStatus.INACTIVE
    enrollment = Enrollment(
        wp_user_id=100 + index,
        program_id=program.id,
        cohort_id=cohort.id,
        status=status,
        start_date=start,
    )
    session.add(enrollment)
    session.flush()
    for position in case.milestone_ticks:
        session.add(
            MilestoneTick(
                enrollment_id=enrollment.id, milestone_id=built.milestone_ids[position]
            )
        )
    for habit_index, day_offset in case.habit_ticks:
        habit_id = built.other_habit_id
        if habit_index >= 0:
            habit_id = built.habit_ids[habit_index]
        session.add(
            HabitTick(
                enrollment_id=enrollment.id,
                habit_id=habit_id,
                due_date=start + dt.timedelta(days=day_offset),
            )
        )
    return enrollment.id


def expected_state(case: Case, built: Built, index: int, today: dt.date, threshold):
    enrollment_case = case.enrollments[index]
    start = BASE + dt.timedelta(days=enrollment_case.start_offset)
    ticks = []
    for habit_index, day_offset in enrollment_case.habit_ticks:
        habit_id = built.other_habit_id
        if habit_index >= 0:
            habit_id = built.habit_ids[habit_index]
        ticks.append((habit_id, start + dt.timedelta(days=day_offset)))
    evaluation = evaluate_enrollment(
        start_date=start,
        today=today,
        milestone_done={
            milestone_id: position in enrollment_case.milestone_ticks
            for position, milestone_id in enumerate(built.milestone_ids)
        },
        habits=dict(zip(built.habit_ids, case.schedules, strict=True)),
        ticks=ticks,
        threshold=threshold,
    )
    progress = evaluation.progress
    return {
        "off_track": evaluation.off_track,
        "progress_percent": progress.percent,
        "milestones_done": progress.milestones_done,
        "milestones_total": progress.milestones_total,
        "habit_dates_done": progress.habit_dates_done,
        "habit_dates_due": progress.habit_dates_due,
        "completed_on": today if evaluation.completed else None,
        "evaluated_on": today,
    }


def stored_state(enrollment: Enrollment) -> dict:
    return {
        name: getattr(enrollment, name)
        for name in (
            "off_track",
            "progress_percent",
            "milestones_done",
            "milestones_total",
            "habit_dates_done",
            "habit_dates_due",
            "completed_on",
            "evaluated_on",
        )
    }


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
def state_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/agreement.sqlite3"
    return request.getfixturevalue("mysql_database_factory")("agree")


@pytest.fixture(params=[1, 3], ids=lambda value: f"threshold{value}")
def threshold(request) -> int:
    return request.param


@pytest.fixture
def runtime(make_runtime, state_url, threshold):
    return make_runtime(
        state_url=state_url,
        clock=Clock(),
        coaching={"off_track_threshold": threshold},
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=cases())
def test_evaluate_all_matches_reference(runtime, threshold, case):
    clear(runtime)
    built = build(runtime, case)
    today = BASE + dt.timedelta(days=case.today_offset)
    runtime.clock.now = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)

    first = evaluate_all(runtime, batch_size=2)
    second = evaluate_all(runtime, batch_size=2)

    with runtime.db.session() as session:
        for index, enrollment_id in enumerate(built.enrollment_ids):
            enrollment = session.get_one(Enrollment, enrollment_id)
            if not case.enrollments[index].active:
                assert enrollment.evaluated_on is None
                continue
            expected = expected_state(case, built, index, today, threshold)
            assert stored_state(enrollment) == expected, f"enrollment {index}"
            single = evaluate_enrollment_now(session, runtime, enrollment)
            assert asdict(single) == expected, f"enrollment {index}, one at a time"

    active = sum(1 for enrollment in case.enrollments if enrollment.active)
    assert first.enrollments == active
    assert second.changed == 0
    assert second.off_track == 0
    assert second.completed == 0
    assert count_activity(runtime, ActivityType.OFF_TRACK) == first.off_track
    assert count_activity(runtime, ActivityType.PROGRAM_COMPLETED) == first.completed


def count_activity(runtime, kind: ActivityType) -> int:
    query = sa.select(sa.func.count()).where(Activity.type == kind.value)
    with runtime.db.session() as session:
        return session.scalar(query)
