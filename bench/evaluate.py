"""Time the nightly evaluation of 100,000 active enrollments on MariaDB.

Builds a state database with 20 programs of 5 habits and 4 milestones each and
100,000 active enrollments. Start dates are spread over 30 days, 76 to 105 days
before the timed site date, so every client has about 90 days of history. The
five habits of each program make about 2.4 due dates a day:

- Monday, Wednesday and Friday, for 16 weeks;
- Monday to Friday, for 16 weeks;
- Tuesday, Thursday and Saturday from day 7, for 4 months;
- every 2 days, for 4 months;
- every 3 days from day 3, for 112 days.

About 60% of the due dates before the timed date are ticked, chosen by a hash
of the ids and the date, and about 70% of the milestones due before it. The
server generates the ticks (INSERT ... SELECT over MariaDB's SEQUENCE engine),
then their per-habit summaries (``bridge.tick_summaries.rebuild``), which the
ticks through bridge would have kept current.

Then, in one run:

1. ``evaluate_all`` for the day before, untimed, so the stored state is that of
   a previous night;
2. ``evaluate_all`` for the timed date, which rewrites nearly every state row
   because due counts grow each day (``evaluate_all``);
3. ``evaluate_all`` again on the same date, which finds nothing to write;
4. a naive loop for the next date over a sample of enrollments. Per
   enrollment it runs one query for the enrollment and one each for its
   program's milestones, habits and milestone ticks. Then it runs one query per
   habit for that habit's ticks, applies the reference rule and commits. The
   time for all enrollments is extrapolated from the sample.

Usage::

    .venv/bin/python bench/evaluate.py [--enrollments 100000] [--sample 2000]

The server comes from COACHBRIDGE_BENCH_MYSQL_URL (default
mysql+pymysql://root@127.0.0.1:3306). The script creates its own database,
named cb_bench_evaluation_*, and drops it at the end. Results are printed as
``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import tick_summaries  # noqa: E402
from bridge.config import config_from_mapping  # noqa: E402
from bridge.db import Database  # noqa: E402
from bridge.evaluation import (  # noqa: E402
    STATE_COLUMNS,
    EvaluationState,
    Outcome,
    evaluate_all,
    habit_schedule,
    next_state,
)
from bridge.migrate import upgrade  # noqa: E402
from bridge.models import Enrollment, Habit, HabitTick, Milestone, MilestoneTick  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from rules.progress import evaluate_enrollment  # noqa: E402

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"
TODAY = dt.date(2025, 6, 2)
PROGRAMS = 20
START_SPREAD_DAYS = 30
MIN_HISTORY_DAYS = 76
TICKED_PERCENT = 60
MILESTONE_TICKED_PERCENT = 70
# Enrollments per INSERT ... SELECT of ticks, to keep each transaction short.
BUILD_CHUNK = 10_000
# (schedule, weekday bit mask with Monday as bit 0, interval, offset, length)
HABITS = (
    ("weekdays", 0b0010101, None, 0, 16, "weeks"),
    ("weekdays", 0b0011111, None, 0, 16, "weeks"),
    ("weekdays", 0b0101010, None, 7, 4, "months"),
    ("interval", 0, 2, 0, 4, "months"),
    ("interval", 0, 3, 3, 112, "days"),
)
MILESTONES = ((1, "weeks"), (4, "weeks"), (2, "months"), (4, "months"))


def main() -> None:
    """Parse the options, build the database and print the timings."""
    options = _parse_options()
    server = os.environ.get("COACHBRIDGE_BENCH_MYSQL_URL", DEFAULT_SERVER).rstrip("/")
    _metric("cpu_count", os.cpu_count() or 0, "")
    _metric("load_average_at_start", os.getloadavg()[0], "")

    name = f"cb_bench_evaluation_{uuid.uuid4().hex[:8]}"
    url = _create_database(server, name)
    try:
        _run(url, options)
    finally:
        _drop_database(server, name)
    _metric("load_average_at_end", os.getloadavg()[0], "")


def _parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--enrollments", type=int, default=100_000, help="active enrollments to build"
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=2000,
        help="enrollments the naive loop evaluates, to extrapolate its full time",
    )
    return parser.parse_args()


def _run(url: str, options: argparse.Namespace) -> None:
    clock = _Clock()
    runtime = _runtime(url, clock)
    try:
        started = time.monotonic()
        _build(runtime.db.engine, options.enrollments)
        _metric("build", time.monotonic() - started, "s")
        _report_sizes(runtime.db.engine, options.enrollments)

        clock.set(TODAY - dt.timedelta(days=1))
        evaluate_all(runtime)
        clock.set(TODAY)
        batched = _timed("evaluate_all", lambda: evaluate_all(runtime))
        _timed("evaluate_all_again", lambda: evaluate_all(runtime))

        clock.set(TODAY + dt.timedelta(days=1))
        sample = _sample_ids(options.enrollments, options.sample)
        naive = _timed("naive_loop_sample", lambda: _naive_loop(runtime, sample))
        extrapolated = naive * options.enrollments / len(sample)
        _metric("naive_loop_sample_enrollments", len(sample), "")
        _metric("naive_loop_extrapolated", extrapolated, "s")
        _metric("speedup", extrapolated / batched, "x")
    finally:
        runtime.close()


class _Clock:
    """A fixed instant five minutes after a site midnight (UTC)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def set(self, day: dt.date) -> None:
        self.now = dt.datetime.combine(day, dt.time(0, 5), tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _runtime(url: str, clock: _Clock) -> Runtime:
    config = config_from_mapping({"state": {"database_url": url}})
    db = Database.from_url(url)
    upgrade(db.engine)
    return Runtime(config=config, db=db, clock=clock, rng=random.Random(1))


# Building the data set, all on the server.


def _build(engine: sa.Engine, enrollments: int) -> None:
    with engine.begin() as connection:
        _add_programs(connection)
        _add_enrollments(connection, enrollments)
    for first in range(1, enrollments + 1, BUILD_CHUNK):
        last = min(first + BUILD_CHUNK - 1, enrollments)
        with engine.begin() as connection:
            connection.execute(sa.text(_HABIT_TICKS_SQL), _tick_params(first, last))
            tick_summaries.rebuild(connection, first, last)
    with engine.begin() as connection:
        connection.execute(sa.text(_MILESTONE_TICKS_SQL), _tick_params(1, enrollments))


def _add_programs(connection: sa.Connection) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO coaches (id, wp_user_id, display_name, email, created_at) "
            "VALUES (1, 1, 'Coach', 'coach@example.org', NOW())"
        )
    )
    for program in range(1, PROGRAMS + 1):
        connection.execute(
            sa.text(
                "INSERT INTO programs (id, slug, title, description, "
                "messaging_enabled, created_at, updated_at) "
                "VALUES (:id, :slug, :slug, '', 1, NOW(), NOW())"
            ),
            {"id": program, "slug": f"program-{program}"},
        )
        connection.execute(
            sa.text(
                "INSERT INTO cohorts (id, program_id, name, kind, coach_id, is_open, "
                "appointments_enabled, created_at) "
                "VALUES (:id, :id, 'Rolling', 'rolling', 1, 1, 0, NOW())"
            ),
            {"id": program},
        )
        _add_program_content(connection, program)


def _add_program_content(connection: sa.Connection, program: int) -> None:
    for position, (amount, unit) in enumerate(MILESTONES):
        connection.execute(
            sa.insert(Milestone.__table__),
            {
                "program_id": program,
                "position": position,
                "title": f"Milestone {position + 1}",
                "description": "",
                "due_amount": amount,
                "due_unit": unit,
            },
        )
    for position, (kind, mask, interval, offset, amount, unit) in enumerate(HABITS):
        connection.execute(
            sa.insert(Habit.__table__),
            {
                "program_id": program,
                "position": position,
                "title": f"Habit {position + 1}",
                "description": "",
                "schedule": kind,
                "weekdays": mask,
                "interval_days": interval,
                "start_offset_days": offset,
                "length_amount": amount,
                "length_unit": unit,
            },
        )


def _add_enrollments(connection: sa.Connection, enrollments: int) -> None:
    connection.execute(
        sa.text(
            f"""
            INSERT INTO enrollments (id, wp_user_id, program_id, cohort_id, status,
                start_date, enrolled_by_hand, created_at, updated_at, off_track,
                progress_percent, milestones_done, milestones_total,
                habit_dates_done, habit_dates_due)
            SELECT seq, seq, seq % {PROGRAMS} + 1, seq % {PROGRAMS} + 1, 'active',
                DATE_SUB(:today, INTERVAL :history + seq % :spread DAY), 0,
                NOW(), NOW(), 0, 0, 0, 0, 0, 0
            FROM seq_1_to_{enrollments}
            """
        ),
        {
            "today": TODAY,
            "history": MIN_HISTORY_DAYS,
            "spread": START_SPREAD_DAYS,
        },
    )


def _tick_params(first: int, last: int) -> dict[str, object]:
    return {
        "first": first,
        "last": last,
        "today": TODAY,
        "ticked": TICKED_PERCENT,
        "milestone_ticked": MILESTONE_TICKED_PERCENT,
    }


_DAY = "DATE_ADD(e.start_date, INTERVAL s.seq DAY)"
_FIRST = "DATE_ADD(e.start_date, INTERVAL h.start_offset_days DAY)"
_END = f"""CASE h.length_unit
    WHEN 'days' THEN DATE_ADD({_FIRST}, INTERVAL h.length_amount DAY)
    WHEN 'weeks' THEN DATE_ADD({_FIRST}, INTERVAL h.length_amount WEEK)
    ELSE DATE_ADD({_FIRST}, INTERVAL h.length_amount MONTH) END"""
_MAX_DAYS = MIN_HISTORY_DAYS + START_SPREAD_DAYS

# Due dates before the timed date, in the habit window and on its schedule,
# ticked when a hash of the ids and the day falls under the percentage.
_HABIT_TICKS_SQL = f"""
    INSERT INTO habit_ticks (enrollment_id, habit_id, due_date, ticked_at)
    SELECT e.id, h.id, {_DAY}, {_DAY} + INTERVAL 20 HOUR
    FROM enrollments e
    JOIN habits h ON h.program_id = e.program_id
    JOIN seq_0_to_{_MAX_DAYS} s
    WHERE e.id BETWEEN :first AND :last
      AND {_DAY} < :today AND {_DAY} >= {_FIRST} AND {_DAY} < {_END}
      AND ((h.schedule = 'weekdays' AND (h.weekdays >> WEEKDAY({_DAY})) & 1)
        OR (h.schedule = 'interval'
            AND MOD(s.seq - h.start_offset_days, h.interval_days) = 0))
      AND CRC32(CONCAT_WS(',', e.id, h.id, s.seq)) % 100 < :ticked
    ORDER BY e.id, h.id, s.seq
"""

_MILESTONE_DUE = """CASE m.due_unit
    WHEN 'days' THEN DATE_ADD(e.start_date, INTERVAL m.due_amount DAY)
    WHEN 'weeks' THEN DATE_ADD(e.start_date, INTERVAL m.due_amount WEEK)
    ELSE DATE_ADD(e.start_date, INTERVAL m.due_amount MONTH) END"""

_MILESTONE_TICKS_SQL = f"""
    INSERT INTO milestone_ticks (enrollment_id, milestone_id, ticked_at)
    SELECT e.id, m.id, {_MILESTONE_DUE}
    FROM enrollments e JOIN milestones m ON m.program_id = e.program_id
    WHERE e.id BETWEEN :first AND :last AND {_MILESTONE_DUE} < :today
      AND CRC32(CONCAT_WS(',', e.id, m.id)) % 100 < :milestone_ticked
"""


def _report_sizes(engine: sa.Engine, enrollments: int) -> None:
    with engine.connect() as connection:
        habit_ticks = _count(connection, HabitTick)
        milestone_ticks = _count(connection, MilestoneTick)
    _metric("enrollments", enrollments, "")
    _metric("habit_ticks", habit_ticks, "rows")
    _metric("habit_ticks_per_enrollment", habit_ticks / enrollments, "")
    _metric("milestone_ticks", milestone_ticks, "rows")


def _count(connection: sa.Connection, model) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(model)).scalar()


# The naive loop.


def _sample_ids(enrollments: int, sample: int) -> list[int]:
    step = max(1, enrollments // sample)
    return list(range(1, enrollments + 1, step))[:sample]


def _naive_loop(runtime: Runtime, enrollment_ids: list[int]) -> None:
    today = runtime.today()
    threshold = runtime.config.coaching.off_track_threshold
    for enrollment_id in enrollment_ids:
        with runtime.db.session() as session:
            enrollment = session.get_one(Enrollment, enrollment_id)
            _naive_evaluate(session, enrollment, today, threshold)


def _naive_evaluate(session, enrollment: Enrollment, today: dt.date, threshold: int):
    program_id = enrollment.program_id
    milestones = session.scalars(
        sa.select(Milestone.id).where(Milestone.program_id == program_id)
    ).all()
    habits = session.scalars(sa.select(Habit).where(Habit.program_id == program_id))
    schedules = {habit.id: habit_schedule(habit) for habit in habits}
    ticked = set(
        session.scalars(
            sa.select(MilestoneTick.milestone_id).where(
                MilestoneTick.enrollment_id == enrollment.id
            )
        )
    )
    ticks = []
    for habit_id in schedules:
        dates = session.scalars(
            sa.select(HabitTick.due_date).where(
                HabitTick.enrollment_id == enrollment.id,
                HabitTick.habit_id == habit_id,
            )
        )
        ticks.extend((habit_id, day) for day in dates)

    evaluation = evaluate_enrollment(
        start_date=enrollment.start_date,
        today=today,
        milestone_done={milestone: milestone in ticked for milestone in milestones},
        habits=schedules,
        ticks=ticks,
        threshold=threshold,
    )
    new = next_state(EvaluationState.of(enrollment), Outcome.of(evaluation), today)
    for name in STATE_COLUMNS:
        setattr(enrollment, name, getattr(new, name))


# Output and database helpers.


def _timed(name: str, work) -> float:
    cpu_before = _own_cpu_seconds()
    started = time.monotonic()
    result = work()
    elapsed = time.monotonic() - started
    _metric(name, elapsed, "s")
    _metric(f"{name}_client_cpu", _own_cpu_seconds() - cpu_before, "s")
    if hasattr(result, "as_dict"):
        print(f"  {result.as_dict()}", file=sys.stderr)
    return elapsed


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _create_database(server: str, name: str) -> str:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE DATABASE `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
    engine.dispose()
    return f"{server}/{name}?charset=utf8mb4"


def _drop_database(server: str, name: str) -> None:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


def _metric(name: str, value: float, unit: str) -> None:
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit}".rstrip())


if __name__ == "__main__":
    main()
