"""Cohorts in the console: list, add and update."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session, selectinload

from bridge.auth import Actor
from bridge.console.bodies import CohortChanges, CohortInput, describe_validation
from bridge.console.common import (
    CohortInfo,
    _write,
    cohort_info,
    require_change,
    require_console,
)
from bridge.console.programs import _load_program
from bridge.enrollment import count_active
from bridge.errors import Conflict, NotFound
from bridge.models import Coach, Cohort, Program
from bridge.programs_file import CohortEntry
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


# Cohorts


def add_cohort(
    runtime: Runtime, actor: Actor, program_id: int, body: CohortInput
) -> int:
    """Add a cohort to a program, even a locked one; return its id.

    Raises NotFound for an unknown program and Conflict when the name is taken
    or the coach is not registered.
    """
    require_change(actor, "add cohorts")
    entry = body.entry()

    def work(session: Session) -> int:
        program = _load_program(session, program_id)
        _require_free_cohort_name(session, program.id, entry.name, None)
        coach = _registered_coach(session, entry.coach)
        cohort = Cohort(
            program_id=program.id, name=entry.name, **entry.values(coach.id)
        )
        session.add(cohort)
        session.flush()
        return cohort.id

    cohort_id = _write(runtime, work, f"add a cohort to program {program_id}")
    log.info(
        "user %s added cohort %s to program %s",
        actor.wp_user_id,
        cohort_id,
        program_id,
    )
    return cohort_id


def update_cohort(
    runtime: Runtime, actor: Actor, cohort_id: int, changes: CohortChanges
) -> None:
    """Change a cohort's fields; the result is checked as a programs file's cohort."""
    require_change(actor, "change cohorts")

    def work(session: Session) -> None:
        cohort = session.get(Cohort, cohort_id)
        if cohort is None:
            raise NotFound(f"cohort {cohort_id} not found")
        entry = _changed_cohort_entry(cohort, changes)
        _require_free_cohort_name(session, cohort.program_id, entry.name, cohort.id)
        coach = _registered_coach(session, entry.coach)
        cohort.name = entry.name
        for name, value in entry.values(coach.id).items():
            setattr(cohort, name, value)

    _write(runtime, work, f"update cohort {cohort_id}")
    log.info("user %s changed cohort %s", actor.wp_user_id, cohort_id)


def _changed_cohort_entry(cohort: Cohort, changes: CohortChanges) -> CohortEntry:
    values: dict[str, Any] = {
        "name": cohort.name,
        "type": str(cohort.kind),
        "start_date": cohort.start_date,
        "coach": cohort.coach.wp_user_id,
        "capacity": cohort.capacity,
        "open": cohort.is_open,
        "appointments": cohort.appointments_enabled,
        "booking_url": cohort.booking_url,
    }
    given = changes.model_dump(exclude_unset=True)
    # A cohort that becomes rolling drops its start date unless one is given,
    # which CohortEntry then rejects with its own message. The combined fields
    # depend on the stored cohort, so a broken combination is a Conflict.
    if given.get("type") == "rolling" and "start_date" not in given:
        values["start_date"] = None
    values.update(given)
    try:
        return CohortEntry.model_validate(values)
    except ValidationError as error:
        raise Conflict(
            "the changes would make the cohort invalid: "
            + describe_validation(error).removeprefix("invalid request: ")
        ) from None


def _require_free_cohort_name(
    session: Session, program_id: int, name: str, cohort_id: int | None
) -> None:
    select = sa.select(Cohort.id).where(
        Cohort.program_id == program_id, Cohort.name == name
    )
    taken = session.scalar(select)
    if taken is not None and taken != cohort_id:
        raise Conflict(
            f"the program already has a cohort named {name!r} (cohort {taken}); "
            "choose another name"
        )


def _registered_coach(session: Session, wp_user_id: int) -> Coach:
    coach = session.scalar(sa.select(Coach).where(Coach.wp_user_id == wp_user_id))
    if coach is None:
        raise Conflict(
            f"WordPress user {wp_user_id} is not a registered coach; register them "
            "under Coaches first"
        )
    return coach


def list_cohorts(runtime: Runtime, actor: Actor) -> list[CohortInfo]:
    """Return every cohort the actor may see, by program title and cohort name."""
    require_console(actor)
    select = (
        sa.select(Cohort)
        .join(Program, Cohort.program_id == Program.id)
        .options(selectinload(Cohort.coach), selectinload(Cohort.program))
        .order_by(Program.title, Cohort.name, Cohort.id)
    )
    if not actor.is_admin:
        select = select.where(Cohort.coach_id == actor.coach_id)
    with runtime.db.session() as session:
        cohorts = session.scalars(select).all()
        active = count_active(session, [cohort.id for cohort in cohorts])
        return [cohort_info(cohort, active) for cohort in cohorts]
