"""The pure enrollment decision: grants and enrollments in, a plan out."""

from __future__ import annotations

from dataclasses import dataclass

from rules.enrollment import (
    Action,
    ExistingEnrollment,
    granted_programs,
    plan_enrollments,
)


@dataclass(frozen=True)
class Grant:
    membership_id: int
    transaction_id: int


PROGRAMS_BY_MEMBERSHIP = {100: [1], 200: [1, 2], 300: [3]}


def actions(plan):
    return {change.program_id: change.action for change in plan.changes}


def test_new_grant_creates():
    plan = plan_enrollments([Grant(100, 7)], PROGRAMS_BY_MEMBERSHIP, {})

    (change,) = plan.changes
    assert change.action is Action.CREATE
    assert change.program_id == 1
    assert change.grant == Grant(100, 7)


def test_membership_granting_two_programs():
    plan = plan_enrollments([Grant(200, 8)], PROGRAMS_BY_MEMBERSHIP, {})

    assert actions(plan) == {1: Action.CREATE, 2: Action.CREATE}


def test_membership_without_programs_plans_nothing():
    plan = plan_enrollments([Grant(999, 1)], PROGRAMS_BY_MEMBERSHIP, {})

    assert plan.changes == ()


def test_lost_access_deactivates():
    existing = {3: ExistingEnrollment(3, active=True, membership_id=300)}

    plan = plan_enrollments([], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {3: Action.DEACTIVATE}


def test_second_membership_keeps_program():
    existing = {
        1: ExistingEnrollment(1, active=True, membership_id=100, transaction_id=7)
    }

    plan = plan_enrollments([Grant(200, 8)], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {1: Action.KEEP, 2: Action.CREATE}
    keep = plan.with_action(Action.KEEP)[0]
    assert keep.grant == Grant(200, 8)


def test_hand_enrollment_never_deactivated():
    existing = {3: ExistingEnrollment(3, active=True, enrolled_by_hand=True)}

    plan = plan_enrollments([], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {3: Action.KEEP}


def test_hand_enrollment_keeps_no_grant():
    existing = {3: ExistingEnrollment(3, active=True, enrolled_by_hand=True)}

    plan = plan_enrollments([Grant(300, 4)], PROGRAMS_BY_MEMBERSHIP, existing)

    (change,) = plan.changes
    assert change.action is Action.KEEP
    assert change.grant is None


def test_inactive_with_access_resumes():
    existing = {3: ExistingEnrollment(3, active=False, membership_id=300)}

    plan = plan_enrollments([Grant(300, 9)], PROGRAMS_BY_MEMBERSHIP, existing)

    (change,) = plan.changes
    assert change.action is Action.RESUME
    assert change.grant == Grant(300, 9)


def test_inactive_without_access_kept():
    existing = {3: ExistingEnrollment(3, active=False)}

    plan = plan_enrollments([], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {3: Action.KEEP}


def test_same_grant_records_nothing():
    existing = {
        3: ExistingEnrollment(3, active=True, membership_id=300, transaction_id=4)
    }

    plan = plan_enrollments([Grant(300, 4)], PROGRAMS_BY_MEMBERSHIP, existing)

    (change,) = plan.changes
    assert change.action is Action.KEEP
    assert change.grant is None


def test_renewal_records_new_transaction():
    existing = {
        3: ExistingEnrollment(3, active=True, membership_id=300, transaction_id=4)
    }

    plan = plan_enrollments([Grant(300, 5)], PROGRAMS_BY_MEMBERSHIP, existing)

    (change,) = plan.changes
    assert change.action is Action.KEEP
    assert change.grant == Grant(300, 5)


def test_latest_transaction_grants():
    granting = granted_programs([Grant(200, 3), Grant(100, 9)], PROGRAMS_BY_MEMBERSHIP)

    assert granting[1] == Grant(100, 9)
    assert granting[2] == Grant(200, 3)


def test_changes_ordered_by_program():
    existing = {3: ExistingEnrollment(3, active=True)}

    plan = plan_enrollments([Grant(200, 1)], PROGRAMS_BY_MEMBERSHIP, existing)

    assert [change.program_id for change in plan.changes] == [1, 2, 3]


def test_unenrolled_by_hand_stays_out():
    existing = {
        1: ExistingEnrollment(program_id=1, active=False, unenrolled_by_hand=True)
    }
    plan = plan_enrollments([Grant(100, 7)], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {1: Action.KEEP}


def test_inactive_with_grant_resumes():
    existing = {1: ExistingEnrollment(program_id=1, active=False)}
    plan = plan_enrollments([Grant(100, 7)], PROGRAMS_BY_MEMBERSHIP, existing)

    assert actions(plan) == {1: Action.RESUME}
