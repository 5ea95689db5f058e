"""Per-habit tick totals that spare the nightly evaluation from reading every tick.

A site with 100,000 clients and three months of daily habits has millions of
tick rows, and ``habit_tick_summaries`` has one row per enrollment and ticked
habit. Each row has the tick count, the first, last and previous ticked dates,
and a bit set of the dates' day numbers modulo ``RESIDUE_MODULUS``.

Two ways keep the table current:

- ``refresh_habit`` rewrites one enrollment's row for one habit from its ticks.
  ``bridge.ticks`` calls it in the transaction of every tick and untick, while
  it holds the enrollment's row lock, so two refreshes of a row never overlap.
- ``rebuild`` recomputes every row of a range of enrollments with three
  set-based statements. ``coachbridge db rebuild-summaries`` runs it over all
  enrollments after ticks were written outside bridge, for example by hand in
  SQL.

Deleting an enrollment or a habit deletes its rows through foreign keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge.errors import InvalidRequest
from bridge.models import Enrollment, HabitTick, HabitTickSummary
from bridge.runtime import Runtime

# Ticked dates are grouped by day number modulo this. 42 = 2 * 3 * 7, so the
# bit set decides weekday schedules and intervals that divide 42.
RESIDUE_MODULUS = 42

HABIT_TICKS = HabitTick.__table__
SUMMARIES = HabitTickSummary.__table__

# MariaDB's TO_DAYS and SQLite's whole Julian day number count whole days,
# offset from Python's date.toordinal() by these amounts.
DAY_NUMBER_OFFSETS = {"mysql": 365, "mariadb": 365, "sqlite": 1_721_424}
# Enrollment ids per transaction of ``rebuild_all``.
REBUILD_CHUNK = 10_000


@dataclass(frozen=True)
class Totals:
    """The summary values of one set of ticked dates."""

    tick_count: int
    first_due_date: dt.date
    last_due_date: dt.date
    previous_due_date: dt.date | None
    residues: int

    @classmethod
    def of(cls, dates: Iterable[dt.date]) -> Totals | None:
        """Summarize ticked dates; None when there are none."""
        ordered = sorted(set(dates))
        if not ordered:
            return None
        residues = 0
        for day in ordered:
            residues |= 1 << day.toordinal() % RESIDUE_MODULUS
        return cls(
            tick_count=len(ordered),
            first_due_date=ordered[0],
            last_due_date=ordered[-1],
            previous_due_date=ordered[-2] if len(ordered) > 1 else None,
            residues=residues,
        )


def refresh_habit(session: Session, enrollment_id: int, habit_id: int) -> None:
    """Rewrite the summary of one enrollment's ticks of one habit.

    Call it after the ticks changed, in the same transaction, with the
    enrollment's row locked.
    """
    session.flush()
    dates = session.scalars(
        sa.select(HABIT_TICKS.c.due_date).where(
            HABIT_TICKS.c.enrollment_id == enrollment_id,
            HABIT_TICKS.c.habit_id == habit_id,
        )
    )
    totals = Totals.of(dates)
    summary = session.get(HabitTickSummary, (enrollment_id, habit_id))
    if totals is None:
        if summary is not None:
            session.delete(summary)
    elif summary is None:
        session.add(
            HabitTickSummary(
                enrollment_id=enrollment_id, habit_id=habit_id, **vars(totals)
            )
        )
    else:
        for name, value in vars(totals).items():
            setattr(summary, name, value)
    session.flush()


def rebuild(
    connection: sa.Connection, first_id: int | None = None, last_id: int | None = None
) -> int:
    """Recompute the summaries of enrollments with ids in a range, in SQL.

    Both ends are inclusive and None leaves that end open. Returns the number
    of summary rows written. The enrollments are locked first, in id order as
    the nightly evaluation does, so a tick of one of them waits for the
    rebuild's transaction to end.
    """
    dialect = connection.dialect.name

    def in_range(column: sa.ColumnElement[int]) -> list[sa.ColumnElement[bool]]:
        conditions = []
        if first_id is not None:
            conditions.append(column >= first_id)
        if last_id is not None:
            conditions.append(column <= last_id)
        return conditions

    enrollments = Enrollment.__table__
    connection.execute(
        sa.select(enrollments.c.id)
        .where(*in_range(enrollments.c.id))
        .order_by(enrollments.c.id)
        .with_for_update()
    )
    if dialect == "sqlite":
        _require_iso_dates(connection, in_range(HABIT_TICKS.c.enrollment_id))
    connection.execute(sa.delete(SUMMARIES).where(*in_range(SUMMARIES.c.enrollment_id)))

    due_date = HABIT_TICKS.c.due_date
    bit = sa.literal(1, sa.BigInteger).op("<<")(
        ordinal(due_date, dialect) % RESIDUE_MODULUS
    )
    totals = (
        sa.select(
            HABIT_TICKS.c.enrollment_id,
            HABIT_TICKS.c.habit_id,
            sa.func.count(),
            sa.func.min(due_date),
            sa.func.max(due_date),
            _bitwise_or(bit, dialect),
        )
        .where(*in_range(HABIT_TICKS.c.enrollment_id))
        .group_by(HABIT_TICKS.c.enrollment_id, HABIT_TICKS.c.habit_id)
    )
    columns = [
        "enrollment_id",
        "habit_id",
        "tick_count",
        "first_due_date",
        "last_due_date",
        "residues",
    ]
    written = connection.execute(sa.insert(SUMMARIES).from_select(columns, totals))

    earlier = HABIT_TICKS.alias("earlier")
    previous = (
        sa.select(sa.func.max(earlier.c.due_date))
        .where(
            earlier.c.enrollment_id == SUMMARIES.c.enrollment_id,
            earlier.c.habit_id == SUMMARIES.c.habit_id,
            earlier.c.due_date < SUMMARIES.c.last_due_date,
        )
        .scalar_subquery()
    )
    connection.execute(
        sa.update(SUMMARIES)
        .where(*in_range(SUMMARIES.c.enrollment_id), SUMMARIES.c.tick_count > 1)
        .values(previous_due_date=previous)
    )
    return written.rowcount


def rebuild_all(runtime: Runtime, chunk: int = REBUILD_CHUNK) -> int:
    """Recompute every summary, ``chunk`` enrollment ids per transaction.

    Returns the number of summary rows written.
    """
    with runtime.db.session() as session:
        low, high = session.execute(
            sa.select(sa.func.min(Enrollment.id), sa.func.max(Enrollment.id))
        ).one()
    if low is None:
        return 0

    written = 0
    for first in range(low, high + 1, chunk):
        last = first + chunk - 1

        def work(session: Session, first: int = first, last: int = last) -> int:
            return rebuild(session.connection(), first, last)

        description = f"rebuild of tick summaries for enrollments {first} to {last}"
        written += runtime.db.run(work, description)
    return written


def _require_iso_dates(
    connection: sa.Connection, conditions: list[sa.ColumnElement[bool]]
) -> None:
    """Raise InvalidRequest for a tick whose date SQLite stores as other text.

    SQLite keeps whatever text an INSERT by hand gave, and julianday() of
    '2024-1-5' is NULL, so such a tick would drop out of its summary unseen.
    """
    due_date = HABIT_TICKS.c.due_date
    query = (
        sa.select(
            HABIT_TICKS.c.enrollment_id,
            HABIT_TICKS.c.habit_id,
            sa.type_coerce(due_date, sa.String),
        )
        .where(
            *conditions,
            sa.or_(
                sa.func.length(due_date) != 10,
                sa.func.julianday(due_date).is_(None),
                # date() keeps '2026-11-31' as given; a round trip through
                # julianday() turns it into 2026-12-01.
                sa.func.date(sa.func.julianday(due_date)) != due_date,
            ),
        )
        .limit(1)
    )
    bad = connection.execute(query).first()
    if bad is not None:
        enrollment_id, habit_id, value = bad
        raise InvalidRequest(
            f"invalid due_date {value!r} in habit_ticks for enrollment "
            f"{enrollment_id}, habit {habit_id}: expected a date as YYYY-MM-DD. "
            "Correct or delete that row, then rebuild the summaries again"
        )


def ordinal(value: sa.ColumnElement, dialect: str) -> sa.ColumnElement[int]:
    """Return the SQL for ``date.toordinal()`` of a date column or expression."""
    offset = DAY_NUMBER_OFFSETS[dialect]
    if dialect == "sqlite":
        return sa.cast(sa.func.julianday(value), sa.Integer) - offset
    return sa.func.to_days(value) - offset


def _bitwise_or(value: sa.ColumnElement, dialect: str) -> sa.ColumnElement[int]:
    # SQLite has no BIT_OR. Each value is a single bit, so the sum of the
    # distinct values is their bitwise OR.
    if dialect == "sqlite":
        return sa.func.sum(sa.distinct(value))
    return sa.func.bit_or(value)
