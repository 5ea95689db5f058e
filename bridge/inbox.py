"""The webhook inbox: deliveries stored at intake and processed later.

A delivery is only a hint that a member changed. Processing re-reads WordPress
through ``reconcile_member``, so running it again is harmless but wasteful, and
entries of one member in one batch are coalesced into one reconcile.

Entry statuses:

- ``pending``: waiting for processing, or for a retry after a failed attempt.
- ``done``: the member was reconciled.
- ``ignored``: an event the service does not act on, or no member id.
- ``duplicate``: the same body was received within
  ``webhooks.duplicate_window_hours``, so the entry has no effect.
- ``failed``: ``webhooks.max_attempts`` attempts failed.

For ignored, duplicate and failed entries, ``last_error`` stores the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge.enrollment import reconcile_member
from bridge.locks import naive_utc, stored_now
from bridge.models import InboxEntry, InboxStatus
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)

inbox = InboxEntry.__table__

# How long a claimed batch stays reserved for the process that claimed it. It
# only matters when that process dies mid-batch: the entries become due again
# once the lease expires. A batch of 100 reconciles normally takes seconds.
LEASE_SECONDS = 300
REASON_MAX_LENGTH = 2000
# Retry delays are drawn between this fraction and all of the computed backoff,
# so that entries failed together do not all come due in the same tick.
JITTER_LOW = 0.75
# Log at most this many ids of entries deferred in bulk.
LOGGED_IDS_MAX = 20


@dataclass(frozen=True)
class Receipt:
    """The outcome of storing one delivery: its inbox id and status."""

    id: int
    status: InboxStatus
    duplicate_of: int | None = None


@dataclass
class ProcessCounts:
    """Figures of one ``process_due`` call."""

    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    ignored: int = 0
    duplicates: int = 0
    reconciled_members: int = 0
    wordpress_unavailable: bool = False

    def add(self, other: ProcessCounts) -> None:
        """Add another call's figures to these."""
        for name, value in asdict(other).items():
            if isinstance(value, bool):
                setattr(self, name, getattr(self, name) or value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int | bool]:
        """Return the figures as a plain mapping, for logs and JSON."""
        return asdict(self)


@dataclass(frozen=True)
class InboxStats:
    """Counts of pending and failed entries and the age of the oldest pending one."""

    counts: dict[str, int]
    oldest_pending_seconds: float | None


@dataclass(frozen=True)
class _Claimed:
    id: int
    wp_user_id: int | None
    attempts: int
    body_sha256: str
    received_at: dt.datetime


def body_digest(body: bytes) -> str:
    """Return the hex SHA-256 of a delivery body, the key for duplicates."""
    return hashlib.sha256(body).hexdigest()


def record_delivery(
    runtime: Runtime,
    event: str,
    body: bytes,
    member_id: int | None,
    actionable: bool,
) -> Receipt:
    """Store a delivery in one short transaction and return its receipt.

    The body must be UTF-8 (it was parsed as JSON). A body equal to one received
    within the duplicate window is stored as ``duplicate`` so that its effect
    does not run twice. Events that are not actionable and deliveries without a
    member id are stored as ``ignored``.
    """
    digest = body_digest(body)
    text = body.decode("utf-8")
    now = naive_utc(runtime.now())
    window = dt.timedelta(hours=runtime.config.webhooks.duplicate_window_hours)

    def store(session: Session) -> Receipt:
        duplicate_of = None
        if window:
            duplicate_of = _find_earlier(session, digest, now - window)
        status, reason = _intake_status(event, member_id, actionable, duplicate_of)
        finished = None if status is InboxStatus.PENDING else now
        result = session.execute(
            sa.insert(inbox).values(
                received_at=now,
                event=event[:100],
                body=text,
                body_sha256=digest,
                wp_user_id=member_id,
                status=status,
                attempts=0,
                next_attempt_at=now,
                last_error=reason,
                processed_at=finished,
            )
        )
        return Receipt(result.inserted_primary_key[0], status, duplicate_of)

    return runtime.db.run(store, "storing a webhook delivery")


def _find_earlier(session: Session, digest: str, since: dt.datetime) -> int | None:
    query = (
        sa.select(inbox.c.id)
        .where(inbox.c.body_sha256 == digest, inbox.c.received_at >= since)
        .order_by(inbox.c.id)
        .limit(1)
    )
    return session.execute(query).scalar()


def _intake_status(
    event: str, member_id: int | None, actionable: bool, duplicate_of: int | None
) -> tuple[InboxStatus, str | None]:
    if duplicate_of is not None:
        return InboxStatus.DUPLICATE, f"same body as inbox entry {duplicate_of}"
    if not actionable:
        return InboxStatus.IGNORED, f"event {event!r} does not change enrollments"
    if member_id is None:
        return InboxStatus.IGNORED, "no member id found in the delivery"
    return InboxStatus.PENDING, None


def process_due(runtime: Runtime, limit: int = 100) -> ProcessCounts:
    """Claim up to ``limit`` due entries, reconcile their members, record outcomes.

    Raises only when the state database fails. Claimed entries then stay leased
    for LEASE_SECONDS and are claimed again afterwards.
    """
    counts = ProcessCounts()
    now = naive_utc(runtime.now())
    # Whole seconds, because finishing compares the stored lease for equality
    # and MariaDB DATETIME columns drop fractions.
    lease_until = (now + dt.timedelta(seconds=LEASE_SECONDS)).replace(microsecond=0)

    claimed = _claim_due(runtime, limit, now, lease_until)
    counts.claimed = len(claimed)
    if not claimed:
        return counts

    claimed = _set_aside_unprocessable(runtime, claimed, lease_until, counts)
    groups = _group_by_member(claimed)
    for index, (member_id, entries) in enumerate(groups):
        try:
            reconcile_member(runtime, member_id)
        except WordPressUnavailable as error:
            counts.wordpress_unavailable = True
            _defer(runtime, entries, lease_until, error, counts)
            rest = [entry for _, later in groups[index + 1 :] for entry in later]
            _defer_rest(runtime, rest, lease_until, error, counts)
            break
        except Exception as error:
            _defer(runtime, entries, lease_until, error, counts)
            continue

        counts.reconciled_members += 1
        _finish(runtime, entries, lease_until, InboxStatus.DONE, None)
        counts.done += len(entries)
    return counts


def _claim_due(
    runtime: Runtime, limit: int, now: dt.datetime, lease_until: dt.datetime
) -> list[_Claimed]:
    claimable = sa.and_(
        inbox.c.status == InboxStatus.PENDING,
        inbox.c.next_attempt_at <= now,
        sa.or_(inbox.c.lease_until.is_(None), inbox.c.lease_until <= now),
    )
    candidates = (
        sa.select(inbox.c.id)
        .where(claimable)
        .order_by(inbox.c.next_attempt_at, inbox.c.id)
        .limit(limit)
    )

    def claim(session: Session) -> list[_Claimed]:
        ids = sorted(session.execute(candidates).scalars())
        won = []
        # Each UPDATE re-checks the lease under the row lock, so when two
        # processes pick the same candidates only one of them gets each row.
        # Ascending id order keeps their lock order the same (no deadlock).
        for entry_id in ids:
            update = (
                sa.update(inbox)
                .where(inbox.c.id == entry_id, claimable)
                .values(lease_until=lease_until)
            )
            if session.execute(update).rowcount == 1:
                won.append(entry_id)
        if not won:
            return []
        rows = session.execute(
            sa.select(
                inbox.c.id,
                inbox.c.wp_user_id,
                inbox.c.attempts,
                inbox.c.body_sha256,
                inbox.c.received_at,
            )
            .where(inbox.c.id.in_(won))
            .order_by(inbox.c.id)
        )
        return [_Claimed(*row) for row in rows]

    return runtime.db.run(claim, "claiming due inbox entries")


def _set_aside_unprocessable(
    runtime: Runtime,
    claimed: list[_Claimed],
    lease_until: dt.datetime,
    counts: ProcessCounts,
) -> list[_Claimed]:
    """Mark entries without a member id ignored and late duplicates duplicate.

    Intake catches most duplicates, but two equal bodies stored at the same
    moment can both be pending. Here the one with the lowest id wins.
    """
    without_member = [entry for entry in claimed if entry.wp_user_id is None]
    if without_member:
        reason = "no member id found in the delivery"
        _finish(runtime, without_member, lease_until, InboxStatus.IGNORED, reason)
        counts.ignored += len(without_member)

    with_member = [entry for entry in claimed if entry.wp_user_id is not None]
    earlier = _earlier_copies(runtime, with_member)
    for entry in with_member:
        if entry.id in earlier:
            reason = f"same body as inbox entry {earlier[entry.id]}"
            _finish(runtime, [entry], lease_until, InboxStatus.DUPLICATE, reason)
            counts.duplicates += 1
    return [entry for entry in with_member if entry.id not in earlier]


def _earlier_copies(runtime: Runtime, entries: list[_Claimed]) -> dict[int, int]:
    """Map each entry id to the id of an earlier entry with the same body."""
    hours = runtime.config.webhooks.duplicate_window_hours
    if not entries or not hours:
        return {}

    window = dt.timedelta(hours=hours)
    digests = {entry.body_sha256 for entry in entries}
    query = (
        sa.select(inbox.c.id, inbox.c.body_sha256, inbox.c.received_at)
        .where(inbox.c.body_sha256.in_(digests))
        .where(inbox.c.id < max(entry.id for entry in entries))
        .order_by(inbox.c.id)
    )
    with runtime.db.engine.connect() as connection:
        rows = connection.execute(query).all()

    earlier: dict[int, int] = {}
    for entry in entries:
        since = entry.received_at - window
        for row_id, digest, received_at in rows:
            if row_id >= entry.id:
                break
            if digest == entry.body_sha256 and received_at >= since:
                earlier[entry.id] = row_id
                break
    return earlier


def _group_by_member(claimed: list[_Claimed]) -> list[tuple[int, list[_Claimed]]]:
    groups: dict[int, list[_Claimed]] = defaultdict(list)
    for entry in claimed:
        groups[entry.wp_user_id].append(entry)  # type: ignore[index]
    return list(groups.items())


def _finish(
    runtime: Runtime,
    entries: list[_Claimed],
    lease_until: dt.datetime,
    status: InboxStatus,
    reason: str | None,
) -> None:
    ids = [entry.id for entry in entries]
    # The lease condition keeps a process whose lease expired (it was stalled
    # longer than LEASE_SECONDS) from overwriting a newer claim's outcome.
    update = (
        sa.update(inbox)
        .where(inbox.c.id.in_(ids), inbox.c.lease_until == lease_until)
        .values(
            status=status,
            lease_until=None,
            last_error=reason,
            processed_at=stored_now(runtime),
        )
    )
    runtime.db.run(lambda session: session.execute(update), "finishing inbox entries")


def retry_delay(runtime: Runtime, attempts: int) -> float:
    """Return the seconds to wait after ``attempts`` failed attempts, with jitter.

    The backoff doubles from webhooks.retry_base_seconds up to
    webhooks.retry_max_seconds; the delay is drawn between 75 % and 100 % of it.
    """
    settings = runtime.config.webhooks
    exponent = min(max(attempts - 1, 0), 60)
    backoff = min(settings.retry_base_seconds * 2**exponent, settings.retry_max_seconds)
    return backoff * runtime.rng.uniform(JITTER_LOW, 1.0)


def _defer(
    runtime: Runtime,
    entries: list[_Claimed],
    lease_until: dt.datetime,
    error: Exception,
    counts: ProcessCounts,
) -> None:
    reason = describe_error(error)
    outcomes = _record_failures(runtime, entries, lease_until, reason)
    max_attempts = runtime.config.webhooks.max_attempts
    trace = not isinstance(error, (WordPressUnavailable, sa.exc.DBAPIError))

    for entry, (attempt, delay) in zip(entries, outcomes, strict=True):
        if delay is None:
            counts.failed += 1
            log.error(
                "inbox entry %d for member %s failed after %d attempts, giving up "
                "(the scheduled full reconcile still repairs the member): %s",
                entry.id,
                entry.wp_user_id,
                attempt,
                reason,
            )
            continue
        counts.retried += 1
        log.warning(
            "inbox entry %d for member %s failed (attempt %d of %d), "
            "retrying in %.0fs: %s",
            entry.id,
            entry.wp_user_id,
            attempt,
            max_attempts,
            delay,
            reason,
            exc_info=error if trace else None,
        )


def _defer_rest(
    runtime: Runtime,
    entries: list[_Claimed],
    lease_until: dt.datetime,
    error: Exception,
    counts: ProcessCounts,
) -> None:
    """Defer the rest of a batch without trying it, because WordPress is down.

    Each entry counts one failed attempt, like the entry that was tried, so that
    backoff spreads the retries instead of trying every entry on every tick.
    """
    if not entries:
        return

    reason = describe_error(error)
    outcomes = _record_failures(runtime, entries, lease_until, reason)
    gave_up = [
        entry.id
        for entry, (_, delay) in zip(entries, outcomes, strict=True)
        if delay is None
    ]
    counts.failed += len(gave_up)
    counts.retried += len(entries) - len(gave_up)

    ids = [entry.id for entry in entries]
    listed = ", ".join(str(entry_id) for entry_id in ids[:LOGGED_IDS_MAX])
    more = f" and {len(ids) - LOGGED_IDS_MAX} more" if len(ids) > LOGGED_IDS_MAX else ""
    log.warning(
        "WordPress is unavailable: deferred %d more inbox entries without trying "
        "them (ids %s%s), each counted as a failed attempt: %s",
        len(ids),
        listed,
        more,
        reason,
    )
    if gave_up:
        log.error(
            "inbox entries %s reached webhooks.max_attempts and failed "
            "(the scheduled full reconcile still repairs their members)",
            ", ".join(str(entry_id) for entry_id in gave_up),
        )


def _record_failures(
    runtime: Runtime,
    entries: list[_Claimed],
    lease_until: dt.datetime,
    reason: str,
) -> list[tuple[int, float | None]]:
    """Count a failed attempt on each entry and return (attempt, delay) pairs.

    The delay is None for an entry that reached webhooks.max_attempts and is now
    ``failed``.
    """
    now = naive_utc(runtime.now())
    max_attempts = runtime.config.webhooks.max_attempts
    outcomes: list[tuple[int, float | None]] = []
    updates = []
    for entry in entries:
        attempt = entry.attempts + 1
        values: dict[str, object] = {
            "attempts": attempt,
            "lease_until": None,
            "last_error": reason,
        }
        if attempt >= max_attempts:
            values["status"] = InboxStatus.FAILED
            outcomes.append((attempt, None))
        else:
            delay = retry_delay(runtime, attempt)
            values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
            outcomes.append((attempt, delay))
        updates.append(
            sa.update(inbox)
            .where(inbox.c.id == entry.id, inbox.c.lease_until == lease_until)
            .values(**values)
        )

    def write(session: Session) -> None:
        for update in updates:
            session.execute(update)

    runtime.db.run(write, "recording failed inbox attempts")
    return outcomes


def describe_error(error: BaseException) -> str:
    """Return ``ClassName: message``, cut to fit the last_error column.

    For SQLAlchemy statement errors only the driver's error is kept, because
    the full text repeats the statement's parameters, which may be personal data.
    """
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        error = error.orig
    text = f"{type(error).__name__}: {error}"
    return text[:REASON_MAX_LENGTH]


def retry_failed(runtime: Runtime, ids: Iterable[int] | None = None) -> int:
    """Put failed entries back to pending with fresh attempts; return how many.

    With ``ids``, only those entries (if failed) are requeued.
    """
    now = naive_utc(runtime.now())
    update = (
        sa.update(inbox)
        .where(inbox.c.status == InboxStatus.FAILED)
        .values(
            status=InboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            processed_at=None,
        )
    )
    if ids is not None:
        update = update.where(inbox.c.id.in_(list(ids)))

    count = runtime.db.run(
        lambda session: session.execute(update).rowcount, "requeueing failed entries"
    )
    log.info("requeued %d failed inbox entries", count)
    return count


def inbox_stats(runtime: Runtime) -> InboxStats:
    """Count pending and failed entries and measure the oldest pending one.

    Only those two statuses are counted, because they use the status index and
    stay small, while done entries accumulate.
    """
    watched = [InboxStatus.PENDING, InboxStatus.FAILED]
    by_status = (
        sa.select(inbox.c.status, sa.func.count())
        .where(inbox.c.status.in_(watched))
        .group_by(inbox.c.status)
    )
    oldest = sa.select(sa.func.min(inbox.c.received_at)).where(
        inbox.c.status == InboxStatus.PENDING
    )
    with runtime.db.engine.connect() as connection:
        counts = {status.value: 0 for status in watched}
        for status, count in connection.execute(by_status):
            counts[InboxStatus(status).value] = count
        oldest_received = connection.execute(oldest).scalar()

    age = None
    if oldest_received is not None:
        now = naive_utc(runtime.now())
        age = max((now - oldest_received).total_seconds(), 0.0)
    return InboxStats(counts=counts, oldest_pending_seconds=age)
