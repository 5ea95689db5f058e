"""The full reconcile: every member's enrollments brought in line with WordPress.

The walk reads grants in batches of members in ascending user id order. Each batch
covers a range of user ids and is applied in one state transaction with a fixed
number of queries. The range's enrollments are read and locked with one SELECT,
new enrollments and feed entries are inserted in bulk, and each kind of status
change is one UPDATE. Enrollments of users in the range who have no transaction left (or
no WordPress user) are handled as members without access. After the last batch,
the same happens to enrollments of users above the last id read.

A batch that fails is logged with its id range and counted, and the walk goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge import activity
from bridge.enrollment import (
    count_active,
    load_programs_by_membership,
    naive_utc,
    no_open_cohort_subject,
    refresh_coach_cache,
)
from bridge.models import (
    Activity,
    ActivityType,
    Cohort,
    CohortKind,
    Enrollment,
    EnrollmentStatus,
    Program,
    utcnow,
)
from bridge.runtime import Runtime
from rules.calendar import site_day_start_utc
from rules.cohorts import CohortOption, SeatCounter
from rules.enrollment import Action, ExistingEnrollment, GrantLike, plan_enrollments
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)

# Members per batch: large enough that per-query overhead is small, small enough
# that one transaction's locks and IN lists stay short.
BATCH_SIZE = 2000
# Attempts per batch when an insert collides with a concurrent enrollment.
BATCH_ATTEMPTS = 3
# Rows per UPDATE ... CASE statement, which binds three values per row; SQLite
# allows 32,766 bound values per statement since 3.32.
UPDATE_CHUNK_SIZE = 1000
# Member ids quoted in one "no open cohort" warning; the rest are only counted.
LOGGED_IDS = 10

ENROLLMENTS = Enrollment.__table__
ACTIVITY = Activity.__table__


@dataclass
class ReconcileSummary:
    """Counts of one full reconcile, printed by ``coachbridge sync``."""

    members_read: int = 0
    enrolled: int = 0
    resumed: int = 0
    deactivated: int = 0
    waiting_for_cohort: int = 0
    errors: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as a plain dict, in declaration order."""
        return asdict(self)

    def add(self, counts: BatchCounts) -> None:
        """Add the counts of one applied batch."""
        self.enrolled += counts.enrolled
        self.resumed += counts.resumed
        self.deactivated += counts.deactivated
        self.waiting_for_cohort += counts.waiting_for_cohort


@dataclass
class BatchCounts:
    """Changes made by one batch."""

    enrolled: int = 0
    resumed: int = 0
    deactivated: int = 0
    waiting_for_cohort: int = 0
    # Enrollments left alone because they changed after the batch's grants were
    # read, so the grants may be older than the enrollment.
    deferred: int = 0


@dataclass(frozen=True)
class _Run:
    """Values that stay fixed during one walk."""

    runtime: Runtime
    now: dt.datetime  # naive UTC, from the runtime clock
    today: dt.date
    day_start: dt.datetime  # naive UTC start of the site day
    programs_by_membership: Mapping[int, set[int]]
    program_titles: Mapping[int, str]

    def title(self, program_id: int) -> str:
        return self.program_titles.get(program_id, f"program {program_id}")


@dataclass(frozen=True)
class _Span:
    """One batch: the grants of the users with ids in (after, last]."""

    after: int
    last: int | None  # None for the tail above the last id read
    grants: Mapping[int, Mapping[int, GrantLike]]
    # Enrollments updated at or after this naive UTC instant are left alone.
    read_at: dt.datetime

    def describe(self) -> str:
        upper = "" if self.last is None else str(self.last)
        return f"with user ids {self.after + 1}..{upper}"


@dataclass(frozen=True)
class _Create:
    wp_user_id: int
    program_id: int
    grant: GrantLike


@dataclass
class _Changes:
    """The writes that one batch's plans call for, collected before any is made."""

    creates: list[_Create] = field(default_factory=list)
    resumes: list[Any] = field(default_factory=list)
    deactivations: list[tuple[Any, str]] = field(default_factory=list)
    grants: dict[int, GrantLike] = field(default_factory=dict)
    deferred: int = 0


def reconcile_all(
    runtime: Runtime,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ReconcileSummary:
    """Reconcile every member with WordPress; call ``progress(n)`` after each batch.

    A batch that fails with a database error, and an unreachable WordPress
    database, are logged and counted in ``errors`` instead of raised. Other
    errors, such as a missing WordPress configuration, propagate.
    """
    started = time.monotonic()
    summary = ReconcileSummary()
    try:
        refresh_coach_cache(runtime)
        run = _start_run(runtime)
    except WordPressUnavailable as error:
        log.error("full reconcile not started: %s", error)
        summary.errors += 1
        return _finish(summary, started)

    last_read = _walk(run, summary, progress, batch_size)
    if last_read is not None:
        tail = _Span(last_read, None, {}, _read_cutoff())
        _apply_span(run, tail, summary)
    return _finish(summary, started)


def _start_run(runtime: Runtime) -> _Run:
    now = runtime.now()
    today = runtime.today()
    day_start = site_day_start_utc(today, runtime.site_zone())
    with runtime.db.session() as session:
        programs_by_membership = load_programs_by_membership(session)
        titles = dict(session.execute(sa.select(Program.id, Program.title)).all())
    return _Run(
        runtime=runtime,
        now=naive_utc(now),
        today=today,
        day_start=naive_utc(day_start),
        programs_by_membership=programs_by_membership,
        program_titles=titles,
    )


def _walk(
    run: _Run,
    summary: ReconcileSummary,
    progress: Callable[[int], None] | None,
    batch_size: int,
) -> int | None:
    """Apply every batch; return the last user id read, or None if the walk broke."""
    batches = run.runtime.wordpress.iter_access(run.now, batch_size)
    last_read = 0
    for read_at, grants in _timed(batches):
        if grants is None:
            summary.errors += 1
            return None
        span = _Span(last_read, max(grants), grants, read_at)
        summary.members_read += len(grants)
        _apply_span(run, span, summary)
        last_read = max(grants)
        if progress is not None:
            progress(len(grants))
    return last_read


def _timed(
    batches: Iterator[dict[int, dict[int, Any]]],
) -> Iterator[tuple[dt.datetime, dict[int, dict[int, Any]] | None]]:
    """Yield each batch with the instant before it was read; None after a failure."""
    while True:
        read_at = _read_cutoff()
        try:
            grants = next(batches, None)
        except WordPressUnavailable as error:
            log.error("full reconcile stopped, WordPress is unreachable: %s", error)
            yield read_at, None
            return
        if not grants:
            return
        yield read_at, grants


def _read_cutoff() -> dt.datetime:
    # MariaDB stores DATETIME without fractions, so a row changed later in the
    # same second may carry an earlier stamp: compare with the whole second.
    return utcnow().replace(microsecond=0)


def _apply_span(run: _Run, span: _Span, summary: ReconcileSummary) -> None:
    what = f"reconcile of members {span.describe()}"
    work = partial(_reconcile_span, run, span)
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            counts = run.runtime.db.run(work, what)
        except sa.exc.IntegrityError as error:
            if attempt < BATCH_ATTEMPTS:
                log.info("retrying %s after a concurrent enrollment: %s", what, error)
                continue
            log.error("failed %s after %d attempts: %s", what, attempt, error)
            summary.errors += 1
            return
        except sa.exc.SQLAlchemyError:
            log.exception("failed %s; the walk goes on", what)
            summary.errors += 1
            return
        summary.add(counts)
        _log_deferred(counts, span)
        return


def _log_deferred(counts: BatchCounts, span: _Span) -> None:
    if counts.deferred:
        log.info(
            "left %d enrollments of members %s for the next reconcile: they "
            "changed after the batch was read",
            counts.deferred,
            span.describe(),
        )


def _reconcile_span(run: _Run, span: _Span, session: Session) -> BatchCounts:
    rows_by_user = _lock_span_enrollments(session, span)
    changes = _Changes()
    for wp_user_id in sorted(span.grants.keys() | rows_by_user.keys()):
        _plan_member(run, span, changes, wp_user_id, rows_by_user.get(wp_user_id, []))

    counts = BatchCounts(deferred=changes.deferred)
    _create_enrollments(session, run, span, changes.creates, counts)
    _resume(session, run, changes.resumes, counts)
    _deactivate(session, run, changes.deactivations, counts)
    _record_grants(session, changes.grants)
    return counts


def _lock_span_enrollments(session: Session, span: _Span) -> dict[int, list[Any]]:
    query = sa.select(ENROLLMENTS).where(ENROLLMENTS.c.wp_user_id > span.after)
    if span.last is not None:
        query = query.where(ENROLLMENTS.c.wp_user_id <= span.last)
    rows_by_user: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(query.with_for_update()):
        rows_by_user[row.wp_user_id].append(row)
    return rows_by_user


def _plan_member(
    run: _Run,
    span: _Span,
    changes: _Changes,
    wp_user_id: int,
    rows: Sequence[Any],
) -> None:
    grants = span.grants.get(wp_user_id, {})
    rows_by_program = {row.program_id: row for row in rows}
    existing = {pid: _as_existing(row) for pid, row in rows_by_program.items()}
    plan = plan_enrollments(grants.values(), run.programs_by_membership, existing)
    reason = "access_lost" if wp_user_id in span.grants else "no_transactions"

    for change in plan.changes:
        row = rows_by_program.get(change.program_id)
        if row is not None and row.updated_at >= span.read_at:
            if change.action is not Action.KEEP or change.grant is not None:
                changes.deferred += 1
            continue
        if change.action is Action.CREATE:
            assert change.grant is not None
            changes.creates.append(_Create(wp_user_id, change.program_id, change.grant))
        elif change.action is Action.RESUME:
            changes.resumes.append(row)
        elif change.action is Action.DEACTIVATE:
            changes.deactivations.append((row, reason))
        if row is not None and change.grant is not None:
            changes.grants[row.id] = change.grant


def _as_existing(row: Any) -> ExistingEnrollment:
    return ExistingEnrollment(
        program_id=row.program_id,
        active=row.status == EnrollmentStatus.ACTIVE,
        enrolled_by_hand=row.enrolled_by_hand,
        unenrolled_by_hand=row.unenrolled_by_hand,
        membership_id=row.membership_id,
        transaction_id=row.transaction_id,
    )


def _create_enrollments(
    session: Session,
    run: _Run,
    span: _Span,
    creates: Sequence[_Create],
    counts: BatchCounts,
) -> None:
    if not creates:
        return

    cohorts = _lock_open_cohorts(session, {create.program_id for create in creates})
    creates = _not_enrolled_since(session, creates)
    seats = _seat_counter(session, cohorts)
    placed: list[tuple[_Create, Any]] = []
    waiting: list[_Create] = []
    for create in creates:
        cohort_id = seats.take_seat(create.program_id, run.runtime.rng)
        if cohort_id is None:
            waiting.append(create)
        else:
            placed.append((create, cohorts[cohort_id]))

    _insert_enrollments(session, run, span, placed)
    _note_waiting(session, run, span, waiting)
    counts.enrolled += len(placed)
    counts.waiting_for_cohort += len(waiting)


def _not_enrolled_since(session: Session, creates: Sequence[_Create]) -> list[_Create]:
    """Drop the members that another transaction enrolled since the span was read.

    Every automatic enrollment locks its program's open cohorts first, as this
    batch has just done, so a member enrolled by a webhook while the batch was
    planning is visible now and no longer collides at the insert.
    """
    query = sa.select(ENROLLMENTS.c.wp_user_id, ENROLLMENTS.c.program_id).where(
        ENROLLMENTS.c.wp_user_id.in_({create.wp_user_id for create in creates})
    )
    enrolled = {tuple(row) for row in session.execute(query)}
    return [
        create
        for create in creates
        if (create.wp_user_id, create.program_id) not in enrolled
    ]


def _lock_open_cohorts(session: Session, program_ids: Iterable[int]) -> dict[int, Any]:
    # Locked in id order, like enrollment.lock_and_choose_cohort, so that a batch
    # and a single-member reconcile take cohort locks in the same order.
    cohorts = Cohort.__table__
    query = (
        sa.select(cohorts)
        .where(cohorts.c.program_id.in_(sorted(program_ids)))
        .where(cohorts.c.is_open.is_(True))
        .order_by(cohorts.c.id)
        .with_for_update()
    )
    return {row.id: row for row in session.execute(query)}


def _seat_counter(session: Session, cohorts: Mapping[int, Any]) -> SeatCounter:
    limited = [row.id for row in cohorts.values() if row.capacity is not None]
    active = count_active(session, limited)
    options: dict[int, list[CohortOption]] = defaultdict(list)
    for row in cohorts.values():
        options[row.program_id].append(
            CohortOption(
                cohort_id=row.id,
                is_open=row.is_open,
                capacity=row.capacity,
                active_enrollments=active.get(row.id, 0),
            )
        )
    return SeatCounter(options)


def _insert_enrollments(
    session: Session,
    run: _Run,
    span: _Span,
    placed: Sequence[tuple[_Create, Any]],
) -> None:
    if not placed:
        return

    rows = [_enrollment_row(run, create, cohort) for create, cohort in placed]
    session.execute(sa.insert(ENROLLMENTS), rows)

    ids = _enrollment_ids(session, {row["wp_user_id"] for row in rows})
    entries = [
        _started_entry(run, row, cohort, ids[row["wp_user_id"], row["program_id"]])
        for row, (_, cohort) in zip(rows, placed, strict=True)
    ]
    activity.record_many(session, entries)


def _enrollment_row(run: _Run, create: _Create, cohort: Any) -> dict[str, Any]:
    fixed = cohort.kind == CohortKind.FIXED and cohort.start_date is not None
    return {
        "wp_user_id": create.wp_user_id,
        "program_id": create.program_id,
        "cohort_id": cohort.id,
        "status": EnrollmentStatus.ACTIVE,
        "start_date": cohort.start_date if fixed else run.today,
        "membership_id": create.grant.membership_id,
        "transaction_id": create.grant.transaction_id,
        "enrolled_by_hand": False,
        "unenrolled_by_hand": False,
    }


def _enrollment_ids(
    session: Session, wp_user_ids: Iterable[int]
) -> dict[tuple[int, int], int]:
    query = sa.select(
        ENROLLMENTS.c.id, ENROLLMENTS.c.wp_user_id, ENROLLMENTS.c.program_id
    ).where(ENROLLMENTS.c.wp_user_id.in_(sorted(wp_user_ids)))
    return {(row.wp_user_id, row.program_id): row.id for row in session.execute(query)}


def _started_entry(
    run: _Run, row: Mapping[str, Any], cohort: Any, enrollment_id: int
) -> dict[str, Any]:
    title = run.title(row["program_id"])
    return activity.activity_row(
        ActivityType.PROGRAM_STARTED,
        wp_user_id=row["wp_user_id"],
        program_id=row["program_id"],
        cohort_id=cohort.id,
        coach_id=cohort.coach_id,
        enrollment_id=enrollment_id,
        summary=f"Started {title} in cohort {cohort.name}",
        details={"start_date": row["start_date"].isoformat()},
        occurred_at=run.now,
    )


def _note_waiting(
    session: Session, run: _Run, span: _Span, waiting: Sequence[_Create]
) -> None:
    if not waiting:
        return

    _warn_waiting(waiting, span)
    noted = _waiting_noted_today(session, run, span)
    entries = [
        activity.activity_row(
            ActivityType.NO_OPEN_COHORT,
            **no_open_cohort_subject(create.wp_user_id, create.program_id),
            summary=f"No open cohort with room in {run.title(create.program_id)}",
            occurred_at=run.now,
        )
        for create in waiting
        if (create.wp_user_id, create.program_id) not in noted
    ]
    activity.record_many(session, entries)


def _warn_waiting(waiting: Sequence[_Create], span: _Span) -> None:
    by_program: dict[int, list[int]] = defaultdict(list)
    for create in waiting:
        by_program[create.program_id].append(create.wp_user_id)
    for program_id, members in sorted(by_program.items()):
        log.warning(
            "no open cohort with room in program %s for %d members %s (first ids: "
            "%s); the next reconcile tries again",
            program_id,
            len(members),
            span.describe(),
            ", ".join(str(member) for member in members[:LOGGED_IDS]),
        )


def _waiting_noted_today(
    session: Session, run: _Run, span: _Span
) -> set[tuple[int, int]]:
    query = sa.select(ACTIVITY.c.wp_user_id, ACTIVITY.c.program_id).where(
        ACTIVITY.c.type == ActivityType.NO_OPEN_COHORT.value,
        ACTIVITY.c.occurred_at >= run.day_start,
        ACTIVITY.c.wp_user_id > span.after,
    )
    if span.last is not None:
        query = query.where(ACTIVITY.c.wp_user_id <= span.last)
    return {(row.wp_user_id, row.program_id) for row in session.execute(query)}


def _resume(
    session: Session, run: _Run, rows: Sequence[Any], counts: BatchCounts
) -> None:
    if not rows:
        return

    ids = [row.id for row in rows]
    session.execute(
        sa.update(ENROLLMENTS)
        .where(ENROLLMENTS.c.id.in_(ids))
        .values(status=EnrollmentStatus.ACTIVE, deactivated_at=None)
    )
    coaches = _coaches_of(session, {row.cohort_id for row in rows})
    entries = [
        _entry(
            run,
            ActivityType.RESUMED,
            row,
            coaches,
            f"Resumed {run.title(row.program_id)}",
        )
        for row in rows
    ]
    activity.record_many(session, entries)
    counts.resumed += len(rows)


def _deactivate(
    session: Session,
    run: _Run,
    deactivations: Sequence[tuple[Any, str]],
    counts: BatchCounts,
) -> None:
    if not deactivations:
        return

    ids = [row.id for row, _ in deactivations]
    session.execute(
        sa.update(ENROLLMENTS)
        .where(ENROLLMENTS.c.id.in_(ids))
        .values(status=EnrollmentStatus.INACTIVE, deactivated_at=run.now)
    )
    coaches = _coaches_of(session, {row.cohort_id for row, _ in deactivations})
    entries = [
        _entry(
            run,
            ActivityType.UNENROLLED,
            row,
            coaches,
            f"Access to {run.title(row.program_id)} ended",
            {"reason": reason},
        )
        for row, reason in deactivations
    ]
    activity.record_many(session, entries)
    counts.deactivated += len(deactivations)


def _coaches_of(session: Session, cohort_ids: Iterable[int]) -> dict[int, int]:
    cohorts = Cohort.__table__
    query = sa.select(cohorts.c.id, cohorts.c.coach_id).where(
        cohorts.c.id.in_(sorted(cohort_ids))
    )
    return dict(session.execute(query).all())


def _entry(
    run: _Run,
    type: ActivityType,
    row: Any,
    coaches: Mapping[int, int],
    summary: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return activity.activity_row(
        type,
        wp_user_id=row.wp_user_id,
        program_id=row.program_id,
        cohort_id=row.cohort_id,
        coach_id=coaches.get(row.cohort_id),
        enrollment_id=row.id,
        summary=summary,
        details=details,
        occurred_at=run.now,
    )


def _record_grants(session: Session, grants: Mapping[int, GrantLike]) -> None:
    """Store the granting membership and transaction, one UPDATE per chunk."""
    ids = sorted(grants)
    for start in range(0, len(ids), UPDATE_CHUNK_SIZE):
        chunk = ids[start : start + UPDATE_CHUNK_SIZE]
        memberships = {key: grants[key].membership_id for key in chunk}
        transactions = {key: grants[key].transaction_id for key in chunk}
        session.execute(
            sa.update(ENROLLMENTS)
            .where(ENROLLMENTS.c.id.in_(chunk))
            .values(
                membership_id=sa.case(memberships, value=ENROLLMENTS.c.id),
                transaction_id=sa.case(transactions, value=ENROLLMENTS.c.id),
            )
        )


def _finish(summary: ReconcileSummary, started: float) -> ReconcileSummary:
    summary.seconds = round(time.monotonic() - started, 3)
    log.info(
        "full reconcile: %d members read, %d enrolled, %d resumed, %d deactivated, "
        "%d waiting for a cohort, %d errors in %.1f s",
        summary.members_read,
        summary.enrolled,
        summary.resumed,
        summary.deactivated,
        summary.waiting_for_cohort,
        summary.errors,
        summary.seconds,
    )
    return summary
