"""Inbox processing: claims, coalescing, backoff, give-up, requeue and stats.

reconcile_member is replaced by a recorder here; tests/test_faults.py runs the
real one against MariaDB.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time

import pytest
import sqlalchemy as sa

from bridge import inbox
from bridge.models import InboxEntry, InboxStatus
from sync.reader import WordPressUnavailable

START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
NAIVE_START = START.replace(tzinfo=None)
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def shared_state_url(backend: str, request) -> str:
    """Return a state database URL that several runtimes can open."""
    if backend == "mariadb":
        return request.getfixturevalue("mysql_database_factory")("state")
    return f"sqlite:///{request.getfixturevalue('tmp_path')}/shared.sqlite3"


class Clock:
    """A settable clock for the runtime."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Recorder:
    """A stand-in for reconcile_member that records calls and can fail."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.failures: dict[int, Exception] = {}
        self.lock = threading.Lock()
        self.delay = 0.0

    def __call__(self, _runtime, member_id: int) -> None:
        with self.lock:
            self.calls.append(member_id)
        if self.delay:
            time.sleep(self.delay)
        error = self.failures.get(member_id)
        if error is not None:
            raise error


class TopOfRange(random.Random):
    """A random generator whose uniform() returns the upper bound (no jitter)."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(inbox, "reconcile_member", recorder)
    return recorder


@pytest.fixture
def runtime(make_runtime, clock):
    return make_runtime(
        clock=clock,
        rng=random.Random(3),
        webhooks={"retry_base_seconds": 30, "retry_max_seconds": 600},
    )


def add_entry(runtime, member_id: int | None, body: str | None = None, **values):
    """Store a pending delivery for ``member_id``; return its id."""
    body = body or f'{{"event": "member-added", "data": {{"id": {member_id}}}}}'
    row = {
        "received_at": NAIVE_START,
        "event": "member-added",
        "body": body,
        "body_sha256": inbox.body_digest(body.encode()),
        "wp_user_id": member_id,
        "status": InboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": NAIVE_START,
        **values,
    }
    with runtime.db.engine.begin() as connection:
        result = connection.execute(sa.insert(InboxEntry), row)
        return result.inserted_primary_key[0]


def entry(runtime, entry_id: int) -> InboxEntry:
    with runtime.db.session() as session:
        return session.get_one(InboxEntry, entry_id)


def statuses(runtime) -> list[InboxStatus]:
    with runtime.db.session() as session:
        query = sa.select(InboxEntry.status).order_by(InboxEntry.id)
        return list(session.scalars(query))


# Success and coalescing.


def test_pending_entry_processed(runtime, recorder, clock):
    entry_id = add_entry(runtime, 42)

    counts = inbox.process_due(runtime)

    assert recorder.calls == [42]
    assert counts.claimed == 1
    assert counts.done == 1
    assert counts.reconciled_members == 1
    processed = entry(runtime, entry_id)
    assert processed.status == InboxStatus.DONE
    assert processed.processed_at == NAIVE_START
    assert processed.lease_until is None
    assert processed.attempts == 0


def test_one_member_coalesced(runtime, recorder):
    for index in range(3):
        add_entry(runtime, 7, body=f'{{"event": "member-added", "n": {index}}}')
    add_entry(runtime, 8)

    counts = inbox.process_due(runtime)

    assert sorted(recorder.calls) == [7, 8]
    assert counts.done == 4
    assert counts.reconciled_members == 2
    assert statuses(runtime) == [InboxStatus.DONE] * 4


def test_nothing_due_claims_nothing(runtime, recorder):
    counts = inbox.process_due(runtime)

    assert counts.claimed == 0
    assert recorder.calls == []


def test_limit_bounds_batch(runtime, recorder):
    for member in range(1, 6):
        add_entry(runtime, member)

    first = inbox.process_due(runtime, limit=2)
    second = inbox.process_due(runtime, limit=10)

    assert first.claimed == 2
    assert second.claimed == 3
    assert sorted(recorder.calls) == [1, 2, 3, 4, 5]


def test_future_entry_not_claimed(runtime, recorder, clock):
    add_entry(runtime, 42, next_attempt_at=NAIVE_START + dt.timedelta(minutes=1))

    before = inbox.process_due(runtime)
    clock.advance(minutes=1)
    after = inbox.process_due(runtime)

    assert before.claimed == 0
    assert after.claimed == 1


def test_leased_entry_not_claimed(runtime, recorder, clock):
    lease = NAIVE_START + dt.timedelta(seconds=inbox.LEASE_SECONDS)
    entry_id = add_entry(runtime, 42, lease_until=lease)

    while_leased = inbox.process_due(runtime)
    clock.advance(seconds=inbox.LEASE_SECONDS)
    after_expiry = inbox.process_due(runtime)

    assert while_leased.claimed == 0
    assert after_expiry.claimed == 1
    assert entry(runtime, entry_id).status == InboxStatus.DONE


def test_entry_without_member_ignored(runtime, recorder):
    entry_id = add_entry(runtime, None)

    counts = inbox.process_due(runtime)

    assert recorder.calls == []
    assert counts.ignored == 1
    ignored = entry(runtime, entry_id)
    assert ignored.status == InboxStatus.IGNORED
    assert ignored.last_error == "no member id found in the delivery"


def test_pending_copy_marked_duplicate(runtime, recorder):
    # Two equal bodies stored at the same moment both pass intake's check.
    first = add_entry(runtime, 42)
    second = add_entry(runtime, 42)

    counts = inbox.process_due(runtime)

    assert recorder.calls == [42]
    assert counts.duplicates == 1
    assert entry(runtime, first).status == InboxStatus.DONE
    assert entry(runtime, second).status == InboxStatus.DUPLICATE
    assert entry(runtime, second).last_error == f"same body as inbox entry {first}"


def test_copy_outside_window_processed(runtime, recorder):
    add_entry(runtime, 42, received_at=NAIVE_START - dt.timedelta(hours=30))
    later = add_entry(runtime, 42)

    inbox.process_due(runtime)

    assert entry(runtime, later).status == InboxStatus.DONE
    assert recorder.calls == [42]


# Failures and backoff.


def test_failure_backs_off(runtime, recorder, clock, caplog):
    entry_id = add_entry(runtime, 42)
    recorder.failures[42] = WordPressUnavailable("cannot reach the WordPress database")

    with caplog.at_level(logging.WARNING, logger="bridge.inbox"):
        counts = inbox.process_due(runtime)

    assert counts.retried == 1
    assert counts.wordpress_unavailable
    failed = entry(runtime, entry_id)
    assert failed.status == InboxStatus.PENDING
    assert failed.attempts == 1
    assert failed.lease_until is None
    assert failed.last_error.startswith("WordPressUnavailable: cannot reach")
    wait = (failed.next_attempt_at - NAIVE_START).total_seconds()
    assert 30 * inbox.JITTER_LOW <= wait <= 30
    assert f"inbox entry {entry_id} for member 42 failed (attempt 1 of 50)" in (
        caplog.text
    )
    assert "WordPressUnavailable" in caplog.text


def test_failed_entry_retried_when_due(runtime, recorder, clock):
    entry_id = add_entry(runtime, 42)
    recorder.failures[42] = WordPressUnavailable("down")
    inbox.process_due(runtime)
    del recorder.failures[42]

    too_early = inbox.process_due(runtime)
    clock.advance(seconds=30)
    when_due = inbox.process_due(runtime)

    assert too_early.claimed == 0
    assert when_due.done == 1
    assert recorder.calls == [42, 42]
    assert entry(runtime, entry_id).status == InboxStatus.DONE


def test_backoff_doubles_up_to_max(make_runtime):
    runtime = make_runtime(
        rng=TopOfRange(),
        webhooks={"retry_base_seconds": 30, "retry_max_seconds": 600},
    )

    delays = [inbox.retry_delay(runtime, attempts) for attempts in range(1, 8)]

    assert delays == [30, 60, 120, 240, 480, 600, 600]
    assert inbox.retry_delay(runtime, 1000) == 600


def test_backoff_jitter_within_range(runtime):
    delays = {inbox.retry_delay(runtime, 3) for _ in range(200)}

    assert min(delays) >= 120 * inbox.JITTER_LOW
    assert max(delays) <= 120
    assert len(delays) > 100


def test_attempts_grow_backoff(runtime, recorder, clock):
    entry_id = add_entry(runtime, 42)
    recorder.failures[42] = RuntimeError("boom")
    waits = []

    for _ in range(4):
        clock.now = entry(runtime, entry_id).next_attempt_at.replace(tzinfo=dt.UTC)
        before = clock.now
        inbox.process_due(runtime)
        after = entry(runtime, entry_id).next_attempt_at.replace(tzinfo=dt.UTC)
        waits.append((after - before).total_seconds())

    assert entry(runtime, entry_id).attempts == 4
    for attempt, wait in enumerate(waits, start=1):
        backoff = 30 * 2 ** (attempt - 1)
        assert backoff * inbox.JITTER_LOW - 1 <= wait <= backoff


def test_max_attempts_marks_failed(make_runtime, recorder, clock, caplog):
    runtime = make_runtime(
        clock=clock, webhooks={"max_attempts": 2, "retry_base_seconds": 1}
    )
    entry_id = add_entry(runtime, 42)
    recorder.failures[42] = RuntimeError("reconcile crashed")

    first = inbox.process_due(runtime)
    clock.advance(seconds=5)
    with caplog.at_level(logging.ERROR, logger="bridge.inbox"):
        second = inbox.process_due(runtime)
    clock.advance(hours=1)
    third = inbox.process_due(runtime)

    assert first.retried == 1
    assert second.failed == 1
    assert third.claimed == 0
    failed = entry(runtime, entry_id)
    assert failed.status == InboxStatus.FAILED
    assert failed.attempts == 2
    assert failed.last_error == "RuntimeError: reconcile crashed"
    assert f"inbox entry {entry_id} for member 42 failed after 2 attempts" in (
        caplog.text
    )


def test_unexpected_error_logs_traceback(runtime, recorder, caplog):
    add_entry(runtime, 42)
    recorder.failures[42] = KeyError("missing")

    with caplog.at_level(logging.WARNING, logger="bridge.inbox"):
        inbox.process_due(runtime)

    [record] = caplog.records
    assert record.exc_info is not None


def test_one_failure_spares_others(runtime, recorder):
    failing = add_entry(runtime, 1)
    fine = add_entry(runtime, 2)
    recorder.failures[1] = ValueError("bad data for member 1")

    counts = inbox.process_due(runtime)

    assert recorder.calls == [1, 2]
    assert counts.retried == 1
    assert counts.done == 1
    assert not counts.wordpress_unavailable
    assert entry(runtime, failing).status == InboxStatus.PENDING
    assert entry(runtime, fine).status == InboxStatus.DONE


def test_wordpress_down_defers_batch(runtime, recorder, caplog):
    ids = [add_entry(runtime, member) for member in (1, 2, 3)]
    recorder.failures[1] = WordPressUnavailable("down")

    with caplog.at_level(logging.WARNING, logger="bridge.inbox"):
        counts = inbox.process_due(runtime)

    # Members 2 and 3 are not tried: each try would wait for a timeout.
    assert recorder.calls == [1]
    assert counts.retried == 3
    assert counts.wordpress_unavailable
    for entry_id in ids:
        deferred = entry(runtime, entry_id)
        assert deferred.status == InboxStatus.PENDING
        assert deferred.attempts == 1
        assert deferred.next_attempt_at > NAIVE_START
    assert f"deferred 2 more inbox entries without trying them (ids {ids[1]}, " in (
        caplog.text
    )


def test_statement_error_hides_parameters():
    error = sa.exc.OperationalError(
        "INSERT INTO x VALUES (%s)", ("ana@example.org",), Exception("gone away")
    )

    assert inbox.describe_error(error) == "Exception: gone away"


# Requeue and figures.


def test_retry_failed_requeues(runtime, recorder, clock):
    failed = add_entry(runtime, 42, status=InboxStatus.FAILED, attempts=50)
    other = add_entry(runtime, 43, body="{}", status=InboxStatus.FAILED, attempts=50)
    clock.advance(hours=1)

    count = inbox.retry_failed(runtime, ids=[failed])
    counts = inbox.process_due(runtime)

    assert count == 1
    assert counts.done == 1
    assert entry(runtime, failed).status == InboxStatus.DONE
    assert entry(runtime, other).status == InboxStatus.FAILED


def test_retry_failed_all(runtime, recorder):
    add_entry(runtime, 42, status=InboxStatus.FAILED, attempts=50)
    add_entry(runtime, 43, body="{}", status=InboxStatus.FAILED, attempts=50)
    add_entry(runtime, 44, body="[]", status=InboxStatus.DONE)

    count = inbox.retry_failed(runtime)

    assert count == 2
    assert statuses(runtime) == [
        InboxStatus.PENDING,
        InboxStatus.PENDING,
        InboxStatus.DONE,
    ]
    assert entry(runtime, 1).attempts == 0


def test_inbox_stats(runtime, clock):
    add_entry(runtime, 1, received_at=NAIVE_START - dt.timedelta(minutes=10))
    add_entry(runtime, 2, body="{}")
    add_entry(runtime, 3, body="[]", status=InboxStatus.FAILED)
    add_entry(runtime, 4, body="1", status=InboxStatus.DONE)

    stats = inbox.inbox_stats(runtime)

    assert stats.counts == {"pending": 2, "failed": 1}
    assert stats.oldest_pending_seconds == 600


def test_inbox_stats_empty(runtime):
    stats = inbox.inbox_stats(runtime)

    assert stats.counts == {"pending": 0, "failed": 0}
    assert stats.oldest_pending_seconds is None


# Concurrency.


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_workers_claim_disjoint(backend, request, make_runtime, recorder):
    state_url = shared_state_url(backend, request)
    runtimes = [make_runtime(state_url=state_url) for _ in range(4)]
    members = list(range(1, 121))
    for member in members:
        add_entry(runtimes[0], member)
    recorder.delay = 0.002
    barrier = threading.Barrier(len(runtimes))
    errors: list[BaseException] = []

    def work(runtime) -> None:
        try:
            barrier.wait()
            while inbox.process_due(runtime, limit=10).claimed:
                pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(rt,)) for rt in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(recorder.calls) == members
    assert statuses(runtimes[0]) == [InboxStatus.DONE] * len(members)
