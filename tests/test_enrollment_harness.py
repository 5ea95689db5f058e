"""A WordPress site and a state database side by side, for enrollment tests.

Test modules build a ``Harness`` with ``build_harness`` from their own fixture,
on SQLite or on MariaDB. This module contains no tests.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from bridge.models import (
    Activity,
    ActivityType,
    Coach,
    Cohort,
    CohortKind,
    Enrollment,
    Program,
    ProgramMembership,
)
from bridge.runtime import Runtime
from tests.wpsite import WordPressSite

BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]

# 12:00 UTC, so the site date is the same in every zone the tests use.
START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2000, 1, 1)


class Clock:
    """A settable clock for the runtime: returns ``now`` until advanced."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class CohortSpec:
    name: str
    kind: CohortKind = CohortKind.ROLLING
    start_date: dt.date | None = None
    capacity: int | None = None
    is_open: bool = True


@dataclass
class ProgramRefs:
    id: int
    cohort_ids: list[int] = field(default_factory=list)


@dataclass
class Harness:
    backend: str
    site: WordPressSite
    runtime: Runtime
    clock: Clock
    coach_wp_user_id: int

    @property
    def now(self) -> dt.datetime:
        return self.clock.now.replace(tzinfo=None)

    def member(self, login: str, display_name: str | None = None) -> int:
        return self.site.add_user(login, f"{login}@example.org", display_name)

    def add_program(
        self,
        slug: str,
        memberships: Sequence[int],
        cohorts: Sequence[CohortSpec] = (CohortSpec("Everyone"),),
        title: str | None = None,
    ) -> ProgramRefs:
        with self.runtime.db.session() as session:
            coach = self._coach(session)
            program = Program(slug=slug, title=title or slug.title())
            program.memberships = [
                ProgramMembership(membership_id=membership_id)
                for membership_id in memberships
            ]
            session.add(program)
            session.flush()
            refs = ProgramRefs(program.id)
            for spec in cohorts:
                refs.cohort_ids.append(self._add_cohort(session, program, coach, spec))
        return refs

    def add_cohort(self, program_id: int, spec: CohortSpec) -> int:
        with self.runtime.db.session() as session:
            program = session.get_one(Program, program_id)
            return self._add_cohort(session, program, self._coach(session), spec)

    def set_cohort(self, cohort_id: int, **values: object) -> None:
        with self.runtime.db.session() as session:
            session.execute(
                sa.update(Cohort).where(Cohort.id == cohort_id).values(**values)
            )

    def age_enrollments(self) -> None:
        """Set every enrollment's updated_at to a day long past.

        The full reconcile leaves alone enrollments changed since its batch was
        read, which includes the whole current second.
        """
        with self.runtime.db.session() as session:
            session.execute(sa.update(Enrollment).values(updated_at=LONG_AGO))

    def enrollments(self, wp_user_id: int | None = None) -> list[Enrollment]:
        query = sa.select(Enrollment).order_by(Enrollment.id)
        if wp_user_id is not None:
            query = query.where(Enrollment.wp_user_id == wp_user_id)
        with self.runtime.db.session() as session:
            return list(session.scalars(query))

    def activities(self, type: ActivityType | None = None) -> list[Activity]:
        query = sa.select(Activity).order_by(Activity.id)
        if type is not None:
            query = query.where(Activity.type == type.value)
        with self.runtime.db.session() as session:
            return list(session.scalars(query))

    def _coach(self, session) -> Coach:
        coach = session.scalar(
            sa.select(Coach).where(Coach.wp_user_id == self.coach_wp_user_id)
        )
        if coach is None:
            coach = Coach(wp_user_id=self.coach_wp_user_id, display_name="Coach")
            session.add(coach)
            session.flush()
        return coach

    def _add_cohort(self, session, program, coach, spec: CohortSpec) -> int:
        cohort = Cohort(
            program_id=program.id,
            name=spec.name,
            kind=spec.kind,
            start_date=spec.start_date,
            coach_id=coach.id,
            capacity=spec.capacity,
            is_open=spec.is_open,
        )
        session.add(cohort)
        session.flush()
        return cohort.id


def build_harness(request, make_runtime, tmp_path, seed: int = 7) -> Harness:
    """Create a WordPress site, a coach user and a runtime on the test's backend."""
    backend = request.param
    if backend == "sqlite":
        wordpress_url = f"sqlite:///{tmp_path}/wordpress.sqlite3"
        state_url = None
    else:
        factory = request.getfixturevalue("mysql_database_factory")
        wordpress_url = factory("wp")
        state_url = factory("state")

    engine = sa.create_engine(wordpress_url)
    request.addfinalizer(engine.dispose)
    site = WordPressSite(engine)
    site.create_schema()
    coach_id = site.add_user("coach", "coach@example.org", "Coach Zoë ☀")

    clock = Clock()
    runtime = make_runtime(
        state_url=state_url,
        wordpress_url=wordpress_url,
        clock=clock,
        rng=random.Random(seed),
    )
    return Harness(backend, site, runtime, clock, coach_id)
