"""Evaluation of enrollments: off-track status, progress and completion, stored.

``rules.progress.evaluate_enrollment`` is the reference. ``evaluate_enrollment_now``
calls it for one enrollment, after a tick. ``evaluate_all`` runs after each site
midnight over every active enrollment. It splits them into id ranges with one
query and evaluates each range in one transaction with a fixed number of
queries, two ranges at a time on MariaDB:

- the range's enrollments, read and locked (FOR UPDATE), so that a concurrent
  tick waits instead of being overwritten with older state;
- then, for each of them, its ticked milestone ids and its habit tick summaries
  (``bridge.tick_summaries``) as text: for each ticked habit, the tick count,
  the first, last and previous ticked day numbers and the set of day numbers
  modulo 42;
- the ticks of the few enrollments whose summaries cannot be verified, which
  are then evaluated with the reference rule.

It never reads the tick rows of a verified enrollment, so its cost grows with
the number of enrollments and habits, not with the length of their history.

Due-date counts, windows and off-track cutoffs come from
``rules.schedules.HabitTimeline``, once per habit and start date. A summary is
used only when it proves that every tick in it is a due date up to today: its
first and last dates lie in the habit's window and before tomorrow, and every
day number modulo 42 falls on the schedule. 42 = 2 * 3 * 7, so this decides
weekdays and intervals of 1, 2, 3, 6, 7, 14, 21 and 42 days. Other intervals
are decided only for habits with at most two ticks, and the rest falls back to
the reference rule. Day numbers are those of ``date.toordinal()``.

Changed state is written with one UPDATE per range through a temporary table.
Each transition (off_track, back_on_track, program_completed) becomes one
activity entry, found by comparing with the stored state, so a second run on
the same site date writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge import activity, tick_summaries
from bridge.models import (
    ActivityType,
    Cohort,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    HabitTickSummary,
    Milestone,
    MilestoneTick,
    Program,
    utcnow,
)
from bridge.runtime import Runtime
from rules.progress import Evaluation, evaluate_enrollment
from rules.schedules import HabitSchedule, HabitTimeline, ScheduleKind

log = logging.getLogger(__name__)

# Rows per INSERT into the staging table.
STAGING_ROWS_PER_INSERT = 1000
# Enrollments per batch. Each batch is one transaction whose row locks delay
# ticks of those enrollments, so batches stay small.
BATCH_SIZE = 2000
# Batches in flight on MariaDB: the server runs each query on one core, so a
# second batch keeps both cores of a small server busy.
WORKERS = 2
RESIDUE_MODULUS = tick_summaries.RESIDUE_MODULUS
ALL_RESIDUES = (1 << RESIDUE_MODULUS) - 1
# Habits whose ticks are decided from their first and last dates alone.
MAX_TICKS_DECIDED_BY_ENDS = 2

ENROLLMENTS = Enrollment.__table__
HABIT_TICKS = HabitTick.__table__
MILESTONE_TICKS = MilestoneTick.__table__
SUMMARIES = HabitTickSummary.__table__

STATE_COLUMNS = (
    "off_track",
    "progress_percent",
    "milestones_done",
    "milestones_total",
    "habit_dates_done",
    "habit_dates_due",
    "completed_on",
    "evaluated_on",
)

_STAGING = sa.Table(
    "evaluation_staging",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("off_track", sa.Boolean, nullable=False),
    sa.Column("progress_percent", sa.Integer, nullable=False),
    sa.Column("milestones_done", sa.Integer, nullable=False),
    sa.Column("milestones_total", sa.Integer, nullable=False),
    sa.Column("habit_dates_done", sa.Integer, nullable=False),
    sa.Column("habit_dates_due", sa.Integer, nullable=False),
    sa.Column("completed_on", sa.Date),
    sa.Column("evaluated_on", sa.Date),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class EvaluationState:
    """Evaluation columns of one enrollment, as stored on its row."""

    off_track: bool
    progress_percent: int
    milestones_done: int
    milestones_total: int
    habit_dates_done: int
    habit_dates_due: int
    completed_on: dt.date | None
    evaluated_on: dt.date | None

    @classmethod
    def of(cls, row: Any) -> EvaluationState:
        """Read the state from an Enrollment or a row with the same columns."""
        return cls(**{name: getattr(row, name) for name in STATE_COLUMNS})

    def columns(self) -> dict[str, Any]:
        """Return the state as column values, without copying them."""
        return {name: getattr(self, name) for name in STATE_COLUMNS}

    def values(self) -> tuple[Any, ...]:
        """Return the values in the order of ``STATE_COLUMNS``, without copying."""
        return tuple(getattr(self, name) for name in STATE_COLUMNS)

    def as_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready values, dates in ISO format."""
        values = self.columns()
        for name in ("completed_on", "evaluated_on"):
            if values[name] is not None:
                values[name] = values[name].isoformat()
        return values


@dataclass(frozen=True)
class Outcome:
    """Counts and flags of one enrollment on one site date, before storing."""

    off_track_habit_ids: frozenset[int]
    milestones_done: int
    milestones_total: int
    habit_dates_done: int
    habit_dates_due: int
    completed: bool

    @classmethod
    def of(cls, evaluation: Evaluation) -> Outcome:
        """Take the values of a reference evaluation."""
        progress = evaluation.progress
        return cls(
            off_track_habit_ids=evaluation.off_track_habit_ids,
            milestones_done=progress.milestones_done,
            milestones_total=progress.milestones_total,
            habit_dates_done=progress.habit_dates_done,
            habit_dates_due=progress.habit_dates_due,
            completed=evaluation.completed,
        )


@dataclass
class EvaluationSummary:
    """Counts of one ``evaluate_all`` run, logged by the scheduler."""

    enrollments: int = 0
    changed: int = 0
    off_track: int = 0
    back_on_track: int = 0
    completed: int = 0
    fallbacks: int = 0
    batches: int = 0
    errors: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain values."""
        return asdict(self)

    def add(self, batch: EvaluationSummary) -> None:
        """Add the counts of one batch."""
        for name in _BATCH_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(batch, name))
        self.batches += 1


_BATCH_COUNTS = (
    "enrollments",
    "changed",
    "off_track",
    "back_on_track",
    "completed",
    "fallbacks",
)


def progress_percent(outcome: Outcome) -> int:
    """Return ``rules.progress.Progress.percent`` in integer arithmetic.

    The mean of the milestone share and the habit share, each counted only when
    its total is above 0, rounded down. It is 0 when both totals are 0.
    """
    done, total = outcome.milestones_done, outcome.milestones_total
    dates_done, dates_due = outcome.habit_dates_done, outcome.habit_dates_due
    if total and dates_due:
        numerator = 100 * (done * dates_due + dates_done * total)
        return numerator // (2 * total * dates_due)
    if total:
        return 100 * done // total
    if dates_due:
        return 100 * dates_done // dates_due
    return 0


def next_state(
    stored: EvaluationState, outcome: Outcome, today: dt.date
) -> EvaluationState:
    """Build the state to store after an evaluation on the site date ``today``.

    ``completed_on`` keeps the date on which an evaluation first found the
    program completed, and is cleared when it no longer is.
    """
    completed_on = None
    if outcome.completed:
        completed_on = stored.completed_on or today
    return EvaluationState(
        off_track=bool(outcome.off_track_habit_ids),
        progress_percent=progress_percent(outcome),
        milestones_done=outcome.milestones_done,
        milestones_total=outcome.milestones_total,
        habit_dates_done=outcome.habit_dates_done,
        habit_dates_due=outcome.habit_dates_due,
        completed_on=completed_on,
        evaluated_on=today,
    )


def transitions(stored: EvaluationState, new: EvaluationState) -> list[ActivityType]:
    """List the feed entries that the change from ``stored`` to ``new`` calls for."""
    changes = []
    if new.off_track and not stored.off_track:
        changes.append(ActivityType.OFF_TRACK)
    if stored.off_track and not new.off_track:
        changes.append(ActivityType.BACK_ON_TRACK)
    if new.completed_on is not None and stored.completed_on is None:
        changes.append(ActivityType.PROGRAM_COMPLETED)
    return changes


def transition_entry(
    kind: ActivityType,
    subject: Mapping[str, Any],
    program_title: str,
    outcome: Outcome,
    new: EvaluationState,
    occurred_at: dt.datetime,
) -> dict[str, Any]:
    """Build the activity row of one transition, for ``activity.record_many``."""
    if kind is ActivityType.OFF_TRACK:
        summary = f"Off track in {program_title}"
        details = {"habit_ids": sorted(outcome.off_track_habit_ids)}
    elif kind is ActivityType.BACK_ON_TRACK:
        summary = f"Back on track in {program_title}"
        details = {}
    else:
        summary = f"Completed {program_title}"
        details = {"completed_on": new.completed_on.isoformat()}
    details["evaluated_on"] = new.evaluated_on.isoformat()
    return activity.activity_row(
        kind, **subject, summary=summary, details=details, occurred_at=occurred_at
    )


# One enrollment, with the reference rule.


def evaluate_enrollment_now(
    session: Session,
    runtime: Runtime,
    enrollment: Enrollment,
    today: dt.date | None = None,
) -> EvaluationState:
    """Evaluate one enrollment with the reference rule and store the result.

    Writes a feed entry for each transition, in the session's transaction.
    ``today`` defaults to the site's current date. The caller should hold a lock
    on the enrollment row, as ``bridge.ticks`` does, so that two evaluations of
    one enrollment cannot both write the same transition.
    """
    today = today or runtime.today()
    threshold = runtime.config.coaching.off_track_threshold
    program = ProgramPlan.load(session, enrollment.program_id)
    milestone_done = dict.fromkeys(program.milestone_ids, False)
    for milestone_id in _milestone_ticks(session, enrollment.id):
        if milestone_id in milestone_done:
            milestone_done[milestone_id] = True

    evaluation = evaluate_enrollment(
        start_date=enrollment.start_date,
        today=today,
        milestone_done=milestone_done,
        habits=program.schedules,
        ticks=_habit_ticks(session, [enrollment.id]).get(enrollment.id, []),
        threshold=threshold,
    )
    outcome = Outcome.of(evaluation)
    stored = EvaluationState.of(enrollment)
    new = next_state(stored, outcome, today)
    if new == stored:
        return new

    _record_transitions(session, runtime, enrollment, program, outcome, stored, new)
    for name in STATE_COLUMNS:
        setattr(enrollment, name, getattr(new, name))
    return new


def _record_transitions(
    session: Session,
    runtime: Runtime,
    enrollment: Enrollment,
    program: ProgramPlan,
    outcome: Outcome,
    stored: EvaluationState,
    new: EvaluationState,
) -> None:
    kinds = transitions(stored, new)
    if not kinds:
        return

    subject = {
        "wp_user_id": enrollment.wp_user_id,
        "program_id": enrollment.program_id,
        "cohort_id": enrollment.cohort_id,
        "coach_id": enrollment.cohort.coach_id,
        "enrollment_id": enrollment.id,
    }
    occurred_at = runtime.now().astimezone(dt.UTC).replace(tzinfo=None)
    rows = [
        transition_entry(kind, subject, program.title, outcome, new, occurred_at)
        for kind in kinds
    ]
    activity.record_many(session, rows)


def _milestone_ticks(session: Session, enrollment_id: int) -> list[int]:
    query = sa.select(MILESTONE_TICKS.c.milestone_id).where(
        MILESTONE_TICKS.c.enrollment_id == enrollment_id
    )
    return list(session.scalars(query))


def _habit_ticks(
    session: Session, enrollment_ids: Sequence[int]
) -> dict[int, list[tuple[int, dt.date]]]:
    query = sa.select(
        HABIT_TICKS.c.enrollment_id, HABIT_TICKS.c.habit_id, HABIT_TICKS.c.due_date
    ).where(HABIT_TICKS.c.enrollment_id.in_(enrollment_ids))
    ticks: dict[int, list[tuple[int, dt.date]]] = {}
    for enrollment_id, habit_id, due_date in session.execute(query):
        ticks.setdefault(enrollment_id, []).append((habit_id, due_date))
    return ticks


# Programs and the facts derived from their schedules.


@dataclass(frozen=True)
class ProgramPlan:
    """A program's milestones and habit schedules, as the rules read them."""

    id: int
    title: str
    milestone_ids: tuple[int, ...]
    schedules: Mapping[int, HabitSchedule]

    @cached_property
    def milestone_set(self) -> frozenset[int]:
        """The milestone ids, for membership tests."""
        return frozenset(self.milestone_ids)

    @classmethod
    def load(cls, session: Session, program_id: int) -> ProgramPlan:
        """Read one program's milestones and habits."""
        return load_programs(session, [program_id])[program_id]


def load_programs(
    session: Session, program_ids: Iterable[int] | None = None
) -> dict[int, ProgramPlan]:
    """Read programs with their milestone ids and habit schedules, three queries.

    Reads every program when ``program_ids`` is None.
    """
    programs = sa.select(Program.id, Program.title)
    milestones = sa.select(Milestone.program_id, Milestone.id)
    habits = sa.select(Habit)
    if program_ids is not None:
        wanted = list(program_ids)
        programs = programs.where(Program.id.in_(wanted))
        milestones = milestones.where(Milestone.program_id.in_(wanted))
        habits = habits.where(Habit.program_id.in_(wanted))

    milestone_ids: dict[int, list[int]] = {}
    for program_id, milestone_id in session.execute(milestones):
        milestone_ids.setdefault(program_id, []).append(milestone_id)
    schedules: dict[int, dict[int, HabitSchedule]] = {}
    for habit in session.scalars(habits):
        schedules.setdefault(habit.program_id, {})[habit.id] = habit_schedule(habit)

    return {
        program_id: ProgramPlan(
            id=program_id,
            title=title,
            milestone_ids=tuple(milestone_ids.get(program_id, ())),
            schedules=schedules.get(program_id, {}),
        )
        for program_id, title in session.execute(programs)
    }


def habit_schedule(habit: Habit) -> HabitSchedule:
    """Convert a Habit row to the rules' schedule, with weekdays from the bit mask."""
    kind = ScheduleKind(habit.schedule)
    weekdays = frozenset()
    if kind is ScheduleKind.WEEKDAYS:
        weekdays = frozenset(day for day in range(7) if habit.weekdays >> day & 1)
    return HabitSchedule(
        kind=kind,
        start_offset_days=habit.start_offset_days,
        length_amount=habit.length_amount,
        length_unit=habit.length_unit,
        weekdays=weekdays,
        interval_days=habit.interval_days if kind is ScheduleKind.INTERVAL else None,
    )


@dataclass(frozen=True)
class HabitFacts:
    """One habit on one client's calendar on one site date, as day numbers.

    Day numbers are those of ``date.toordinal()``. ``cutoff`` is the earliest
    of the last ``threshold`` closed due dates, or None when fewer have closed.
    ``allowed_residues`` has bit r set when a day number that is r modulo 42 can
    be a due date, or is None when that does not decide it.
    """

    timeline: HabitTimeline
    first: int
    end: int
    cutoff: int | None
    closed_due: int
    last_due: dt.date | None
    allowed_residues: int | None

    def covers(self, count: int, first: int, last: int, residues: int) -> bool:
        """Tell whether every tick of a summary is provably a due date."""
        if first < self.first or last >= self.end:
            return False
        if self.allowed_residues is not None:
            return residues & ~self.allowed_residues == 0
        if count > MAX_TICKS_DECIDED_BY_ENDS:
            return False
        return self._is_due(first) and self._is_due(last)

    def _is_due(self, day_number: int) -> bool:
        return self.timeline.is_due(dt.date.fromordinal(day_number))


def habit_facts(
    schedule: HabitSchedule, start_date: dt.date, today: dt.date, threshold: int
) -> HabitFacts:
    """Compute a habit's window, cutoff and due-date counts for one start date."""
    timeline = HabitTimeline.for_client(schedule, start_date)
    latest_closed = timeline.latest_due_dates_before(today, threshold)
    cutoff = None
    if len(latest_closed) == threshold:
        cutoff = latest_closed[0].toordinal()
    return HabitFacts(
        timeline=timeline,
        first=timeline.first.toordinal(),
        end=timeline.end.toordinal(),
        cutoff=cutoff,
        closed_due=timeline.count_due_dates_before(today),
        last_due=timeline.last_due_date(),
        allowed_residues=_allowed_residues(timeline),
    )


def _allowed_residues(timeline: HabitTimeline) -> int | None:
    schedule = timeline.schedule
    if schedule.kind is ScheduleKind.DAILY:
        return ALL_RESIDUES

    allowed = 0
    if schedule.kind is ScheduleKind.WEEKDAYS:
        for residue in range(RESIDUE_MODULUS):
            # date.toordinal() is 1 on a Monday, so the weekday is ordinal - 1 mod 7.
            if (residue - 1) % 7 in schedule.weekdays:
                allowed |= 1 << residue
        return allowed

    interval = schedule.interval_days
    if RESIDUE_MODULUS % interval:
        return None
    first = timeline.first.toordinal()
    for residue in range(RESIDUE_MODULUS):
        if (residue - first) % interval == 0:
            allowed |= 1 << residue
    return allowed


@dataclass(frozen=True)
class ProgramFacts:
    """A program's habit facts for one start date, and their sums."""

    habits: Mapping[int, HabitFacts]
    closed_due: int
    cutoff_habit_ids: frozenset[int]
    has_due_dates: bool
    all_closed: bool


def program_facts(
    plan: ProgramPlan, start_date: dt.date, today: dt.date, threshold: int
) -> ProgramFacts:
    """Compute the facts of every habit of a program for one start date."""
    habits = {
        habit_id: habit_facts(schedule, start_date, today, threshold)
        for habit_id, schedule in plan.schedules.items()
    }
    last_dues = [facts.last_due for facts in habits.values() if facts.last_due]
    return ProgramFacts(
        habits=habits,
        closed_due=sum(facts.closed_due for facts in habits.values()),
        cutoff_habit_ids=frozenset(
            habit_id for habit_id, facts in habits.items() if facts.cutoff is not None
        ),
        has_due_dates=bool(last_dues),
        all_closed=all(last_due < today for last_due in last_dues),
    )


# Every active enrollment, in batches.


@dataclass
class _Run:
    """Values shared by the batches of one evaluate_all run."""

    runtime: Runtime
    today: dt.date
    threshold: int
    occurred_at: dt.datetime
    programs: dict[int, ProgramPlan]
    coaches: dict[int, int]
    facts: dict[tuple[int, dt.date], ProgramFacts] = field(default_factory=dict)

    def program_facts(self, program_id: int, start_date: dt.date) -> ProgramFacts:
        key = (program_id, start_date)
        facts = self.facts.get(key)
        if facts is None:
            plan = self.programs[program_id]
            facts = program_facts(plan, start_date, self.today, self.threshold)
            self.facts[key] = facts
        return facts


@dataclass
class _Tally:
    """Counts of one enrollment, from its milestone ticks and verified summaries."""

    facts: ProgramFacts
    milestones_done: int = 0
    done: int = 0
    ticked_today: int = 0
    kept_habit_ids: set[int] = field(default_factory=set)
    needs_fallback: bool = False


def evaluate_all(
    runtime: Runtime, batch_size: int = BATCH_SIZE, workers: int | None = None
) -> EvaluationSummary:
    """Evaluate every active enrollment on the site's current date and store it.

    ``workers`` batches run at once, each in its own transaction. The default
    is one on SQLite, which has a single writer, and ``WORKERS`` elsewhere.
    Batches that fail are logged with their id range and counted in
    ``errors``, and the run goes on with the other batches.
    """
    started = time.monotonic()
    run = _start_run(runtime)
    batches = _batch_ranges(runtime, batch_size)
    if workers is None:
        workers = 1 if runtime.db.is_sqlite else WORKERS
    log.info(
        "evaluation of active enrollments started for site date %s: %d batches "
        "of up to %d, %d at once, off-track threshold %d",
        run.today,
        len(batches),
        batch_size,
        workers,
        run.threshold,
    )

    summary = EvaluationSummary()
    with ThreadPoolExecutor(workers, thread_name_prefix="evaluation") as pool:
        for batch in pool.map(partial(_evaluate_batch_safely, run), batches):
            if batch is None:
                summary.errors += 1
            else:
                summary.add(batch)

    summary.seconds = round(time.monotonic() - started, 3)
    _log_finish(summary, run.today)
    return summary


def _start_run(runtime: Runtime) -> _Run:
    with runtime.db.session() as session:
        programs = load_programs(session)
        coaches = dict(session.execute(sa.select(Cohort.id, Cohort.coach_id)).all())
    return _Run(
        runtime=runtime,
        today=runtime.today(),
        threshold=runtime.config.coaching.off_track_threshold,
        occurred_at=runtime.now().astimezone(dt.UTC).replace(tzinfo=None),
        programs=programs,
        coaches=coaches,
    )


@dataclass(frozen=True)
class _Batch:
    """Active enrollments with ids from ``first`` up to ``last`` (None: no limit)."""

    first: int
    last: int | None

    def describe(self) -> str:
        if self.last is None:
            return f"from id {self.first}"
        return f"with ids {self.first} to {self.last}"


def _batch_ranges(runtime: Runtime, batch_size: int) -> list[_Batch]:
    """Split the active enrollments into id ranges of ``batch_size``, one query.

    An enrollment activated or created after the split is evaluated with the
    range its id falls in, because the last range has no upper limit.
    """
    numbered = (
        sa.select(
            ENROLLMENTS.c.id,
            sa.func.row_number().over(order_by=ENROLLMENTS.c.id).label("position"),
        )
        .where(_active())
        .subquery()
    )
    query = (
        sa.select(numbered.c.id)
        .where((numbered.c.position - 1) % batch_size == 0)
        .order_by(numbered.c.id)
    )
    with runtime.db.session() as session:
        firsts = list(session.scalars(query))
    if not firsts:
        return []
    lasts: list[int | None] = [first - 1 for first in firsts[1:]]
    lasts.append(None)
    return [_Batch(first, last) for first, last in zip(firsts, lasts, strict=True)]


def _evaluate_batch_safely(run: _Run, batch: _Batch) -> EvaluationSummary | None:
    what = f"evaluation of enrollments {batch.describe()}"
    try:
        return run.runtime.db.run(partial(_evaluate_batch, run, batch), what)
    except Exception:
        # A database error or a row the rules reject costs this batch only.
        log.exception("failed %s, the run goes on with the other batches", what)
        return None


def _active() -> sa.ColumnElement[bool]:
    return ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE.value


def _evaluate_batch(run: _Run, batch: _Batch, session: Session) -> EvaluationSummary:
    rows = _lock_batch(session, batch)
    if not rows:
        return EvaluationSummary()

    _load_new_programs(session, run, rows)
    today = run.today.toordinal()
    texts = _tick_texts(session, rows[0].id, rows[-1].id)
    tallies = {
        row.id: _tally(run, today, row, *texts.get(row.id, ("", ""))) for row in rows
    }

    outcomes = {}
    for row in rows:
        outcomes[row.id] = _outcome(run, row, tallies[row.id])
    fallback_ids = [row.id for row in rows if tallies[row.id].needs_fallback]
    outcomes.update(_reference_outcomes(session, run, rows, fallback_ids))

    summary = _store(session, run, rows, outcomes)
    summary.fallbacks = len(fallback_ids)
    return summary


def _load_new_programs(session: Session, run: _Run, rows: Sequence[Any]) -> None:
    """Read programs created since the run started, which new enrollments use."""
    missing = {row.program_id for row in rows} - run.programs.keys()
    if missing:
        run.programs.update(load_programs(session, missing))


def _lock_batch(session: Session, batch: _Batch) -> list[Any]:
    query = (
        sa.select(
            ENROLLMENTS.c.id,
            ENROLLMENTS.c.wp_user_id,
            ENROLLMENTS.c.program_id,
            ENROLLMENTS.c.cohort_id,
            ENROLLMENTS.c.start_date,
            *(ENROLLMENTS.c[name] for name in STATE_COLUMNS),
        )
        .where(_active(), ENROLLMENTS.c.id >= batch.first)
        .order_by(ENROLLMENTS.c.id)
        .with_for_update()
    )
    if batch.last is not None:
        query = query.where(ENROLLMENTS.c.id <= batch.last)
    return list(session.execute(query))


def _tick_texts(
    session: Session, first_id: int, last_id: int
) -> dict[int, tuple[str, str]]:
    """Read the habit summaries and ticked milestone ids of the locked range.

    Returns, per active enrollment, its habit summaries and its ticked
    milestone ids, each a text joined with ",". A habit summary is the habit
    id, tick count, first, last and previous day number (0 when there is no
    previous tick) and the residue bits, joined with ":". One row per
    enrollment costs PyMySQL far less to read than one row per summary and
    per milestone tick.

    This is a statement of its own, run once the enrollments are locked.
    Subqueries of the locking statement would read a snapshot taken when it
    started, before the ticks it waited for were committed.
    """
    dialect = session.get_bind().dialect.name

    def day(column: sa.ColumnElement) -> sa.ColumnElement:
        return sa.cast(tick_summaries.ordinal(column, dialect), sa.String)

    text = (
        sa.cast(SUMMARIES.c.habit_id, sa.String)
        + ":"
        + sa.cast(SUMMARIES.c.tick_count, sa.String)
        + ":"
        + day(SUMMARIES.c.first_due_date)
        + ":"
        + day(SUMMARIES.c.last_due_date)
        + ":"
        + sa.func.coalesce(day(SUMMARIES.c.previous_due_date), "0")
        + ":"
        + sa.cast(SUMMARIES.c.residues, sa.String)
    )
    summaries = (
        sa.select(sa.func.group_concat(text))
        .where(SUMMARIES.c.enrollment_id == ENROLLMENTS.c.id)
        .scalar_subquery()
    )
    milestone_ids = (
        sa.select(
            sa.func.group_concat(sa.cast(MILESTONE_TICKS.c.milestone_id, sa.String))
        )
        .where(MILESTONE_TICKS.c.enrollment_id == ENROLLMENTS.c.id)
        .scalar_subquery()
    )
    query = sa.select(ENROLLMENTS.c.id, summaries, milestone_ids).where(
        _active(), ENROLLMENTS.c.id.between(first_id, last_id)
    )
    return {
        enrollment_id: (summary_text or "", milestone_text or "")
        for enrollment_id, summary_text, milestone_text in session.execute(query)
    }


def _tally(
    run: _Run, today: int, row: Any, summaries: str, milestone_ids: str
) -> _Tally:
    """Count an enrollment's milestone ticks and add its verified habit summaries.

    Ticks of milestones outside the enrollment's program, and summaries of
    habits outside it, are skipped, as the reference rule ignores them. A
    summary that cannot be verified marks the tally for a fallback.
    """
    plan = run.programs[row.program_id]
    tally = _Tally(run.program_facts(row.program_id, row.start_date))
    if milestone_ids:
        for milestone_id in map(int, milestone_ids.split(",")):
            if milestone_id in plan.milestone_set:
                tally.milestones_done += 1
    if summaries:
        for summary in summaries.split(","):
            _add_summary(tally, today, summary)
    return tally


def _add_summary(tally: _Tally, today: int, summary: str) -> None:
    """Add one habit's summary to the tally, or mark the tally for a fallback."""
    habit_id, count, first, last, previous, residues = map(int, summary.split(":"))
    facts = tally.facts.habits.get(habit_id)
    if facts is None:
        return
    if last > today or not facts.covers(count, first, last, residues):
        tally.needs_fallback = True
        return

    tally.done += count
    latest_closed = last
    if last == today:
        tally.ticked_today += 1
        latest_closed = previous
    if facts.cutoff is not None and latest_closed >= facts.cutoff:
        tally.kept_habit_ids.add(habit_id)


def _outcome(run: _Run, row: Any, tally: _Tally) -> Outcome:
    facts = tally.facts
    milestones_done = tally.milestones_done
    milestones_total = len(run.programs[row.program_id].milestone_ids)
    completed = (
        (milestones_total > 0 or facts.has_due_dates)
        and milestones_done == milestones_total
        and facts.all_closed
    )
    return Outcome(
        off_track_habit_ids=facts.cutoff_habit_ids - tally.kept_habit_ids,
        milestones_done=milestones_done,
        milestones_total=milestones_total,
        habit_dates_done=tally.done,
        habit_dates_due=facts.closed_due + tally.ticked_today,
        completed=completed,
    )


def _reference_outcomes(
    session: Session, run: _Run, rows: Sequence[Any], enrollment_ids: Sequence[int]
) -> dict[int, Outcome]:
    """Evaluate enrollments with the reference rule from their loaded ticks."""
    if not enrollment_ids:
        return {}

    wanted = set(enrollment_ids)
    habit_ticks = _habit_ticks(session, enrollment_ids)
    query = sa.select(
        MILESTONE_TICKS.c.enrollment_id, MILESTONE_TICKS.c.milestone_id
    ).where(MILESTONE_TICKS.c.enrollment_id.in_(enrollment_ids))
    milestone_ticks: dict[int, set[int]] = {}
    for enrollment_id, milestone_id in session.execute(query):
        milestone_ticks.setdefault(enrollment_id, set()).add(milestone_id)

    outcomes = {}
    for row in rows:
        if row.id not in wanted:
            continue
        plan = run.programs[row.program_id]
        ticked = milestone_ticks.get(row.id, set())
        evaluation = evaluate_enrollment(
            start_date=row.start_date,
            today=run.today,
            milestone_done={m: m in ticked for m in plan.milestone_ids},
            habits=plan.schedules,
            ticks=habit_ticks.get(row.id, []),
            threshold=run.threshold,
        )
        outcomes[row.id] = Outcome.of(evaluation)
    return outcomes


def _store(
    session: Session, run: _Run, rows: Sequence[Any], outcomes: Mapping[int, Outcome]
) -> EvaluationSummary:
    """Write changed states and one feed entry per transition."""
    summary = EvaluationSummary(enrollments=len(rows))
    changed: list[tuple[Any, ...]] = []
    entries: list[dict[str, Any]] = []
    for row in rows:
        stored = EvaluationState.of(row)
        outcome = outcomes[row.id]
        new = next_state(stored, outcome, run.today)
        if new == stored:
            continue

        changed.append((row.id, *new.values()))
        for kind in transitions(stored, new):
            entries.append(_batch_entry(run, row, kind, outcome, new))
            _count_transition(summary, kind)

    _write_states(session, changed, rows[0].id, rows[-1].id)
    activity.record_many(session, entries)
    summary.changed = len(changed)
    return summary


def _batch_entry(
    run: _Run, row: Any, kind: ActivityType, outcome: Outcome, new: EvaluationState
) -> dict[str, Any]:
    subject = {
        "wp_user_id": row.wp_user_id,
        "program_id": row.program_id,
        "cohort_id": row.cohort_id,
        "coach_id": run.coaches.get(row.cohort_id),
        "enrollment_id": row.id,
    }
    title = run.programs[row.program_id].title
    return transition_entry(kind, subject, title, outcome, new, run.occurred_at)


def _count_transition(summary: EvaluationSummary, kind: ActivityType) -> None:
    if kind is ActivityType.OFF_TRACK:
        summary.off_track += 1
    elif kind is ActivityType.BACK_ON_TRACK:
        summary.back_on_track += 1
    else:
        summary.completed += 1


def _write_states(
    session: Session, states: list[tuple[Any, ...]], first_id: int, last_id: int
) -> None:
    """Update the enrollments from a temporary table: one insert, one UPDATE.

    ``states`` has one tuple per enrollment: its id, then the values of
    ``STATE_COLUMNS``. An executemany of UPDATE statements would cost one round
    trip per row with PyMySQL. Its executemany of INSERT escapes each value in
    Python, which took about 1 s of CPU for 100,000 rows, so the rows are sent
    as SQL literals instead, which ``_sql_literal`` renders from typed values
    only. The UPDATE is limited to the batch's id range: without that, MariaDB may join
    from a full scan of enrollments and lock the rows of other batches, which
    makes concurrent batches deadlock.
    """
    if not states:
        return

    connection = session.connection()
    connection.execute(sa.schema.CreateTable(_STAGING, if_not_exists=True))
    connection.execute(sa.delete(_STAGING))
    columns = ", ".join(["id", *STATE_COLUMNS])
    for start in range(0, len(states), STAGING_ROWS_PER_INSERT):
        chunk = states[start : start + STAGING_ROWS_PER_INSERT]
        values = ", ".join(
            "(" + ", ".join(map(_sql_literal, state)) + ")" for state in chunk
        )
        connection.exec_driver_sql(
            f"INSERT INTO {_STAGING.name} ({columns}) VALUES {values}"
        )
    values = {name: _STAGING.c[name] for name in STATE_COLUMNS}
    connection.execute(
        sa.update(ENROLLMENTS)
        .where(
            ENROLLMENTS.c.id == _STAGING.c.id,
            ENROLLMENTS.c.id.between(first_id, last_id),
        )
        .values(**values, updated_at=utcnow())
    )
    connection.execute(sa.delete(_STAGING))


def _sql_literal(value: object) -> str:
    """Render a state value as an SQL literal: None, a bool, an int or a date."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if type(value) is dt.date:
        return f"'{value.isoformat()}'"
    raise TypeError(
        f"invalid state value {value!r}: expected None, a bool, an int or a date"
    )


def _log_finish(summary: EvaluationSummary, today: dt.date) -> None:
    log.info(
        "evaluation for site date %s finished in %.1f s: %d enrollments, %d changed, "
        "%d off track, %d back on track, %d completed, %d evaluated from loaded "
        "ticks, %d failed batches",
        today,
        summary.seconds,
        summary.enrollments,
        summary.changed,
        summary.off_track,
        summary.back_on_track,
        summary.completed,
        summary.fallbacks,
        summary.errors,
    )
