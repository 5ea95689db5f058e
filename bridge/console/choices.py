"""Program and coach choices for the console's filters and pickers."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from bridge.auth import Actor
from bridge.console.common import require_console
from bridge.models import Coach, Cohort, Program
from bridge.runtime import Runtime

# Choices for filters and pickers


@dataclass(frozen=True)
class Choice:
    """An id and a label for a select box."""

    id: int
    label: str


def program_choices(runtime: Runtime, actor: Actor) -> list[Choice]:
    """Return the programs the actor may see as choices, by title."""
    require_console(actor)
    select = sa.select(Program.id, Program.title).order_by(Program.title, Program.id)
    if not actor.is_admin:
        led = sa.select(Cohort.program_id).where(Cohort.coach_id == actor.coach_id)
        select = select.where(Program.id.in_(led))
    with runtime.db.session() as session:
        return [Choice(row.id, row.title) for row in session.execute(select)]


def coach_choices(runtime: Runtime, actor: Actor) -> list[Choice]:
    """Return the coaches the actor may see as choices, by name."""
    require_console(actor)
    select = sa.select(Coach.id, Coach.display_name, Coach.wp_user_id).order_by(
        Coach.display_name, Coach.id
    )
    if not actor.is_admin:
        select = select.where(Coach.id == actor.coach_id)
    with runtime.db.session() as session:
        return [
            Choice(row.id, row.display_name or f"WordPress user {row.wp_user_id}")
            for row in session.execute(select)
        ]
