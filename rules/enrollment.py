"""The enrollment decision for one member, from their grants and enrollments.

A member is enrolled in every program that a membership they have access to
grants. An enrollment stays active while any such membership grants its program,
so losing one of two memberships that grant the same program changes nothing.
An enrollment added by hand is never deactivated here, and an inactive enrollment
whose program is granted again resumes (the same row, in the same cohort).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class GrantLike(Protocol):
    """Access to one membership through one transaction, as the reader returns it."""

    @property
    def membership_id(self) -> int: ...

    @property
    def transaction_id(self) -> int: ...


class Action(StrEnum):
    CREATE = "create"
    RESUME = "resume"
    DEACTIVATE = "deactivate"
    KEEP = "keep"


@dataclass(frozen=True)
class ExistingEnrollment:
    """An enrollment the member already has, reduced to what the decision reads."""

    program_id: int
    active: bool
    enrolled_by_hand: bool = False
    unenrolled_by_hand: bool = False
    membership_id: int | None = None
    transaction_id: int | None = None


@dataclass(frozen=True)
class PlannedChange:
    """The planned action on the member's enrollment in one program."""

    program_id: int
    action: Action
    # The grant to record on the enrollment, or None to leave the recorded one.
    grant: GrantLike | None = None


@dataclass(frozen=True)
class EnrollmentPlan:
    """The planned changes of one member, one per program, ordered by program id."""

    changes: tuple[PlannedChange, ...]

    def with_action(self, action: Action) -> list[PlannedChange]:
        """Return the changes with the given action."""
        return [change for change in self.changes if change.action is action]


def granted_programs(
    grants: Iterable[GrantLike],
    programs_by_membership: Mapping[int, Collection[int]],
) -> dict[int, GrantLike]:
    """Map each program the grants give access to onto the grant that gives it.

    When several memberships grant one program, the grant with the highest
    transaction id (the most recent purchase) is the one recorded.
    """
    granting: dict[int, GrantLike] = {}
    for grant in grants:
        for program_id in programs_by_membership.get(grant.membership_id, ()):
            current = granting.get(program_id)
            if current is None or _grant_key(grant) > _grant_key(current):
                granting[program_id] = grant
    return granting


def plan_enrollments(
    grants: Iterable[GrantLike],
    programs_by_membership: Mapping[int, Collection[int]],
    existing: Mapping[int, ExistingEnrollment],
) -> EnrollmentPlan:
    """Decide, program by program, what the member's enrollments should become.

    ``existing`` maps program ids onto the member's enrollments.
    """
    granting = granted_programs(grants, programs_by_membership)
    changes = []
    for program_id in sorted(granting.keys() | existing.keys()):
        enrollment = existing.get(program_id)
        grant = granting.get(program_id)
        changes.append(_decide(program_id, enrollment, grant))
    return EnrollmentPlan(tuple(changes))


def _decide(
    program_id: int,
    enrollment: ExistingEnrollment | None,
    grant: GrantLike | None,
) -> PlannedChange:
    if enrollment is None:
        return PlannedChange(program_id, Action.CREATE, grant)

    if grant is None:
        if enrollment.active and not enrollment.enrolled_by_hand:
            return PlannedChange(program_id, Action.DEACTIVATE)
        return PlannedChange(program_id, Action.KEEP)

    if not enrollment.active:
        # An administrator's unenrollment outlasts the membership that granted
        # the program; only adding the client again by hand undoes it.
        if enrollment.unenrolled_by_hand:
            return PlannedChange(program_id, Action.KEEP)
        return PlannedChange(program_id, Action.RESUME, grant)
    if enrollment.enrolled_by_hand or _records(enrollment, grant):
        return PlannedChange(program_id, Action.KEEP)
    return PlannedChange(program_id, Action.KEEP, grant)


def _records(enrollment: ExistingEnrollment, grant: GrantLike) -> bool:
    return (
        enrollment.membership_id == grant.membership_id
        and enrollment.transaction_id == grant.transaction_id
    )


def _grant_key(grant: GrantLike) -> tuple[int, int]:
    return (grant.transaction_id, grant.membership_id)
