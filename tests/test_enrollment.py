"""Enrollment of one member through reconcile_member, against a WordPress database."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from bridge.enrollment import (
    enroll,
    list_enrollments,
    reconcile_member,
    refresh_coach_cache,
)
from bridge.models import (
    ActivityType,
    Coach,
    CohortKind,
    EnrollmentStatus,
    Program,
)
from sync.reader import WordPressUnavailable
from tests.test_enrollment_harness import (
    BACKENDS,
    START,
    CohortSpec,
    Harness,
    build_harness,
)
from tests.wpsite import ZERO_DATE

TODAY = START.date()
FUTURE = dt.datetime(2026, 1, 1)
PAST = dt.datetime(2025, 1, 1)


@pytest.fixture(params=BACKENDS)
def harness(request, make_runtime, tmp_path) -> Harness:
    return build_harness(request, make_runtime, tmp_path)


@pytest.fixture
def membership(harness: Harness) -> int:
    return harness.site.add_membership("Monthly coaching")


@pytest.fixture
def program(harness: Harness, membership: int):
    return harness.add_program("strength", [membership])


def only_enrollment(harness: Harness, wp_user_id: int):
    enrollments = harness.enrollments(wp_user_id)
    assert len(enrollments) == 1, enrollments
    return enrollments[0]


# Access cases, each read from real MemberPress rows.


def test_zero_date_expiry_enrolls(harness, membership, program):
    ana = harness.member("ana")
    txn = harness.site.add_transaction(ana, membership, expires_at=ZERO_DATE)

    changes = reconcile_member(harness.runtime, ana)

    enrollment = only_enrollment(harness, ana)
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.program_id == program.id
    assert enrollment.cohort_id == program.cohort_ids[0]
    assert enrollment.membership_id == membership
    assert enrollment.transaction_id == txn
    assert enrollment.start_date == TODAY
    assert not enrollment.enrolled_by_hand
    assert [change.enrollment_id for change in changes.enrolled] == [enrollment.id]
    assert changes.changed


def test_null_expiry_enrolls(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).status == EnrollmentStatus.ACTIVE


def test_confirmed_trial_enrolls(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(
        ana,
        membership,
        status="confirmed",
        txn_type="subscription_confirmation",
        expires_at=FUTURE,
    )

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).status == EnrollmentStatus.ACTIVE


def test_confirmed_payment_grants_nothing(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, status="confirmed", expires_at=None)

    changes = reconcile_member(harness.runtime, ana)

    assert harness.enrollments(ana) == []
    assert not changes.changed


def test_refunded_grants_nothing(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, status="refunded", expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert harness.enrollments(ana) == []


def test_expired_grants_nothing(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=PAST)

    reconcile_member(harness.runtime, ana)

    assert harness.enrollments(ana) == []


def test_refund_deactivates(harness, membership, program):
    ana = harness.member("ana")
    txn = harness.site.add_transaction(ana, membership, expires_at=FUTURE)
    reconcile_member(harness.runtime, ana)

    harness.site.set_transaction_status(txn, "refunded")
    changes = reconcile_member(harness.runtime, ana)

    enrollment = only_enrollment(harness, ana)
    assert enrollment.status == EnrollmentStatus.INACTIVE
    assert enrollment.deactivated_at == harness.now
    assert [change.enrollment_id for change in changes.deactivated] == [enrollment.id]
    unenrolled = harness.activities(ActivityType.UNENROLLED)
    assert len(unenrolled) == 1
    assert unenrolled[0].enrollment_id == enrollment.id
    assert unenrolled[0].coach_id is not None


def test_expiry_passing_deactivates(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=START + dt.timedelta(1))
    reconcile_member(harness.runtime, ana)

    harness.clock.advance(days=2)
    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).status == EnrollmentStatus.INACTIVE


def test_second_membership_keeps_enrollment(harness, membership):
    other = harness.site.add_membership("Yearly coaching")
    program = harness.add_program("strength", [membership, other])
    ana = harness.member("ana")
    monthly = harness.site.add_transaction(ana, membership, expires_at=FUTURE)
    harness.site.add_transaction(ana, other, expires_at=FUTURE)
    reconcile_member(harness.runtime, ana)

    harness.site.set_transaction_status(monthly, "refunded")
    changes = reconcile_member(harness.runtime, ana)

    enrollment = only_enrollment(harness, ana)
    assert enrollment.program_id == program.id
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.membership_id == other
    assert not changes.changed
    assert harness.activities(ActivityType.UNENROLLED) == []


def test_both_memberships_lost_deactivates(harness, membership):
    other = harness.site.add_membership("Yearly coaching")
    harness.add_program("strength", [membership, other])
    ana = harness.member("ana")
    first = harness.site.add_transaction(ana, membership, expires_at=FUTURE)
    second = harness.site.add_transaction(ana, other, expires_at=FUTURE)
    reconcile_member(harness.runtime, ana)

    harness.site.set_transaction_status(first, "refunded")
    harness.site.set_transaction_status(second, "refunded")
    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).status == EnrollmentStatus.INACTIVE


def test_membership_without_program_ignored(harness, membership, program):
    unrelated = harness.site.add_membership("Newsletter")
    ana = harness.member("ana")
    harness.site.add_transaction(ana, unrelated, expires_at=None)

    changes = reconcile_member(harness.runtime, ana)

    assert harness.enrollments(ana) == []
    assert changes.waiting_for_cohort == []


def test_renewal_records_new_transaction(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=START + dt.timedelta(1))
    reconcile_member(harness.runtime, ana)

    renewal = harness.site.add_transaction(ana, membership, expires_at=FUTURE)
    changes = reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).transaction_id == renewal
    assert not changes.changed
    assert len(harness.activities(ActivityType.PROGRAM_STARTED)) == 1


def test_refund_before_completion_converges(harness, membership, program):
    # MemberPress sends "transaction completed" and "transaction refunded" as
    # separate webhooks that may arrive in either order. Each reconcile reads
    # the transaction's current state, so the order of the calls cannot matter.
    ana = harness.member("ana")
    txn = harness.site.add_transaction(ana, membership, status="pending")
    reconcile_member(harness.runtime, ana)
    harness.site.set_transaction_status(txn, "complete")
    harness.site.set_transaction_status(txn, "refunded")

    reconcile_member(harness.runtime, ana)  # the refund webhook
    reconcile_member(harness.runtime, ana)  # the late completion webhook

    assert harness.enrollments(ana) == []
    assert harness.activities(ActivityType.PROGRAM_STARTED) == []


def test_completion_read_late_converges(harness, membership, program):
    ana = harness.member("ana")
    txn = harness.site.add_transaction(ana, membership, status="pending")
    reconcile_member(harness.runtime, ana)  # early webhook, still pending
    assert harness.enrollments(ana) == []

    harness.site.set_transaction_status(txn, "complete")
    reconcile_member(harness.runtime, ana)
    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).status == EnrollmentStatus.ACTIVE
    assert len(harness.activities(ActivityType.PROGRAM_STARTED)) == 1


def test_repeat_reconcile_changes_nothing(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)
    reconcile_member(harness.runtime, ana)

    changes = reconcile_member(harness.runtime, ana)

    assert not changes.changed
    assert len(harness.enrollments(ana)) == 1
    assert len(harness.activities()) == 1


# Start dates, cohorts and resuming.


def test_fixed_cohort_start_date(harness, membership):
    fixed_start = dt.date(2025, 4, 1)
    spec = CohortSpec("Spring", kind=CohortKind.FIXED, start_date=fixed_start)
    harness.add_program("strength", [membership], [spec])
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).start_date == fixed_start


def test_rolling_start_date_is_site_day(harness, membership, program):
    # 23:30 UTC on 10 March is already 11 March in Auckland (UTC+13).
    harness.site.set_option("timezone_string", "Pacific/Auckland")
    harness.clock.now = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).start_date == dt.date(2025, 3, 11)


def test_resume_keeps_cohort_and_start(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("A", capacity=1), CohortSpec("B")]
    )
    ana = harness.member("ana")
    txn = harness.site.add_transaction(ana, membership, expires_at=None)
    reconcile_member(harness.runtime, ana)
    first = only_enrollment(harness, ana)

    harness.site.set_transaction_status(txn, "refunded")
    harness.clock.advance(days=10)
    reconcile_member(harness.runtime, ana)
    harness.set_cohort(first.cohort_id, is_open=False)
    again = harness.site.add_transaction(ana, membership, expires_at=None)
    harness.clock.advance(days=10)
    changes = reconcile_member(harness.runtime, ana)

    resumed = only_enrollment(harness, ana)
    assert resumed.id == first.id
    assert resumed.cohort_id == first.cohort_id
    assert resumed.start_date == first.start_date
    assert resumed.status == EnrollmentStatus.ACTIVE
    assert resumed.deactivated_at is None
    assert resumed.transaction_id == again
    assert [change.enrollment_id for change in changes.resumed] == [first.id]
    assert len(harness.activities(ActivityType.RESUMED)) == 1
    assert program.id == resumed.program_id


def test_resume_into_full_cohort_allowed(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("A", capacity=1)]
    )
    ana = harness.member("ana")
    bob = harness.member("bob")
    txn = harness.site.add_transaction(ana, membership, expires_at=None)
    reconcile_member(harness.runtime, ana)
    harness.site.set_transaction_status(txn, "refunded")
    reconcile_member(harness.runtime, ana)

    harness.site.add_transaction(bob, membership, expires_at=None)
    reconcile_member(harness.runtime, bob)
    harness.site.set_transaction_status(txn, "complete")
    reconcile_member(harness.runtime, ana)

    active = [
        enrollment
        for enrollment in harness.enrollments()
        if enrollment.status == EnrollmentStatus.ACTIVE
    ]
    assert len(active) == 2
    assert {enrollment.cohort_id for enrollment in active} == {program.cohort_ids[0]}


def test_closed_and_full_cohorts_skipped(harness, membership):
    program = harness.add_program(
        "strength",
        [membership],
        [
            CohortSpec("Closed", is_open=False),
            CohortSpec("Full", capacity=0),
            CohortSpec("Open"),
        ],
    )
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).cohort_id == program.cohort_ids[2]


def test_injected_rng_chooses_cohort(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("A"), CohortSpec("B"), CohortSpec("C")]
    )

    class PickSecond:
        def choice(self, candidates):
            return candidates[1]

    harness.runtime.rng = PickSecond()
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).cohort_id == program.cohort_ids[1]


def test_no_open_cohort_then_opens(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("Later", is_open=False)]
    )
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    changes = reconcile_member(harness.runtime, ana)

    assert harness.enrollments(ana) == []
    assert changes.waiting_for_cohort == [program.id]
    waiting = harness.activities(ActivityType.NO_OPEN_COHORT)
    assert len(waiting) == 1
    assert waiting[0].wp_user_id == ana
    assert waiting[0].program_id == program.id

    harness.set_cohort(program.cohort_ids[0], is_open=True)
    changes = reconcile_member(harness.runtime, ana)

    assert only_enrollment(harness, ana).cohort_id == program.cohort_ids[0]
    assert changes.waiting_for_cohort == []
    assert len(changes.enrolled) == 1


def test_no_open_cohort_noted_once_a_day(harness, membership, caplog):
    harness.add_program("strength", [membership], [CohortSpec("Full", capacity=0)])
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    for _ in range(4):
        reconcile_member(harness.runtime, ana)
        harness.clock.advance(minutes=15)

    assert len(harness.activities(ActivityType.NO_OPEN_COHORT)) == 1
    warnings = [r for r in caplog.records if "no open cohort" in r.getMessage()]
    assert warnings
    assert str(ana) in warnings[0].getMessage()

    harness.clock.advance(days=1)
    reconcile_member(harness.runtime, ana)

    assert len(harness.activities(ActivityType.NO_OPEN_COHORT)) == 2


def test_program_without_cohorts_waits(harness, membership):
    program = harness.add_program("strength", [membership], [])
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    changes = reconcile_member(harness.runtime, ana)

    assert changes.waiting_for_cohort == [program.id]


# Enrollments by hand, activity, names and listing.


def test_hand_enrollment_survives_reconcile(harness, program):
    ana = harness.member("ana")
    runtime = harness.runtime
    with runtime.db.session() as session:
        target = session.get_one(Program, program.id)
        created = enroll(session, runtime, ana, target, None, TODAY)
        assert created is not None

    changes = reconcile_member(runtime, ana)

    enrollment = only_enrollment(harness, ana)
    assert enrollment.enrolled_by_hand
    assert enrollment.membership_id is None
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert not changes.changed


def test_program_started_activity(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)

    enrollment = only_enrollment(harness, ana)
    (started,) = harness.activities(ActivityType.PROGRAM_STARTED)
    assert started.wp_user_id == ana
    assert started.program_id == program.id
    assert started.cohort_id == enrollment.cohort_id
    assert started.enrollment_id == enrollment.id
    assert started.coach_id is not None
    assert started.actor_wp_user_id is None
    assert started.occurred_at == harness.now
    assert started.details == {"start_date": TODAY.isoformat()}


def test_emoji_and_accents_listed(harness, membership):
    harness.add_program(
        "força-🏋",
        [membership],
        [CohortSpec("Équipe Zoë 🌱")],
        title="Força total 💪",
    )
    ana = harness.member("ana", display_name="Anaïs 😀")
    harness.site.add_transaction(ana, membership, expires_at=None)

    reconcile_member(harness.runtime, ana)
    rows = list_enrollments(harness.runtime)

    assert rows == [
        {
            "wp_user_id": ana,
            "program": "força-🏋",
            "cohort": "Équipe Zoë 🌱",
            "cohort_id": rows[0]["cohort_id"],
            "status": "active",
            "start_date": TODAY.isoformat(),
            "membership_id": membership,
            "transaction_id": rows[0]["transaction_id"],
        }
    ]
    (started,) = harness.activities(ActivityType.PROGRAM_STARTED)
    assert "Força total 💪" in started.summary
    assert "Équipe Zoë 🌱" in started.summary


def test_coach_cache_refresh(harness, program):
    changed = refresh_coach_cache(harness.runtime)

    with harness.runtime.db.session() as session:
        coach = session.scalar(sa.select(Coach))
    assert changed == 1
    assert coach.display_name == "Coach Zoë ☀"
    assert coach.email == "coach@example.org"
    assert refresh_coach_cache(harness.runtime) == 0


def test_unreachable_wordpress_changes_nothing(make_runtime, tmp_path):
    runtime = make_runtime(wordpress_url=f"sqlite:///{tmp_path}/missing/wp.sqlite3")

    with pytest.raises(WordPressUnavailable):
        reconcile_member(runtime, 1)


# Concurrency on MariaDB, where transactions really run in parallel.


def run_in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def start(index: int):
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


@pytest.mark.mariadb
@pytest.mark.parametrize("harness", ["mariadb"], indirect=True)
def test_concurrent_calls_one_enrollment(harness, membership, program):
    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)

    results = run_in_threads(50, lambda _: reconcile_member(harness.runtime, ana))

    assert len(harness.enrollments(ana)) == 1
    assert sum(len(result.enrolled) for result in results) == 1
    assert len(harness.activities(ActivityType.PROGRAM_STARTED)) == 1


@pytest.mark.mariadb
@pytest.mark.parametrize("harness", ["mariadb"], indirect=True)
def test_concurrent_members_one_seat(harness, membership):
    program = harness.add_program(
        "strength", [membership], [CohortSpec("A", capacity=1)]
    )
    members = [harness.member(f"member{index}") for index in range(20)]
    for member in members:
        harness.site.add_transaction(member, membership, expires_at=None)

    results = run_in_threads(
        20, lambda index: reconcile_member(harness.runtime, members[index])
    )

    enrollments = harness.enrollments()
    assert len(enrollments) == 1
    assert enrollments[0].cohort_id == program.cohort_ids[0]
    assert sum(len(result.enrolled) for result in results) == 1
    assert sum(len(result.waiting_for_cohort) for result in results) == 19
    assert len(harness.activities(ActivityType.NO_OPEN_COHORT)) == 19


def test_duplicate_insert_rereads(harness, membership, program, monkeypatch):
    # Simulate a concurrent reconcile that enrolled the member between this
    # call's read and its insert: the first read misses the existing row.
    import bridge.enrollment as enrollment_module

    ana = harness.member("ana")
    harness.site.add_transaction(ana, membership, expires_at=None)
    reconcile_member(harness.runtime, ana)
    real_lock = enrollment_module._lock_member_enrollments
    calls = []

    def stale_then_real(session, wp_user_id):
        calls.append(wp_user_id)
        return {} if len(calls) == 1 else real_lock(session, wp_user_id)

    monkeypatch.setattr(enrollment_module, "_lock_member_enrollments", stale_then_real)
    changes = reconcile_member(harness.runtime, ana)

    assert len(calls) == 2
    assert not changes.changed
    assert len(harness.enrollments(ana)) == 1
    assert len(harness.activities(ActivityType.PROGRAM_STARTED)) == 1
