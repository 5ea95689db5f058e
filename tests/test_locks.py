"""Job leases: one holder at a time, ticks run once, expired leases taken over."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
import sqlalchemy as sa

from bridge import locks
from bridge.models import JobLock

START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
TICK = dt.datetime(2025, 3, 10, 12, 0)
NEXT_TICK = dt.datetime(2025, 3, 10, 12, 15)
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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(make_runtime, clock):
    return make_runtime(clock=clock, scheduler={"lock_timeout_seconds": 60})


def lock_row(runtime, name: str) -> JobLock:
    with runtime.db.session() as session:
        return session.get_one(JobLock, name)


def test_first_acquire_creates_row(runtime):
    lease = locks.acquire(runtime, "reconcile", holder="host:1:1")

    assert lease is not None
    row = lock_row(runtime, "reconcile")
    assert row.holder == "host:1:1"
    assert row.locked_until == dt.datetime(2025, 3, 10, 12, 1)
    assert row.last_tick is None


def test_held_lease_refused(runtime):
    first = locks.acquire(runtime, "reconcile", holder="host:1:1")
    second = locks.acquire(runtime, "reconcile", holder="host:2:1")

    assert first is not None
    assert second is None
    assert lock_row(runtime, "reconcile").holder == "host:1:1"


def test_released_lease_acquired_again(runtime):
    first = locks.acquire(runtime, "reconcile", holder="host:1:1")
    released = locks.release(runtime, first)
    second = locks.acquire(runtime, "reconcile", holder="host:2:1")

    assert released
    assert second is not None
    assert lock_row(runtime, "reconcile").holder == "host:2:1"


def test_locks_are_per_name(runtime):
    assert locks.acquire(runtime, "reconcile") is not None
    assert locks.acquire(runtime, "inbox") is not None


def test_completed_tick_skipped(runtime):
    first = locks.acquire(runtime, "reconcile", TICK, holder="host:1:1")
    locks.release(runtime, first, completed=True)

    same_tick = locks.acquire(runtime, "reconcile", TICK, holder="host:2:1")
    next_tick = locks.acquire(runtime, "reconcile", NEXT_TICK, holder="host:2:1")

    assert same_tick is None
    assert next_tick is not None
    row = lock_row(runtime, "reconcile")
    assert row.last_tick == TICK
    assert row.last_finished_at == START.replace(tzinfo=None)


def test_failed_tick_can_run_again(runtime):
    first = locks.acquire(runtime, "reconcile", TICK, holder="host:1:1")
    locks.release(runtime, first, completed=False)

    again = locks.acquire(runtime, "reconcile", TICK, holder="host:2:1")

    assert again is not None
    assert lock_row(runtime, "reconcile").last_tick is None


def test_older_tick_skipped(runtime):
    lease = locks.acquire(runtime, "reconcile", NEXT_TICK)
    locks.release(runtime, lease)

    assert locks.acquire(runtime, "reconcile", TICK) is None


def test_expired_lease_taken_over(runtime, clock, caplog):
    stalled = locks.acquire(runtime, "reconcile", TICK, holder="host:1:1")
    clock.advance(seconds=61)

    takeover = locks.acquire(runtime, "reconcile", TICK, holder="host:2:1")
    with caplog.at_level(logging.WARNING, logger="bridge.locks"):
        late_release = locks.release(runtime, stalled)

    assert takeover is not None
    assert not late_release
    assert "lease on job reconcile expired while host:1:1 held it" in caplog.text
    row = lock_row(runtime, "reconcile")
    assert row.holder == "host:2:1"
    assert row.last_tick is None


def test_lease_not_taken_before_expiry(runtime, clock):
    locks.acquire(runtime, "reconcile", holder="host:1:1")
    clock.advance(seconds=59)

    assert locks.acquire(runtime, "reconcile", holder="host:2:1") is None


def test_job_lock_records_tick(runtime):
    with locks.job_lock(runtime, "inbox", TICK) as lease:
        assert lease is not None
        with locks.job_lock(runtime, "inbox", TICK) as nested:
            assert nested is None

    row = lock_row(runtime, "inbox")
    assert row.holder is None
    assert row.locked_until is None
    assert row.last_tick == TICK


def test_job_lock_error_releases_without_tick(runtime):
    with pytest.raises(RuntimeError), locks.job_lock(runtime, "inbox", TICK):
        raise RuntimeError("job failed")

    row = lock_row(runtime, "inbox")
    assert row.holder is None
    assert row.last_tick is None


def test_holder_names_host_process_thread():
    host, pid, thread = locks.current_holder().rsplit(":", 2)

    assert host
    assert int(pid) > 0
    assert int(thread) == threading.get_ident()


@pytest.mark.parametrize("backend", BACKENDS)
def test_racing_threads_run_tick_once(backend, request, make_runtime):
    state_url = shared_state_url(backend, request)
    # One runtime (engine and pool) per thread, as in separate processes.
    runtimes = [make_runtime(state_url=state_url) for _ in range(8)]
    barrier = threading.Barrier(len(runtimes))
    ran: list[int] = []
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        try:
            barrier.wait()
            with locks.job_lock(runtimes[index], "reconcile", TICK) as lease:
                if lease is not None:
                    ran.append(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(ran) == 1
    with runtimes[0].db.engine.connect() as connection:
        rows = connection.execute(sa.select(JobLock.__table__)).all()
    assert len(rows) == 1
    assert rows[0].last_tick == TICK


@pytest.mark.parametrize("backend", BACKENDS)
def test_racing_for_existing_row(backend, request, make_runtime):
    state_url = shared_state_url(backend, request)
    runtimes = [make_runtime(state_url=state_url) for _ in range(8)]
    earlier = locks.acquire(runtimes[0], "reconcile", TICK)
    locks.release(runtimes[0], earlier)
    barrier = threading.Barrier(len(runtimes))
    ran: list[int] = []

    def contend(index: int) -> None:
        barrier.wait()
        with locks.job_lock(runtimes[index], "reconcile", NEXT_TICK) as lease:
            if lease is not None:
                ran.append(index)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(ran) == 1
