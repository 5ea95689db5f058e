"""Leases on scheduled jobs, stored in the job_locks table.

Every process of a deployment runs the same scheduler, so each job tick fires in
each of them. A job runs only in the process that takes the job's lease, and it
records the tick it completed so that a process firing late skips that tick.
Both steps are conditional UPDATE or INSERT statements, which are atomic on
SQLite (one writer at a time) and on MariaDB (row locks), so no advisory lock
or dialect-specific SQL is needed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from bridge.models import JobLock
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

HOLDER_MAX_LENGTH = 200


@dataclass(frozen=True)
class Lease:
    """A lease taken on a job: name, holder, expiry and tick."""

    name: str
    holder: str
    locked_until: dt.datetime
    tick: dt.datetime | None


def current_holder() -> str:
    """Return this thread's holder name: ``hostname:pid:thread id``."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    return holder[:HOLDER_MAX_LENGTH]


def naive_utc(instant: dt.datetime) -> dt.datetime:
    """Convert an aware instant to the naive UTC form the state tables store."""
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def stored_now(runtime: Runtime) -> dt.datetime:
    """Return the runtime's current instant as stored, in whole seconds.

    MariaDB DATETIME columns keep whole seconds, so a value compared later for
    equality must not carry microseconds.
    """
    return naive_utc(runtime.now()).replace(microsecond=0)


def acquire(
    runtime: Runtime,
    name: str,
    tick: dt.datetime | None = None,
    holder: str | None = None,
) -> Lease | None:
    """Take the lease on ``name``, or return None when it is held or the tick ran.

    A lease is free when it was never taken, was released, or has expired (an
    expired lease is taken over). With a ``tick`` (naive UTC), the lease is
    also not granted when that tick or a later one already ran to completion.
    """
    holder = holder or current_holder()
    now = stored_now(runtime)
    until = now + dt.timedelta(seconds=runtime.config.scheduler.lock_timeout_seconds)
    lease = Lease(name=name, holder=holder, locked_until=until, tick=tick)

    if _take_existing(runtime, lease, now):
        return lease
    if _insert_new(runtime, lease):
        return lease
    return None


def _take_existing(runtime: Runtime, lease: Lease, now: dt.datetime) -> bool:
    table = JobLock.__table__
    condition = sa.and_(
        table.c.name == lease.name,
        sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
    )
    if lease.tick is not None:
        condition = sa.and_(
            condition,
            sa.or_(table.c.last_tick.is_(None), table.c.last_tick < lease.tick),
        )
    statement = (
        sa.update(table)
        .where(condition)
        .values(holder=lease.holder, locked_until=lease.locked_until)
    )
    with runtime.db.engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def _insert_new(runtime: Runtime, lease: Lease) -> bool:
    # The conditional UPDATE matched nothing: either the row does not exist
    # yet, or the lease is held or the tick already ran. The INSERT succeeds
    # only in the first case, and a duplicate key means one of the others.
    statement = sa.insert(JobLock.__table__).values(
        name=lease.name, holder=lease.holder, locked_until=lease.locked_until
    )
    try:
        with runtime.db.engine.begin() as connection:
            connection.execute(statement)
    except sa.exc.IntegrityError:
        return False
    return True


def release(runtime: Runtime, lease: Lease, completed: bool = True) -> bool:
    """Release a lease, recording its tick when the job completed.

    Returns False when the lease had expired and another holder took it over,
    in which case nothing is written.
    """
    table = JobLock.__table__
    values: dict[str, object] = {
        "holder": None,
        "locked_until": None,
        "last_finished_at": stored_now(runtime),
    }
    if completed and lease.tick is not None:
        values["last_tick"] = lease.tick

    statement = (
        sa.update(table)
        .where(
            table.c.name == lease.name,
            table.c.holder == lease.holder,
            table.c.locked_until == lease.locked_until,
        )
        .values(**values)
    )
    with runtime.db.engine.begin() as connection:
        released = connection.execute(statement).rowcount == 1

    if not released:
        log.warning(
            "lease on job %s expired while %s held it, and another process "
            "took it over. Raise scheduler.lock_timeout_seconds above the "
            "job's run time",
            lease.name,
            lease.holder,
        )
    return released


@contextmanager
def job_lock(
    runtime: Runtime, name: str, tick: dt.datetime | None = None
) -> Iterator[Lease | None]:
    """Hold the lease on ``name`` for the block, yielding None when not acquired.

    The tick is recorded only when the block exits without an exception.
    """
    lease = acquire(runtime, name, tick)
    if lease is None:
        yield None
        return

    completed = False
    try:
        yield lease
        completed = True
    finally:
        release(runtime, lease, completed=completed)
