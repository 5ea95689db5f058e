"""Nightly evaluation: stored state, transitions written once, batches, fallbacks."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

import bridge.evaluation as evaluation_module
import bridge.ticks as ticks_module
from bridge import tick_summaries
from bridge.config import CoachingSection
from bridge.evaluation import (
    EvaluationSummary,
    Outcome,
    evaluate_all,
    evaluate_enrollment_now,
    progress_percent,
)
from bridge.models import ActivityType, Enrollment, EnrollmentStatus, HabitTick
from bridge.scheduler import load_evaluation
from bridge.ticks import tick_habit, tick_milestone, untick_milestone
from rules.progress import Progress
from tests.test_ticks import (
    CLIENT,
    Coaching,
    build_coaching,
    noon_utc,
    set_site_zone,
)
from tests.test_ticks import harness as harness  # noqa: F401 (fixture)

START = dt.date(2025, 3, 3)  # a Monday


@pytest.fixture
def coaching(harness) -> Coaching:
    return build_coaching(harness)


def day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


def add_ticks(coaching: Coaching, enrollment_id: int, habit_id: int, *offsets: int):
    """Insert ticks directly, as a schedule change or an import could leave them."""
    insert_ticks(coaching, enrollment_id, habit_id, [day(offset) for offset in offsets])


def insert_ticks(coaching: Coaching, enrollment_id: int, habit_id: int, dates):
    with coaching.runtime.db.session() as session:
        for due_date in dates:
            session.add(
                HabitTick(
                    enrollment_id=enrollment_id, habit_id=habit_id, due_date=due_date
                )
            )
        tick_summaries.refresh_habit(session, enrollment_id, habit_id)


def test_evaluate_all_twice_writes_once(coaching):
    coaching.add_habit("Walk")
    milestone = coaching.add_milestone("Plan", 0)
    off = coaching.enroll(START, wp_user_id=1)
    done = coaching.enroll(START, wp_user_id=2)
    coaching.at(noon_utc(day(2)))
    tick_milestone(coaching.runtime, done, milestone, CLIENT)
    coaching.at(noon_utc(day(5)))

    first = evaluate_all(coaching.runtime)
    second = evaluate_all(coaching.runtime)

    assert first.enrollments == 2
    assert first.changed == 2
    assert first.off_track == 2
    assert second.changed == 0
    assert second.off_track == 0
    assert len(coaching.activities(ActivityType.OFF_TRACK)) == 2
    state = coaching.enrollment(off)
    assert state.off_track
    assert state.evaluated_on == day(5)
    assert state.habit_dates_due == 5
    assert state.milestones_total == 1
    assert state.progress_percent == 0
    assert coaching.enrollment(done).progress_percent == 50


def test_back_on_track_next_night(coaching):
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(3)))
    evaluate_all(coaching.runtime)
    add_ticks(coaching, enrollment, walk, 2)
    coaching.at(noon_utc(day(4)))

    summary = evaluate_all(coaching.runtime)

    assert summary.back_on_track == 1
    assert not coaching.enrollment(enrollment).off_track
    [entry] = coaching.activities(ActivityType.BACK_ON_TRACK)
    assert entry.enrollment_id == enrollment
    assert entry.actor_wp_user_id is None
    assert entry.details == {"evaluated_on": "2025-03-07"}


def test_completion_written_once(coaching):
    coaching.add_habit("Walk", amount=3, unit="days")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(3)))

    first = evaluate_all(coaching.runtime)
    coaching.at(noon_utc(day(9)))
    later = evaluate_all(coaching.runtime)

    assert first.completed == 1
    assert later.completed == 0
    state = coaching.enrollment(enrollment)
    assert state.completed_on == day(3)
    assert state.evaluated_on == day(9)
    [entry] = coaching.activities(ActivityType.PROGRAM_COMPLETED)
    assert entry.details["completed_on"] == "2025-03-06"


def test_reopened_milestone_clears_completion(coaching):
    milestone = coaching.add_milestone("Plan", 0)
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(1)))
    tick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    result = untick_milestone(coaching.runtime, enrollment, milestone, CLIENT)

    assert result.state.completed_on is None
    assert coaching.enrollment(enrollment).completed_on is None
    assert len(coaching.activities(ActivityType.PROGRAM_COMPLETED)) == 1


def test_inactive_enrollment_not_evaluated(coaching):
    coaching.add_habit("Walk")
    enrollment = coaching.enroll(START, status=EnrollmentStatus.INACTIVE)
    coaching.at(noon_utc(day(5)))

    summary = evaluate_all(coaching.runtime)

    assert summary.enrollments == 0
    assert coaching.enrollment(enrollment).evaluated_on is None
    assert coaching.activities() == []


def test_batches_cover_every_enrollment(coaching):
    coaching.add_habit("Walk")
    ids = [coaching.enroll(START, wp_user_id=index) for index in range(5)]
    coaching.set_status(ids[2], EnrollmentStatus.INACTIVE)
    coaching.at(noon_utc(day(1)))

    summary = evaluate_all(coaching.runtime, batch_size=2)

    assert summary.enrollments == 4
    assert summary.batches == 2
    evaluated = [coaching.enrollment(id_).evaluated_on for id_ in ids]
    assert evaluated == [day(1), day(1), None, day(1), day(1)]


def test_states_written_in_chunks(coaching, monkeypatch):
    monkeypatch.setattr(evaluation_module, "STAGING_ROWS_PER_INSERT", 2)
    walk = coaching.add_habit("Walk")
    ids = [coaching.enroll(START, wp_user_id=index) for index in range(5)]
    add_ticks(coaching, ids[4], walk, 0, 1)
    coaching.at(noon_utc(day(2)))

    summary = evaluate_all(coaching.runtime, batch_size=10)

    assert summary.changed == 5
    states = [coaching.enrollment(id_) for id_ in ids]
    assert [state.habit_dates_due for state in states] == [2] * 5
    assert [state.habit_dates_done for state in states] == [0, 0, 0, 0, 2]
    assert [state.progress_percent for state in states] == [0, 0, 0, 0, 100]


@pytest.mark.parametrize(
    "value, literal",
    [
        (None, "NULL"),
        (True, "1"),
        (False, "0"),
        (42, "42"),
        (dt.date(2025, 3, 1), "'2025-03-01'"),
    ],
)
def test_sql_literal_of_state_values(value, literal):
    assert evaluation_module._sql_literal(value) == literal


@pytest.mark.parametrize(
    "value", ["1); DROP TABLE enrollments; --", 1.5, dt.datetime(2025, 1, 1)]
)
def test_sql_literal_rejects_other_types(value):
    with pytest.raises(TypeError, match="invalid state value"):
        evaluation_module._sql_literal(value)


def test_not_due_tick_uses_reference(coaching):
    lift = coaching.add_habit("Lift", "weekdays", weekdays=(0, 2, 4))
    enrollment = coaching.enroll(START)
    add_ticks(coaching, enrollment, lift, 0, 1, 2)
    coaching.at(noon_utc(day(7)))

    summary = evaluate_all(coaching.runtime)

    assert summary.fallbacks == 1
    state = coaching.enrollment(enrollment)
    # Tuesday (offset 1) is not a due date, so it is ignored.
    assert state.habit_dates_done == 2
    assert state.habit_dates_due == 3
    assert not state.off_track


@pytest.mark.parametrize(
    ("interval", "fallbacks"),
    [
        pytest.param(3, 0, id="divides-42"),
        pytest.param(4, 1, id="not-dividing-42"),
    ],
)
def test_interval_aggregate_verification(coaching, interval, fallbacks):
    habit = coaching.add_habit("Stretch", "interval", interval=interval)
    enrollment = coaching.enroll(START)
    add_ticks(coaching, enrollment, habit, 0, interval, 2 * interval)
    coaching.at(noon_utc(day(3 * interval + 1)))

    summary = evaluate_all(coaching.runtime)

    assert summary.fallbacks == fallbacks
    state = coaching.enrollment(enrollment)
    assert state.habit_dates_done == 3
    assert state.habit_dates_due == 4


@pytest.mark.parametrize(
    ("closed_tick", "off_track"),
    [
        pytest.param(2, False, id="at-cutoff"),
        pytest.param(1, True, id="before-cutoff"),
    ],
)
def test_today_tick_with_closed_ticks(coaching, closed_tick, off_track):
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    add_ticks(coaching, enrollment, walk, closed_tick, 5)
    coaching.at(noon_utc(day(5)))

    evaluate_all(coaching.runtime)

    # The last three closed due dates are offsets 2, 3 and 4.
    state = coaching.enrollment(enrollment)
    assert state.off_track is off_track
    assert state.habit_dates_done == 2
    assert state.habit_dates_due == 6


def test_tick_of_other_program_ignored(coaching, harness):
    other = build_coaching(harness, "mobility")
    stretch = other.add_habit("Stretch")
    coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    add_ticks(coaching, enrollment, stretch, 0, 1)
    coaching.at(noon_utc(day(2)))

    evaluate_all(coaching.runtime)

    state = coaching.enrollment(enrollment)
    assert state.habit_dates_done == 0
    assert state.habit_dates_due == 2


def test_threshold_from_config(coaching):
    runtime = coaching.runtime
    runtime.config = runtime.config.model_copy(
        update={"coaching": CoachingSection(off_track_threshold=2)}
    )
    coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(2)))

    evaluate_all(runtime)

    assert coaching.enrollment(enrollment).off_track


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.OperationalError("SELECT", {}, Exception("disk I/O error")),
        ValueError("invalid literal for int() with base 10: ''"),
    ],
    ids=["database", "bad-row"],
)
def test_failed_batch_counted_and_skipped(coaching, monkeypatch, error):
    coaching.add_habit("Walk")
    ids = [coaching.enroll(START, wp_user_id=index) for index in range(4)]
    coaching.at(noon_utc(day(1)))
    real = evaluation_module._evaluate_batch

    def fail_first(run, batch, session):
        if batch.first == ids[0]:
            raise error
        return real(run, batch, session)

    monkeypatch.setattr(evaluation_module, "_evaluate_batch", fail_first)

    summary = evaluate_all(coaching.runtime, batch_size=2)

    assert summary.errors == 1
    assert summary.enrollments == 2
    evaluated = [coaching.enrollment(id_).evaluated_on for id_ in ids]
    assert evaluated == [None, None, day(1), day(1)]


@pytest.mark.mariadb
@pytest.mark.parametrize("harness", ["mariadb"], indirect=True)
@pytest.mark.parametrize("kind", ["habit", "milestone"])
def test_nightly_run_waits_for_a_tick(coaching, kind):
    # The nightly run must read ticks committed while it waited for the
    # enrollment's row lock, not a snapshot from before the wait.
    walk = coaching.add_habit("Walk", amount=1, unit="weeks")
    milestone = coaching.add_milestone("Plan", 0)
    ids = [coaching.enroll(START, wp_user_id=index) for index in range(3)]
    for enrollment in ids:
        for offset in range(6):
            ticks_module.tick_habit(
                coaching.runtime, enrollment, walk, day(offset), CLIENT
            )
    coaching.at(noon_utc(day(8)))
    evaluate_all(coaching.runtime)
    assert not coaching.enrollment(ids[1]).completed_on
    coaching.at(noon_utc(day(9)))
    ticked = threading.Event()
    release = threading.Event()

    def tick_and_hold() -> None:
        with Session(coaching.runtime.db.engine) as session, session.begin():
            if kind == "habit":
                ticks_module._set_habit(
                    coaching.runtime, ids[1], walk, day(6), CLIENT, True, session
                )
            else:
                ticks_module._set_milestone(
                    coaching.runtime, ids[1], milestone, CLIENT, True, session
                )
            ticked.set()
            release.wait(timeout=30)

    ticker = threading.Thread(target=tick_and_hold)
    ticker.start()
    assert ticked.wait(timeout=30)
    threading.Timer(1.0, release.set).start()
    summary = evaluate_all(coaching.runtime, batch_size=10, workers=1)
    ticker.join(timeout=30)

    assert summary.errors == 0
    state = coaching.enrollment(ids[1])
    if kind == "habit":
        assert state.habit_dates_done == 7
        assert state.milestones_done == 0
    else:
        assert state.habit_dates_done == 6
        assert state.milestones_done == 1
    other = coaching.enrollment(ids[0])
    assert other.habit_dates_done == 6
    assert other.milestones_done == 0


def test_program_with_many_habits(coaching):
    # 40 summaries make a text of about 1,600 bytes, over MySQL's default
    # group_concat_max_len of 1,024.
    habits = [coaching.add_habit(f"Habit {index}") for index in range(40)]
    enrollment = coaching.enroll(START)
    for habit in habits:
        add_ticks(coaching, enrollment, habit, 0, 1, 2)
    coaching.at(noon_utc(day(3)))

    summary = evaluate_all(coaching.runtime)

    assert summary.fallbacks == 0
    state = coaching.enrollment(enrollment)
    assert state.habit_dates_done == 120
    assert state.habit_dates_due == 120
    assert not state.off_track


def test_evaluate_one_matches_batch(coaching):
    walk = coaching.add_habit("Walk")
    coaching.add_milestone("Plan", 1)
    enrollment = coaching.enroll(START)
    add_ticks(coaching, enrollment, walk, 0, 3)
    coaching.at(noon_utc(day(4)))
    evaluate_all(coaching.runtime)
    batch_state = coaching.enrollment(enrollment)

    with coaching.runtime.db.session() as session:
        row = session.get_one(Enrollment, enrollment)
        single = evaluate_enrollment_now(session, coaching.runtime, row)

    assert single.habit_dates_done == batch_state.habit_dates_done == 2
    assert single.habit_dates_due == batch_state.habit_dates_due == 4
    assert single.progress_percent == batch_state.progress_percent == 25
    assert len(coaching.activities(ActivityType.OFF_TRACK)) == 0


def test_tick_after_nightly_run(coaching):
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(3)))
    evaluate_all(coaching.runtime)

    result = tick_habit(coaching.runtime, enrollment, walk, day(1), CLIENT)

    assert not result.state.off_track
    assert len(coaching.activities(ActivityType.OFF_TRACK)) == 1
    assert len(coaching.activities(ActivityType.BACK_ON_TRACK)) == 1


def test_program_created_during_run(coaching, monkeypatch):
    coaching.add_habit("Walk")
    enrollment = coaching.enroll(START)
    coaching.at(noon_utc(day(3)))
    real = evaluation_module.load_programs
    calls = []

    def none_at_start(session, program_ids=None):
        calls.append(program_ids)
        return {} if program_ids is None else real(session, program_ids)

    monkeypatch.setattr(evaluation_module, "load_programs", none_at_start)

    summary = evaluate_all(coaching.runtime)

    assert calls == [None, {coaching.program_id}]
    assert summary.errors == 0
    assert coaching.enrollment(enrollment).off_track


@pytest.mark.parametrize(
    ("zone", "midnight", "site_date"),
    [
        pytest.param(
            "Europe/Paris",
            dt.datetime(2025, 3, 30, 22, 0, tzinfo=dt.UTC),
            dt.date(2025, 3, 31),
            id="paris-spring",
        ),
        pytest.param(
            "America/Los_Angeles",
            dt.datetime(2025, 11, 3, 8, 0, tzinfo=dt.UTC),
            dt.date(2025, 11, 3),
            id="la-autumn",
        ),
    ],
)
def test_site_date_after_dst_midnight(coaching, harness, zone, midnight, site_date):
    set_site_zone(harness, zone, "")
    walk = coaching.add_habit("Walk")
    enrollment = coaching.enroll(site_date - dt.timedelta(days=4))
    insert_ticks(coaching, enrollment, walk, [site_date - dt.timedelta(days=1)])

    coaching.at(midnight - dt.timedelta(seconds=1))
    evaluate_all(coaching.runtime)
    before = coaching.enrollment(enrollment)
    coaching.at(midnight)
    evaluate_all(coaching.runtime)
    after = coaching.enrollment(enrollment)

    # Before midnight the tick is today's, afterwards a closed date.
    assert before.evaluated_on == site_date - dt.timedelta(days=1)
    assert before.habit_dates_due == 4
    assert after.evaluated_on == site_date
    assert after.habit_dates_due == 4
    assert after.habit_dates_done == 1
    assert not after.off_track


def test_scheduler_loads_evaluate_all():
    assert load_evaluation() is evaluate_all


def test_summary_as_dict_counts():
    summary = EvaluationSummary()
    summary.add(EvaluationSummary(enrollments=3, changed=2, off_track=1))

    assert summary.as_dict()["enrollments"] == 3
    assert summary.as_dict()["changed"] == 2
    assert summary.as_dict()["batches"] == 1


@given(
    milestones_done=st.integers(0, 20),
    milestones_extra=st.integers(0, 20),
    dates_done=st.integers(0, 500),
    dates_extra=st.integers(0, 500),
)
def test_percent_matches_progress(
    milestones_done, milestones_extra, dates_done, dates_extra
):
    progress = Progress(
        milestones_done=milestones_done,
        milestones_total=milestones_done + milestones_extra,
        habit_dates_done=dates_done,
        habit_dates_due=dates_done + dates_extra,
    )
    outcome = Outcome(
        off_track_habit_ids=frozenset(),
        milestones_done=progress.milestones_done,
        milestones_total=progress.milestones_total,
        habit_dates_done=progress.habit_dates_done,
        habit_dates_due=progress.habit_dates_due,
        completed=False,
    )

    assert progress_percent(outcome) == progress.percent
