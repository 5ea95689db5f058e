"""Activity feed of the console."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bridge.auth import Actor
from bridge.console.common import (
    PageRequest,
    _name_of,
    console_activity,
    read_contacts,
    require_console,
)
from bridge.enrollment import naive_utc
from bridge.errors import InvalidRequest
from bridge.models import Activity, ActivityType, Program
from bridge.runtime import Runtime
from rules.calendar import site_day_start_utc

ACTIVITY_TYPES = tuple(member.value for member in ActivityType)


# Activity feed


@dataclass(frozen=True)
class FeedQuery(PageRequest):
    """Filters and page of the activity feed.

    Dates are site dates, both inclusive. A range whose start is after its end
    matches nothing.
    """

    types: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    program_id: int | None = None
    coach_id: int | None = None
    wp_user_id: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [kind for kind in self.types if kind not in ACTIVITY_TYPES]
        if unknown:
            raise InvalidRequest(
                f"invalid activity type {unknown[0]!r}: expected one of "
                + ", ".join(ACTIVITY_TYPES)
            )

    @property
    def empty_range(self) -> bool:
        return bool(self.date_from and self.date_to and self.date_from > self.date_to)


@dataclass(frozen=True)
class FeedEntry:
    """One activity entry with the names a reader needs."""

    id: int
    occurred_at: dt.datetime
    type: str
    wp_user_id: int | None
    client_name: str
    program_id: int | None
    program_title: str
    cohort_id: int | None
    coach_id: int | None
    enrollment_id: int | None
    actor_wp_user_id: int | None
    actor_name: str
    summary: str
    details: dict[str, Any] | None


@dataclass(frozen=True)
class FeedPage:
    """One page of the activity feed, newest first."""

    items: list[FeedEntry]
    page: int
    per_page: int
    has_next: bool


def list_activity(runtime: Runtime, actor: Actor, query: FeedQuery) -> FeedPage:
    """Return one page of the activity feed, newest first."""
    require_console(actor)
    if query.empty_range:
        return FeedPage([], query.page, query.per_page, False)

    conditions = _feed_conditions(runtime, actor, query)
    select = (
        sa.select(Activity, Program.title)
        .outerjoin(Program, Activity.program_id == Program.id)
        .where(*conditions)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(query.per_page + 1)
        .offset(query.offset)
    )
    with runtime.db.session() as session:
        rows = session.execute(select).all()

    has_next = len(rows) > query.per_page
    entries = feed_entries(runtime, rows[: query.per_page])
    return FeedPage(entries, query.page, query.per_page, has_next)


def _feed_conditions(
    runtime: Runtime, actor: Actor, query: FeedQuery
) -> list[sa.ColumnElement[bool]]:
    conditions = [console_activity(actor)]
    if query.types:
        conditions.append(Activity.type.in_(query.types))
    zone = runtime.site_zone()
    start = _day_start(query.date_from, zone)
    if start is not None:
        conditions.append(Activity.occurred_at >= start)
    end = _day_start(query.date_to, zone, days_after=1)
    if end is not None:
        conditions.append(Activity.occurred_at < end)
    if query.program_id is not None:
        conditions.append(Activity.program_id == query.program_id)
    if query.coach_id is not None:
        conditions.append(Activity.coach_id == query.coach_id)
    if query.wp_user_id is not None:
        conditions.append(Activity.wp_user_id == query.wp_user_id)
    return conditions


def _day_start(
    day: dt.date | None, zone: dt.tzinfo, days_after: int = 0
) -> dt.datetime | None:
    """Return the naive UTC start of a site day, or None for no bound.

    Days at the ends of the calendar, whose start is not a representable UTC
    instant, bound nothing.
    """
    if day is None:
        return None
    try:
        return naive_utc(site_day_start_utc(day + dt.timedelta(days=days_after), zone))
    except OverflowError:
        return None


def feed_entries(
    runtime: Runtime, rows: Sequence[tuple[Activity, str | None]]
) -> list[FeedEntry]:
    """Turn (entry, program title) rows into feed entries with user names."""
    ids = {entry.wp_user_id for entry, _ in rows if entry.wp_user_id is not None}
    ids |= {e.actor_wp_user_id for e, _ in rows if e.actor_wp_user_id is not None}
    users = read_contacts(runtime, ids)
    return [
        FeedEntry(
            id=entry.id,
            occurred_at=entry.occurred_at,
            type=entry.type,
            wp_user_id=entry.wp_user_id,
            client_name=_name_of(users, entry.wp_user_id),
            program_id=entry.program_id,
            program_title=title or "",
            cohort_id=entry.cohort_id,
            coach_id=entry.coach_id,
            enrollment_id=entry.enrollment_id,
            actor_wp_user_id=entry.actor_wp_user_id,
            actor_name=_name_of(users, entry.actor_wp_user_id),
            summary=entry.summary,
            details=entry.details,
        )
        for entry, title in rows
    ]
