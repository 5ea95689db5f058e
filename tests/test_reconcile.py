"""The full reconcile: batches, bulk writes, users who vanished, failures."""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import bridge.reconcile as reconcile_module
from bridge.enrollment import enroll, reconcile_member, refresh_coach_cache
from bridge.models import (
    ActivityType,
    CohortKind,
    Enrollment,
    EnrollmentStatus,
    Program,
)
from bridge.reconcile import ReconcileSummary, reconcile_all
from tests.test_enrollment_harness import (
    BACKENDS,
    START,
    CohortSpec,
    Harness,
    build_harness,
)
from tests.wpsite import NewTransaction, NewUser

TODAY = START.date()
FUTURE = dt.datetime(2026, 1, 1)


@pytest.fixture(params=BACKENDS)
def harness(request, make_runtime, tmp_path) -> Harness:
    return build_harness(request, make_runtime, tmp_path)


@pytest.fixture
def membership(harness: Harness) -> int:
    return harness.site.add_membership("Monthly coaching")


def add_members(harness: Harness, count: int, membership: int, **txn) -> list[int]:
    users = [NewUser(f"m{index}", f"m{index}@example.org") for index in range(count)]
    ids = harness.site.add_users(users)
    harness.site.add_transactions(
        NewTransaction(user_id, membership, **txn) for user_id in ids
    )
    return ids


def by_user(harness: Harness) -> dict[int, Enrollment]:
    return {enrollment.wp_user_id: enrollment for enrollment in harness.enrollments()}


def test_first_run_enrolls_everyone(harness, membership):
    program = harness.add_program("strength", [membership])
    members = add_members(harness, 25, membership, expires_at=None)
    harness.site.add_transaction(members[0], membership, status="refunded")
    calls = []

    summary = reconcile_all(harness.runtime, progress=calls.append, batch_size=10)

    assert summary.members_read == 25
    assert summary.enrolled == 25
    assert summary.errors == 0
    assert calls == [10, 10, 5]
    enrollments = by_user(harness)
    assert sorted(enrollments) == members
    for enrollment in enrollments.values():
        assert enrollment.status == EnrollmentStatus.ACTIVE
        assert enrollment.cohort_id == program.cohort_ids[0]
        assert enrollment.start_date == TODAY
        assert enrollment.membership_id == membership
    started = harness.activities(ActivityType.PROGRAM_STARTED)
    assert sorted(entry.wp_user_id for entry in started) == members
    assert {entry.enrollment_id for entry in started} == {
        enrollment.id for enrollment in enrollments.values()
    }
    assert all(entry.coach_id is not None for entry in started)


def test_second_run_changes_nothing(harness, membership):
    harness.add_program("strength", [membership])
    add_members(harness, 12, membership, expires_at=None)
    reconcile_all(harness.runtime, batch_size=5)
    harness.age_enrollments()
    entries = len(harness.activities())

    summary = reconcile_all(harness.runtime, batch_size=5)

    assert summary.as_dict() | {"seconds": 0} == {
        "members_read": 12,
        "enrolled": 0,
        "resumed": 0,
        "deactivated": 0,
        "waiting_for_cohort": 0,
        "errors": 0,
        "seconds": 0,
    }
    assert len(harness.activities()) == entries


def test_bulk_and_single_agree(harness, membership):
    fixed_start = dt.date(2025, 5, 1)
    spec = CohortSpec("May", kind=CohortKind.FIXED, start_date=fixed_start)
    harness.add_program("strength", [membership], [spec])
    members = add_members(harness, 3, membership, expires_at=None)

    reconcile_all(harness.runtime)

    for member in members:
        assert by_user(harness)[member].start_date == fixed_start
        assert not reconcile_member(harness.runtime, member).changed


def test_lost_access_deactivates(harness, membership):
    harness.add_program("strength", [membership])
    members = add_members(harness, 4, membership, expires_at=FUTURE)
    reconcile_all(harness.runtime)
    harness.age_enrollments()

    harness.clock.now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    summary = reconcile_all(harness.runtime)

    assert summary.deactivated == 4
    for enrollment in by_user(harness).values():
        assert enrollment.status == EnrollmentStatus.INACTIVE
        assert enrollment.deactivated_at == harness.now
    unenrolled = harness.activities(ActivityType.UNENROLLED)
    assert sorted(entry.wp_user_id for entry in unenrolled) == members
    assert {entry.details["reason"] for entry in unenrolled} == {"access_lost"}


def test_vanished_user_deactivated(harness, membership):
    harness.add_program("strength", [membership])
    members = add_members(harness, 6, membership, expires_at=None)
    reconcile_all(harness.runtime, batch_size=2)
    harness.age_enrollments()
    transactions = harness.site.tables.transactions
    gone = [members[2], members[5]]  # one inside the walk, one above its last id
    with harness.site.engine.begin() as connection:
        connection.execute(
            transactions.delete().where(transactions.c.user_id.in_(gone))
        )

    summary = reconcile_all(harness.runtime, batch_size=2)

    assert summary.members_read == 4
    assert summary.deactivated == 2
    enrollments = by_user(harness)
    for member in members:
        expected = "inactive" if member in gone else "active"
        assert enrollments[member].status == expected, member
    unenrolled = harness.activities(ActivityType.UNENROLLED)
    assert sorted(entry.wp_user_id for entry in unenrolled) == gone
    assert {entry.details["reason"] for entry in unenrolled} == {"no_transactions"}


def test_hand_enrollment_kept(harness, membership):
    program = harness.add_program("strength", [membership])
    walk_in = harness.member("walk-in")
    with harness.runtime.db.session() as session:
        target = session.get_one(Program, program.id)
        enroll(session, harness.runtime, walk_in, target, None, TODAY)
    harness.age_enrollments()

    summary = reconcile_all(harness.runtime)

    assert summary.deactivated == 0
    assert by_user(harness)[walk_in].status == EnrollmentStatus.ACTIVE


def test_resume_keeps_cohort(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("A"), CohortSpec("B")]
    )
    (member,) = add_members(harness, 1, membership, status="refunded")
    txn = harness.site.add_transaction(member, membership, expires_at=None)
    reconcile_all(harness.runtime)
    first = by_user(harness)[member]
    harness.site.set_transaction_status(txn, "refunded")
    harness.age_enrollments()
    reconcile_all(harness.runtime)
    harness.set_cohort(first.cohort_id, is_open=False)
    again = harness.site.add_transaction(member, membership, expires_at=None)
    harness.age_enrollments()

    summary = reconcile_all(harness.runtime)

    resumed = by_user(harness)[member]
    assert summary.resumed == 1
    assert resumed.id == first.id
    assert resumed.cohort_id == first.cohort_id
    assert resumed.status == EnrollmentStatus.ACTIVE
    assert resumed.deactivated_at is None
    assert resumed.transaction_id == again
    assert len(harness.activities(ActivityType.RESUMED)) == 1
    assert program.cohort_ids


def test_renewal_updates_transaction(harness, membership):
    harness.add_program("strength", [membership])
    members = add_members(harness, 5, membership, expires_at=FUTURE)
    reconcile_all(harness.runtime)
    renewals = harness.site.add_transactions(
        NewTransaction(member, membership, expires_at=dt.datetime(2027, 1, 1))
        for member in members
    )
    harness.age_enrollments()

    summary = reconcile_all(harness.runtime)

    assert summary.as_dict()["enrolled"] == 0
    transactions = {e.wp_user_id: e.transaction_id for e in harness.enrollments()}
    assert transactions == dict(zip(members, renewals, strict=True))


def test_capacity_within_one_batch(harness, membership):
    program = harness.add_program(
        "strength",
        [membership],
        [CohortSpec("A", capacity=2), CohortSpec("B", capacity=1)],
    )
    add_members(harness, 10, membership, expires_at=None)

    summary = reconcile_all(harness.runtime)
    again = reconcile_all(harness.runtime)

    assert summary.enrolled == 3
    assert summary.waiting_for_cohort == 7
    counts = {}
    for enrollment in harness.enrollments():
        counts[enrollment.cohort_id] = counts.get(enrollment.cohort_id, 0) + 1
    assert counts == {program.cohort_ids[0]: 2, program.cohort_ids[1]: 1}
    assert again.waiting_for_cohort == 7
    assert len(harness.activities(ActivityType.NO_OPEN_COHORT)) == 7


def test_waiting_noted_again_next_day(harness, membership):
    harness.add_program("strength", [membership], [CohortSpec("A", is_open=False)])
    add_members(harness, 3, membership, expires_at=None)
    reconcile_all(harness.runtime)

    harness.clock.advance(days=1)
    reconcile_all(harness.runtime)

    assert len(harness.activities(ActivityType.NO_OPEN_COHORT)) == 6


def test_recent_change_left_for_next_run(harness, membership):
    harness.add_program("strength", [membership])
    (member,) = add_members(harness, 1, membership, expires_at=None)
    reconcile_member(harness.runtime, member)
    with harness.site.engine.begin() as connection:
        transactions = harness.site.tables.transactions
        connection.execute(transactions.update().values(status="refunded"))
    with harness.runtime.db.session() as session:
        future = dt.datetime(2999, 1, 1)
        session.execute(sa.update(Enrollment).values(updated_at=future))

    summary = reconcile_all(harness.runtime)

    assert summary.deactivated == 0
    assert by_user(harness)[member].status == EnrollmentStatus.ACTIVE


def test_failed_batch_counted_and_skipped(harness, membership, monkeypatch, caplog):
    harness.add_program("strength", [membership])
    members = add_members(harness, 6, membership, expires_at=None)
    real = reconcile_module._create_enrollments
    broken = members[2]

    def fail_on_one_batch(session, run, span, creates, counts):
        if any(create.wp_user_id == broken for create in creates):
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))
        return real(session, run, span, creates, counts)

    monkeypatch.setattr(reconcile_module, "_create_enrollments", fail_on_one_batch)
    with caplog.at_level(logging.ERROR, logger="bridge.reconcile"):
        summary = reconcile_all(harness.runtime, batch_size=2)

    assert summary.errors == 1
    assert summary.enrolled == 4
    assert summary.members_read == 6
    assert sorted(by_user(harness)) == members[:2] + members[4:]
    failures = [record.getMessage() for record in caplog.records]
    assert any(f"user ids {members[2]}..{members[3]}" in text for text in failures)


def test_unreachable_wordpress_counted(make_runtime, tmp_path):
    runtime = make_runtime(wordpress_url=f"sqlite:///{tmp_path}/missing/wp.sqlite3")

    summary = reconcile_all(runtime)

    assert isinstance(summary, ReconcileSummary)
    assert summary.errors == 1
    assert summary.members_read == 0


def count_statements(engine: sa.Engine, work) -> int:
    statements = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    return len(statements)


def test_queries_per_batch_constant(harness, membership):
    # Two runs with the same number of batches but twice the members per batch
    # must send the same number of statements to the state database.
    harness.add_program("strength", [membership])
    other = harness.site.add_membership("Yearly coaching")
    harness.add_program("mobility", [other])
    add_members(harness, 20, membership, expires_at=None)
    engine = harness.runtime.db.engine
    refresh_coach_cache(harness.runtime)

    small = count_statements(
        engine, lambda: reconcile_all(harness.runtime, batch_size=5)
    )
    add_members(harness, 20, other, expires_at=None)
    harness.age_enrollments()
    with harness.runtime.db.session() as session:
        session.execute(sa.delete(Enrollment))
    large = count_statements(
        engine, lambda: reconcile_all(harness.runtime, batch_size=10)
    )

    assert small == large


@pytest.mark.mariadb
@pytest.mark.parametrize("harness", ["mariadb"], indirect=True)
def test_concurrent_with_single_reconciles(harness, membership):
    harness.add_program("strength", [membership], [CohortSpec("A"), CohortSpec("B")])
    members = add_members(harness, 200, membership, expires_at=None)

    def reconcile_members(offset: int) -> None:
        for member in members[offset::3]:
            reconcile_member(harness.runtime, member)

    with ThreadPoolExecutor(max_workers=4) as pool:
        singles = [pool.submit(reconcile_members, offset) for offset in range(3)]
        summary = reconcile_all(harness.runtime, batch_size=20)
        for future in singles:
            future.result()

    assert summary.errors == 0
    enrollments = harness.enrollments()
    assert sorted(enrollment.wp_user_id for enrollment in enrollments) == members
    started = harness.activities(ActivityType.PROGRAM_STARTED)
    assert len(started) == len(members)
