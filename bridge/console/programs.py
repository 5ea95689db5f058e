"""Programs in the console: list, detail, memberships and changes."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from bridge.auth import Actor
from bridge.console.bodies import DuplicateInput, ProgramChanges, ProgramInput
from bridge.console.common import (
    CohortInfo,
    _write,
    cohort_info,
    console_enrollments,
    require_change,
    require_console,
)
from bridge.enrollment import count_active, load_programs_by_membership
from bridge.errors import Conflict, NotFound, Unavailable
from bridge.models import (
    Cohort,
    Enrollment,
    EnrollmentStatus,
    Habit,
    Milestone,
    Program,
    ProgramMembership,
)
from bridge.programs_file import (
    WEEKDAY_NAMES,
    _habit_keys,
    _habits,
    _milestone_keys,
    _milestones,
)
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)


# Programs: results


@dataclass(frozen=True)
class MembershipRef:
    """A MemberPress membership a program is offered to."""

    id: int
    title: str


@dataclass(frozen=True)
class ProgramSummary:
    """A program in the programs list, with counts."""

    id: int
    slug: str
    title: str
    milestones: int
    habits: int
    cohorts: int
    memberships: list[int]
    enrollments: int
    active_clients: int


@dataclass(frozen=True)
class ProgramDetail:
    """A program with its content, memberships and cohorts."""

    id: int
    slug: str
    title: str
    description: str
    messaging_enabled: bool
    memberships: list[MembershipRef]
    milestones: list[dict[str, Any]]
    habits: list[dict[str, Any]]
    cohorts: list[CohortInfo]
    enrollments: int
    active_clients: int
    # The reason milestones and habits cannot change, or None when they can.
    lock_reason: str | None

    @property
    def locked(self) -> bool:
        return self.lock_reason is not None


def list_programs(runtime: Runtime, actor: Actor) -> list[ProgramSummary]:
    """Return the programs the actor may see, by title, with counts."""
    require_console(actor)
    select = (
        sa.select(Program)
        .options(
            selectinload(Program.milestones),
            selectinload(Program.habits),
            selectinload(Program.cohorts),
            selectinload(Program.memberships),
        )
        .order_by(Program.title, Program.id)
    )
    if not actor.is_admin:
        led = sa.select(Cohort.program_id).where(Cohort.coach_id == actor.coach_id)
        select = select.where(Program.id.in_(led))

    with runtime.db.session() as session:
        programs = session.scalars(select).all()
        counts = _enrollment_counts(session, actor)
        return [_program_summary(program, actor, counts) for program in programs]


def _enrollment_counts(session: Session, actor: Actor) -> dict[int, dict[str, int]]:
    select = (
        sa.select(Enrollment.program_id, Enrollment.status, sa.func.count())
        .where(console_enrollments(actor))
        .group_by(Enrollment.program_id, Enrollment.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for program_id, status, count in session.execute(select):
        counts.setdefault(program_id, {})[EnrollmentStatus(status).value] = count
    return counts


def _program_summary(
    program: Program, actor: Actor, counts: dict[int, dict[str, int]]
) -> ProgramSummary:
    by_status = counts.get(program.id, {})
    cohorts = [c for c in program.cohorts if actor.is_admin or _leads(actor, c)]
    return ProgramSummary(
        id=program.id,
        slug=program.slug,
        title=program.title,
        milestones=len(program.milestones),
        habits=len(program.habits),
        cohorts=len(cohorts),
        memberships=sorted(row.membership_id for row in program.memberships),
        enrollments=sum(by_status.values()),
        active_clients=by_status.get("active", 0),
    )


def _leads(actor: Actor, cohort: Cohort) -> bool:
    return actor.coach_id is not None and cohort.coach_id == actor.coach_id


def program_detail(runtime: Runtime, actor: Actor, program_id: int) -> ProgramDetail:
    """Return a program the actor may see, or raise NotFound.

    A coach sees the programs in which they lead a cohort, with those cohorts
    only.
    """
    require_console(actor)
    titles = membership_titles(runtime)
    with runtime.db.session() as session:
        program = _load_program(session, program_id)
        cohorts = [c for c in program.cohorts if actor.is_admin or _leads(actor, c)]
        if not cohorts and not actor.is_admin:
            raise NotFound(f"program {program_id} not found")
        enrollments = _count_enrollments(session, program.id)
        active = count_active(session, [c.id for c in program.cohorts])
        return ProgramDetail(
            id=program.id,
            slug=program.slug,
            title=program.title,
            description=program.description,
            messaging_enabled=program.messaging_enabled,
            memberships=[
                MembershipRef(row.membership_id, titles.get(row.membership_id, ""))
                for row in sorted(program.memberships, key=lambda r: r.membership_id)
            ],
            milestones=[milestone_json(row) for row in program.milestones],
            habits=[habit_json(row) for row in program.habits],
            cohorts=[cohort_info(c, active) for c in cohorts],
            enrollments=enrollments,
            active_clients=sum(active.get(c.id, 0) for c in cohorts),
            lock_reason=lock_reason(program, enrollments),
        )


def lock_reason(program: Program, enrollments: int) -> str | None:
    """Explain why a program's milestones and habits are locked, or return None."""
    if enrollments == 0:
        return None
    clients = "1 enrollment" if enrollments == 1 else f"{enrollments} enrollments"
    return (
        f"The milestones and habits of program {program.slug!r} are locked because "
        f"it has {clients} (active or not), whose ticks and progress refer to them. "
        "Duplicate the program and change the copy instead; its title, "
        "description, memberships and cohorts can still change."
    )


def milestone_json(row: Milestone) -> dict[str, Any]:
    """Describe a milestone with the fields of a programs file."""
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "due_amount": row.due_amount,
        "due_unit": str(row.due_unit),
    }


def habit_json(row: Habit) -> dict[str, Any]:
    """Describe a habit with the fields of a programs file."""
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "schedule": str(row.schedule),
        "weekdays": [
            name for day, name in enumerate(WEEKDAY_NAMES) if row.weekdays & (1 << day)
        ],
        "every_days": row.interval_days,
        "start_offset_days": row.start_offset_days,
        "length_amount": row.length_amount,
        "length_unit": str(row.length_unit),
    }


def membership_titles(runtime: Runtime) -> dict[int, str]:
    """Map MemberPress membership ids onto their titles, trashed ones included."""
    if runtime.wordpress_reader is None:
        return {}
    try:
        memberships = runtime.wordpress_reader.memberships(include_trash=True)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot read MemberPress memberships: {error}") from error
    return {membership.id: membership.title for membership in memberships}


@dataclass(frozen=True)
class MembershipChoice:
    """A MemberPress membership for the program form's picker."""

    id: int
    title: str
    status: str
    program_ids: list[int]


def list_memberships(runtime: Runtime, actor: Actor) -> list[MembershipChoice]:
    """Return MemberPress memberships with the programs each one is offered to."""
    require_change(actor, "list memberships")
    try:
        memberships = runtime.wordpress.memberships()
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot read MemberPress memberships: {error}") from error
    with runtime.db.session() as session:
        programs = load_programs_by_membership(session)
    return [
        MembershipChoice(m.id, m.title, m.status, sorted(programs.get(m.id, ())))
        for m in memberships
    ]


def _load_program(session: Session, program_id: int) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound(f"program {program_id} not found")
    return program


def _count_enrollments(session: Session, program_id: int) -> int:
    select = sa.select(sa.func.count()).where(Enrollment.program_id == program_id)
    return session.scalar(select) or 0


# Programs: changes


def create_program(runtime: Runtime, actor: Actor, body: ProgramInput) -> int:
    """Create a program with its content and memberships; return its id.

    Raises Conflict when the slug is taken or MemberPress does not have one of
    the memberships.
    """
    require_change(actor, "create programs")
    _check_memberships(runtime, body.memberships)

    def work(session: Session) -> int:
        _require_free_slug(session, body.slug)
        program = Program(
            slug=body.slug,
            title=body.title,
            description=body.description,
            messaging_enabled=body.messaging_enabled,
        )
        program.memberships = [
            ProgramMembership(membership_id=m) for m in body.memberships
        ]
        program.milestones = _milestones([item.entry() for item in body.milestones])
        program.habits = _habits([item.entry() for item in body.habits])
        session.add(program)
        session.flush()
        return program.id

    program_id = _write(runtime, work, f"create program {body.slug}")
    log.info("user %s created program %s (%s)", actor.wp_user_id, program_id, body.slug)
    return program_id


def update_program(
    runtime: Runtime, actor: Actor, program_id: int, changes: ProgramChanges
) -> None:
    """Change a program's settings, memberships or content.

    Raises Conflict with the reason when the milestones or habits would change
    while the program has enrollments.
    """
    require_change(actor, "change programs")
    if changes.memberships is not None:
        _check_memberships(runtime, changes.memberships)

    def work(session: Session) -> None:
        program = _load_program(session, program_id)
        _change_content(session, program, changes)
        for name in ("title", "description", "messaging_enabled"):
            value = getattr(changes, name)
            if value is not None:
                setattr(program, name, value)
        if changes.memberships is not None:
            _replace_memberships(program, changes.memberships)

    _write(runtime, work, f"update program {program_id}")
    log.info("user %s changed program %s", actor.wp_user_id, program_id)


def _change_content(
    session: Session, program: Program, changes: ProgramChanges
) -> None:
    milestones = None
    if changes.milestones is not None:
        milestones = [item.entry() for item in changes.milestones]
        if _milestone_keys(program.milestones) == [m.key() for m in milestones]:
            milestones = None
    habits = None
    if changes.habits is not None:
        habits = [item.entry() for item in changes.habits]
        if _habit_keys(program.habits) == [h.key() for h in habits]:
            habits = None
    if milestones is None and habits is None:
        return

    reason = lock_reason(program, _count_enrollments(session, program.id))
    if reason is not None:
        raise Conflict(reason)
    if milestones is not None:
        program.milestones = _milestones(milestones)
    if habits is not None:
        program.habits = _habits(habits)


def _replace_memberships(program: Program, wanted: Collection[int]) -> None:
    current = {row.membership_id for row in program.memberships}
    kept = [row for row in program.memberships if row.membership_id in wanted]
    added = [ProgramMembership(membership_id=m) for m in sorted(set(wanted) - current)]
    program.memberships = kept + added


def delete_program(runtime: Runtime, actor: Actor, program_id: int) -> None:
    """Delete a program without enrollments, with its content and cohorts.

    Raises Conflict when the program has an enrollment, active or not, because
    the client's history refers to it.
    """
    require_change(actor, "delete programs")

    def work(session: Session) -> str:
        program = _load_program(session, program_id)
        enrollments = _count_enrollments(session, program.id)
        if enrollments:
            raise Conflict(
                f"program {program.slug!r} cannot be deleted because it has "
                f"{enrollments} enrollments (active or not), whose history refers "
                "to it. Remove its memberships and close its cohorts instead, so "
                "that nobody new joins."
            )
        for cohort in list(program.cohorts):
            session.delete(cohort)
        session.flush()
        session.delete(program)
        return program.slug

    slug = _write(runtime, work, f"delete program {program_id}")
    log.info("user %s deleted program %s (%s)", actor.wp_user_id, program_id, slug)


def duplicate_program(
    runtime: Runtime, actor: Actor, program_id: int, body: DuplicateInput
) -> int:
    """Copy a program's settings, milestones and habits under a new slug.

    Memberships are not copied: a membership offered to both programs would
    enroll its members in the copy at the next reconcile. Cohorts are not
    copied either. Returns the new program's id.
    """
    require_change(actor, "duplicate programs")

    def work(session: Session) -> int:
        source = _load_program(session, program_id)
        _require_free_slug(session, body.slug)
        copy = Program(
            slug=body.slug,
            title=body.title or f"{source.title} (copy)"[:200],
            description=source.description,
            messaging_enabled=source.messaging_enabled,
        )
        copy.milestones = [_copy_row(Milestone, row) for row in source.milestones]
        copy.habits = [_copy_row(Habit, row) for row in source.habits]
        session.add(copy)
        session.flush()
        return copy.id

    copy_id = _write(runtime, work, f"duplicate program {program_id}")
    log.info(
        "user %s copied program %s to %s (%s)",
        actor.wp_user_id,
        program_id,
        copy_id,
        body.slug,
    )
    return copy_id


def _copy_row(model: type[Milestone] | type[Habit], row: Milestone | Habit) -> Any:
    skipped = {"id", "program_id"}
    values = {
        column.key: getattr(row, column.key)
        for column in model.__table__.columns
        if column.key not in skipped
    }
    return model(**values)


def _require_free_slug(session: Session, slug: str) -> None:
    taken = session.scalar(sa.select(Program.id).where(Program.slug == slug))
    if taken is not None:
        raise Conflict(
            f"a program with slug {slug!r} already exists (program {taken}); "
            "choose another slug"
        )


def _check_memberships(runtime: Runtime, membership_ids: Collection[int]) -> None:
    if not membership_ids or runtime.wordpress_reader is None:
        return
    known = membership_titles(runtime)
    unknown = sorted(set(membership_ids) - set(known))
    if unknown:
        listed = ", ".join(str(m) for m in unknown)
        raise Conflict(
            f"MemberPress has no membership {listed}; reload the membership list"
        )
