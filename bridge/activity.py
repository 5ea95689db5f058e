"""Entries of the activity feed: what happened, to whom, in which program.

The feed is append-only. Entries are written in the same transaction as the change
they describe, so a rolled-back change leaves no entry behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bridge.models import Activity, ActivityType, utcnow

log = logging.getLogger(__name__)

# Activity.summary is VARCHAR(500); longer summaries are cut rather than rejected.
MAX_SUMMARY_LENGTH = 500


def record(
    session: Session,
    type: ActivityType,
    *,
    wp_user_id: int | None,
    program_id: int | None,
    cohort_id: int | None,
    coach_id: int | None,
    enrollment_id: int | None,
    actor_wp_user_id: int | None = None,
    summary: str = "",
    details: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Activity:
    """Add one feed entry to the session and return it (flushed with the session).

    ``occurred_at`` is a naive UTC instant and defaults to the current time.
    """
    entry = Activity(
        **activity_row(
            type,
            wp_user_id=wp_user_id,
            program_id=program_id,
            cohort_id=cohort_id,
            coach_id=coach_id,
            enrollment_id=enrollment_id,
            actor_wp_user_id=actor_wp_user_id,
            summary=summary,
            details=details,
            occurred_at=occurred_at,
        )
    )
    session.add(entry)
    return entry


def activity_row(
    type: ActivityType,
    *,
    wp_user_id: int | None,
    program_id: int | None,
    cohort_id: int | None,
    coach_id: int | None,
    enrollment_id: int | None,
    actor_wp_user_id: int | None = None,
    summary: str = "",
    details: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Build the column values of one feed entry, for ``record_many``."""
    return {
        "occurred_at": occurred_at or utcnow(),
        "type": ActivityType(type).value,
        "wp_user_id": wp_user_id,
        "program_id": program_id,
        "cohort_id": cohort_id,
        "coach_id": coach_id,
        "enrollment_id": enrollment_id,
        "actor_wp_user_id": actor_wp_user_id,
        "summary": summary[:MAX_SUMMARY_LENGTH],
        "details": dict(details) if details is not None else None,
    }


def record_many(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert feed entries built by ``activity_row`` in one statement; return the count.

    The insert goes through the session's connection, so it commits or rolls back
    with the rest of the transaction.
    """
    values = [dict(row) for row in rows]
    if not values:
        return 0

    session.execute(sa.insert(Activity.__table__), values)
    log.debug("recorded %d activity entries", len(values))
    return len(values)
