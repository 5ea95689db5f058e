"""Queries and changes behind the admin and coach console.

Administrators see and change everything. A coach sees the clients of the
cohorts they lead now and changes nothing: lists are narrowed with
``visible_enrollments`` and the coach's cohorts, an object outside them raises
NotFound, and a change raises Forbidden. Users who are neither get NotFound.

Client names and emails are read from WordPress when a list is built and are
not copied into the state database, so they are never stale. A search asks
WordPress for the matching user ids first and then filters enrollments by them.
Sorting by name reads the names of every client in the filtered list, so it
costs one WordPress query per 1,000 clients (see bench/README.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy.orm import Session, selectinload

from bridge import activity
from bridge.auth import Actor, require_coach_or_admin, visible_enrollments
from bridge.enrollment import count_active, load_programs_by_membership, naive_utc
from bridge.enrollment import start_date_for as enrollment_start_date
from bridge.errors import (
    CoachbridgeError,
    Conflict,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from bridge.models import (
    Activity,
    ActivityType,
    Coach,
    Cohort,
    DueUnit,
    Enrollment,
    EnrollmentStatus,
    Habit,
    Milestone,
    Program,
    ProgramMembership,
)
from bridge.programs_file import (
    MAX_URL_LENGTH,
    SLUG_PATTERN,
    WEEKDAY_NAMES,
    CohortEntry,
    FileDate,
    HabitEntry,
    MilestoneEntry,
    _habit_keys,
    _habits,
    _milestone_keys,
    _milestones,
)
from bridge.runtime import Runtime
from rules.calendar import site_day_start_utc
from sync.reader import WordPressUnavailable, WPUser

log = logging.getLogger(__name__)

BodyModel = TypeVar("BodyModel", bound=BaseModel)
EntryModel = TypeVar("EntryModel", bound=BaseModel)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# Deeper pages are refused, so that an offset stays a small number.
MAX_PAGE = 1_000_000
# WordPress users read for one search. A search that matches more users than
# this is cut off there, and the result is marked as truncated.
SEARCH_USER_LIMIT = 500
# User ids per query when reading names and emails.
CONTACT_CHUNK = 5000
USER_PICKER_LIMIT = 20
MOST_ACTIVE_DAYS = 30
MOST_ACTIVE_LIMIT = 10
CLIENT_ACTIVITY_LIMIT = 20

# Sort keys of the client progress list, each with its default direction.
PROGRESS_SORTS = {
    "name": "asc",
    "program": "asc",
    "progress": "desc",
    "last_activity": "desc",
}
STATUS_FILTERS = ("active", "inactive", "all")
ACTIVITY_TYPES = tuple(member.value for member in ActivityType)

# A cell that starts with one of these is read as a formula by spreadsheet apps.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = (
    "Client",
    "Email",
    "WordPress user id",
    "Program",
    "Cohort",
    "Coach",
    "Status",
    "Progress (%)",
    "Off track",
    "Last activity (site time)",
    "Start date",
)


class Forbidden(CoachbridgeError):
    """Raised when the actor may see an object but not change it."""

    status = 403
    code = "forbidden"


# Access


def require_console(actor: Actor) -> None:
    """Raise NotFound unless the actor is an administrator or a coach."""
    require_coach_or_admin(actor)


def require_change(actor: Actor, change: str) -> None:
    """Raise NotFound for non-coaches and Forbidden for coaches who are not admins."""
    require_coach_or_admin(actor)
    if not actor.is_admin:
        raise Forbidden(f"only WordPress administrators can {change}")


def led_cohort_ids(actor: Actor) -> sa.Select:
    """Build a SELECT of the ids of the cohorts the actor leads."""
    return sa.select(Cohort.id).where(Cohort.coach_id == actor.coach_id)


def console_enrollments(actor: Actor) -> sa.ColumnElement[bool]:
    """Build the WHERE clause on ``Enrollment`` for console lists.

    Administrators get every enrollment. A coach gets those of the cohorts they
    lead, which is visible_enrollments without the coach's own enrollments as
    a client.
    """
    if actor.is_admin:
        return visible_enrollments(actor)
    return sa.and_(
        visible_enrollments(actor), Enrollment.cohort_id.in_(led_cohort_ids(actor))
    )


def console_activity(actor: Actor) -> sa.ColumnElement[bool]:
    """Build the WHERE clause on ``Activity`` for console feeds."""
    if actor.is_admin:
        return sa.true()
    enrollments = sa.select(Enrollment.id).where(console_enrollments(actor))
    return Activity.enrollment_id.in_(enrollments)


# WordPress


def read_users(runtime: Runtime, ids: Iterable[int]) -> dict[int, WPUser]:
    """Read WordPress users by id, raising Unavailable when WordPress is down."""
    wanted = set(ids)
    if not wanted:
        return {}
    try:
        return runtime.wordpress.users(wanted)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot read WordPress users: {error}") from error


@dataclass(frozen=True)
class Contact:
    """A WordPress user's display name and email."""

    name: str
    email: str


def read_contacts(runtime: Runtime, ids: Iterable[int]) -> dict[int, Contact]:
    """Read the display names and emails of WordPress users, CONTACT_CHUNK per query.

    Lists need nothing else, so this runs one SELECT on the users table per
    chunk. The reader's users() also reads usermeta and unserializes every
    user's roles, which sorting a whole program by name does not need.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    reader = runtime.wordpress
    users = reader.tables.users
    contacts: dict[int, Contact] = {}
    try:
        with reader.engine.connect() as connection:
            for start in range(0, len(wanted), CONTACT_CHUNK):
                chunk = wanted[start : start + CONTACT_CHUNK]
                select = sa.select(
                    users.c.ID, users.c.display_name, users.c.user_email
                ).where(users.c.ID.in_(chunk))
                for user_id, name, email in connection.execute(select):
                    contacts[int(user_id)] = Contact(name, email)
    except sa.exc.OperationalError as error:
        raise Unavailable(f"cannot read WordPress users: {error.orig}") from error
    return contacts


@dataclass(frozen=True)
class UserSearch:
    """The WordPress users whose login, email or name contains a text."""

    ids: list[int]
    # True when more users matched than SEARCH_USER_LIMIT and the rest were cut.
    truncated: bool


def search_user_ids(runtime: Runtime, text: str) -> UserSearch | None:
    """Find matching WordPress user ids, or return None for a blank search."""
    text = text.strip()
    if not text:
        return None
    try:
        users = runtime.wordpress.search_users(text, limit=SEARCH_USER_LIMIT)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot search WordPress users: {error}") from error
    return UserSearch([user.id for user in users], len(users) >= SEARCH_USER_LIMIT)


def _name_of(contacts: dict[int, Contact], wp_user_id: int | None) -> str:
    if wp_user_id is None:
        return ""
    contact = contacts.get(wp_user_id)
    return contact.name if contact else f"deleted user {wp_user_id}"


def _email_of(contacts: dict[int, Contact], wp_user_id: int) -> str:
    contact = contacts.get(wp_user_id)
    return contact.email if contact else ""


# Pagination


@dataclass(frozen=True)
class PageRequest:
    """A page number from 1 and a page size of at most MAX_PAGE_SIZE rows."""

    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.page <= MAX_PAGE:
            raise InvalidRequest(f"invalid page {self.page}: expected 1 to {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PAGE_SIZE:
            raise InvalidRequest(
                f"invalid per_page {self.per_page}: expected 1 to {MAX_PAGE_SIZE}"
            )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


# Client progress


@dataclass(frozen=True)
class ProgressQuery(PageRequest):
    """Filters, search, sort and page of the client progress list."""

    program_id: int | None = None
    coach_id: int | None = None
    cohort_id: int | None = None
    status: str = "active"
    off_track: bool | None = None
    search: str = ""
    sort: str = "last_activity"
    # "asc" or "desc"; None takes the sort key's default direction.
    order: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sort not in PROGRESS_SORTS:
            raise InvalidRequest(
                f"invalid sort {self.sort!r}: expected one of "
                + ", ".join(PROGRESS_SORTS)
            )
        if self.order not in (None, "asc", "desc"):
            raise InvalidRequest(f"invalid order {self.order!r}: expected asc or desc")
        if self.status not in STATUS_FILTERS:
            raise InvalidRequest(
                f"invalid status {self.status!r}: expected one of "
                + ", ".join(STATUS_FILTERS)
            )

    @property
    def descending(self) -> bool:
        return (self.order or PROGRESS_SORTS[self.sort]) == "desc"


@dataclass(frozen=True)
class ProgressRow:
    """One enrollment in the client progress list."""

    enrollment_id: int
    wp_user_id: int
    name: str
    email: str
    program_id: int
    program_title: str
    cohort_id: int
    cohort_name: str
    coach_id: int
    coach_name: str
    status: str
    progress_percent: int
    off_track: bool
    last_activity_at: dt.datetime | None
    start_date: dt.date


@dataclass(frozen=True)
class ProgressPage:
    """One page of the client progress list and the total number of rows."""

    items: list[ProgressRow]
    total: int
    page: int
    per_page: int
    search_truncated: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_progress(runtime: Runtime, actor: Actor, query: ProgressQuery) -> ProgressPage:
    """Return one page of client progress: filtered, searched and sorted."""
    require_console(actor)
    found = search_user_ids(runtime, query.search)
    truncated = found is not None and found.truncated
    if found is not None and not found.ids:
        return ProgressPage([], 0, query.page, query.per_page, truncated)

    conditions = _progress_conditions(actor, query, found)
    with runtime.db.session() as session:
        count = sa.select(sa.func.count()).select_from(Enrollment).where(*conditions)
        total = session.scalar(count) or 0
        if query.sort == "name":
            page_ids = _page_ids_by_name(runtime, session, conditions, query)
            rows = _rows_in_order(session, page_ids)
        else:
            select = _sorted_select(conditions, query)
            rows = session.execute(
                select.limit(query.per_page).offset(query.offset)
            ).all()
        labels = _cohort_labels(session, {row.cohort_id for row in rows})

    users = read_contacts(runtime, [row.wp_user_id for row in rows])
    items = [_progress_row(row, labels, users) for row in rows]
    return ProgressPage(items, total, query.page, query.per_page, truncated)


def export_progress(
    runtime: Runtime, actor: Actor, query: ProgressQuery
) -> list[ProgressRow]:
    """Return every row of the client progress list, ignoring the page."""
    require_console(actor)
    found = search_user_ids(runtime, query.search)
    if found is not None and not found.ids:
        return []

    conditions = _progress_conditions(actor, query, found)
    with runtime.db.session() as session:
        rows = session.execute(_sorted_select(conditions, query)).all()
        labels = _cohort_labels(session, {row.cohort_id for row in rows})
    users = read_contacts(runtime, [row.wp_user_id for row in rows])
    items = [_progress_row(row, labels, users) for row in rows]
    if query.sort == "name":
        items.sort(key=_name_sort_key, reverse=query.descending)
    return items


def _progress_conditions(
    actor: Actor, query: ProgressQuery, found: UserSearch | None
) -> list[sa.ColumnElement[bool]]:
    conditions = [console_enrollments(actor)]
    if query.program_id is not None:
        conditions.append(Enrollment.program_id == query.program_id)
    if query.cohort_id is not None:
        conditions.append(Enrollment.cohort_id == query.cohort_id)
    if query.coach_id is not None:
        coach_cohorts = sa.select(Cohort.id).where(Cohort.coach_id == query.coach_id)
        conditions.append(Enrollment.cohort_id.in_(coach_cohorts))
    if query.status != "all":
        conditions.append(Enrollment.status == EnrollmentStatus(query.status))
    if query.off_track is not None:
        conditions.append(Enrollment.off_track.is_(query.off_track))
    if found is not None:
        conditions.append(Enrollment.wp_user_id.in_(found.ids))
    return conditions


ENROLLMENT_COLUMNS = (
    Enrollment.id,
    Enrollment.wp_user_id,
    Enrollment.program_id,
    Enrollment.cohort_id,
    Enrollment.status,
    Enrollment.progress_percent,
    Enrollment.off_track,
    Enrollment.last_activity_at,
    Enrollment.start_date,
)


def _sorted_select(
    conditions: Sequence[sa.ColumnElement[bool]], query: ProgressQuery
) -> sa.Select:
    """Build the SELECT of the filtered enrollments in the query's order.

    Only the enrollments are read, and the program joined only when it is the
    sort key. Joined to cohorts and coaches, MariaDB joined every matching row
    before sorting: with the data of bench/console.py (45,001 active clients in
    the program, MariaDB 10.11, two shared cores) a page took about 160 ms
    instead of 45 ms. The few cohorts on a page are read by _cohort_labels.
    """
    select = sa.select(*ENROLLMENT_COLUMNS).where(*conditions)
    if query.sort == "program":
        select = select.join(Program, Enrollment.program_id == Program.id)
    return select.order_by(*_progress_order(query))


@dataclass(frozen=True)
class _CohortLabel:
    program_title: str
    cohort_name: str
    coach_id: int
    coach_name: str


def _cohort_labels(
    session: Session, cohort_ids: Collection[int]
) -> dict[int, _CohortLabel]:
    if not cohort_ids:
        return {}
    select = (
        sa.select(
            Cohort.id, Program.title, Cohort.name, Cohort.coach_id, Coach.display_name
        )
        .join(Program, Cohort.program_id == Program.id)
        .join(Coach, Cohort.coach_id == Coach.id)
        .where(Cohort.id.in_(cohort_ids))
    )
    return {
        cohort_id: _CohortLabel(program_title, name, coach_id, coach_name)
        for cohort_id, program_title, name, coach_id, coach_name in session.execute(
            select
        )
    }


def _progress_order(query: ProgressQuery) -> list[sa.ColumnElement[Any]]:
    def direction(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return column.desc() if query.descending else column.asc()

    if query.sort == "program":
        return [direction(Program.title), direction(Enrollment.id)]
    if query.sort == "progress":
        return [direction(Enrollment.progress_percent), direction(Enrollment.id)]
    if query.sort == "last_activity":
        # Clients without any activity come last in both directions. MySQL has
        # no NULLS LAST, so a CASE puts them there.
        never = sa.case((Enrollment.last_activity_at.is_(None), 1), else_=0)
        return [
            never,
            direction(Enrollment.last_activity_at),
            direction(Enrollment.id),
        ]
    return [direction(Enrollment.id)]


def _page_ids_by_name(
    runtime: Runtime,
    session: Session,
    conditions: Sequence[sa.ColumnElement[bool]],
    query: ProgressQuery,
) -> list[int]:
    """Sort the filtered enrollments by client name and return one page of ids."""
    pairs = session.execute(
        sa.select(Enrollment.id, Enrollment.wp_user_id).where(*conditions)
    ).all()
    users = read_contacts(runtime, [wp_user_id for _, wp_user_id in pairs])

    def key(pair: sa.Row) -> tuple[str, str, int]:
        enrollment_id, wp_user_id = pair
        return (
            _name_of(users, wp_user_id).casefold(),
            _email_of(users, wp_user_id).casefold(),
            enrollment_id,
        )

    ordered = sorted(pairs, key=key, reverse=query.descending)
    return [pair[0] for pair in ordered[query.offset : query.offset + query.per_page]]


def _rows_in_order(session: Session, page_ids: list[int]) -> list[sa.Row]:
    if not page_ids:
        return []
    select = sa.select(*ENROLLMENT_COLUMNS).where(Enrollment.id.in_(page_ids))
    rows = session.execute(select).all()
    position = {enrollment_id: index for index, enrollment_id in enumerate(page_ids)}
    return sorted(rows, key=lambda row: position[row.id])


def _progress_row(
    row: sa.Row, labels: dict[int, _CohortLabel], users: dict[int, Contact]
) -> ProgressRow:
    label = labels[row.cohort_id]
    return ProgressRow(
        enrollment_id=row.id,
        wp_user_id=row.wp_user_id,
        name=_name_of(users, row.wp_user_id),
        email=_email_of(users, row.wp_user_id),
        program_id=row.program_id,
        program_title=label.program_title,
        cohort_id=row.cohort_id,
        cohort_name=label.cohort_name,
        coach_id=label.coach_id,
        coach_name=label.coach_name,
        status=EnrollmentStatus(row.status).value,
        progress_percent=row.progress_percent,
        off_track=row.off_track,
        last_activity_at=row.last_activity_at,
        start_date=row.start_date,
    )


def _name_sort_key(row: ProgressRow) -> tuple[str, str, int]:
    return (row.name.casefold(), row.email.casefold(), row.enrollment_id)


def progress_csv(rows: Iterable[ProgressRow], zone: dt.tzinfo) -> str:
    """Write progress rows as CSV text for spreadsheet apps.

    The text starts with a UTF-8 byte order mark, so that Excel reads the file
    as UTF-8, and uses CRLF line ends as RFC 4180 does. Text cells that a
    spreadsheet would run as a formula are prefixed with a single quote.
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        last_activity = ""
        if row.last_activity_at is not None:
            local = row.last_activity_at.replace(tzinfo=dt.UTC).astimezone(zone)
            last_activity = local.strftime("%Y-%m-%d %H:%M")
        writer.writerow(
            [
                spreadsheet_text(row.name),
                spreadsheet_text(row.email),
                row.wp_user_id,
                spreadsheet_text(row.program_title),
                spreadsheet_text(row.cohort_name),
                spreadsheet_text(row.coach_name),
                row.status,
                row.progress_percent,
                "yes" if row.off_track else "no",
                last_activity,
                row.start_date.isoformat(),
            ]
        )
    return buffer.getvalue()


def spreadsheet_text(value: str) -> str:
    """Return text that a spreadsheet shows as text, never runs as a formula."""
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


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


# Request bodies

# The bodies below are checked exactly as bridge/openapi/admin.json describes
# them, so that a request is rejected with 400 if and only if the document
# calls it invalid. Rules that depend on stored data answer 404 or 409.
MAX_ID = 2**63 - 1
# Limits that keep dates computed from a program inside the calendar.
MAX_DURATION_AMOUNT = 10_000
MAX_DAYS = 36_500
MAX_CAPACITY = 1_000_000
MAX_DESCRIPTION_LENGTH = 10_000
# The characters that str.strip() removes. A title may not start or end with
# one, so it is stored as sent, and its length limit means what it says.
WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000"
)
TITLE_PATTERN = rf"^[^{WHITESPACE}](?:[\s\S]*[^{WHITESPACE}])?$"
# An http or https address with an ASCII host and no spaces: stricter than the
# programs file's check, which it passes.
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][!-~]*)?$"
WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

ApiId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
ApiTitle = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=TITLE_PATTERN)
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)]
BookingUrl = Annotated[
    str, StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)
]
Amount = Annotated[StrictInt, Field(ge=1, le=MAX_DURATION_AMOUNT)]
Days = Annotated[StrictInt, Field(ge=0, le=MAX_DAYS)]
Capacity = Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Fields that may be left out but not sent as null.
    _not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls._not_null:
                if name in data and data[name] is None:
                    raise ValueError(f"{name} may be left out but not null")
        return data


class MilestoneInput(_Body):
    """A milestone: due a number of days, weeks or months after the start."""

    title: ApiTitle
    description: Description = ""
    due_amount: Annotated[StrictInt, Field(ge=0, le=MAX_DURATION_AMOUNT)]
    due_unit: DueUnit

    def entry(self) -> MilestoneEntry:
        """Return the milestone as a programs file's entry."""
        return _entry(MilestoneEntry, self.model_dump())


class HabitInput(_Body):
    """A habit: a schedule, an offset from the start and a length."""

    title: ApiTitle
    description: Description = ""
    schedule: Literal["daily", "weekdays", "interval"]
    weekdays: list[WEEKDAY] = []
    every_days: Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)] | None = None
    start_offset_days: Days = 0
    length_amount: Amount
    length_unit: DueUnit

    _not_null = ("weekdays",)

    def entry(self) -> HabitEntry:
        """Return the habit as a programs file's entry, which checks the schedule."""
        return _entry(HabitEntry, self.model_dump())


class ProgramInput(_Body):
    """A new program: settings, memberships and content, without cohorts."""

    slug: Slug
    title: ApiTitle
    description: Description = ""
    messaging_enabled: StrictBool = True
    memberships: list[ApiId] = []
    milestones: list[MilestoneInput] = []
    habits: list[HabitInput] = []

    @model_validator(mode="after")
    def _check_entries(self) -> ProgramInput:
        _require_unique_memberships(self.memberships)
        _check_habits(self.habits)
        return self


class ProgramChanges(_Body):
    """Changes to a program. A field left out keeps its value."""

    title: ApiTitle | None = None
    description: Description | None = None
    messaging_enabled: StrictBool | None = None
    memberships: list[ApiId] | None = None
    milestones: list[MilestoneInput] | None = None
    habits: list[HabitInput] | None = None

    _not_null = (
        "title",
        "description",
        "messaging_enabled",
        "memberships",
        "milestones",
        "habits",
    )

    @model_validator(mode="after")
    def _check_entries(self) -> ProgramChanges:
        _require_unique_memberships(self.memberships or [])
        _check_habits(self.habits or [])
        return self


class DuplicateInput(_Body):
    """The slug and optional title of a program's copy."""

    slug: Slug
    title: ApiTitle | None = None

    _not_null = ("title",)


class CohortInput(_Body):
    """A new cohort, with the fields of a programs file's cohort."""

    name: ApiTitle
    type: Literal["rolling", "fixed"] = "rolling"
    start_date: FileDate | None = None
    coach: ApiId
    capacity: Capacity | None = None
    open: StrictBool = True
    appointments: StrictBool = False
    booking_url: BookingUrl | None = None

    _not_null = ("type", "open", "appointments")

    @model_validator(mode="after")
    def _check_rules(self) -> CohortInput:
        self.entry()
        return self

    def entry(self) -> CohortEntry:
        """Return the cohort as a programs file's entry, which checks its rules."""
        return _entry(CohortEntry, self.model_dump())


class CohortChanges(_Body):
    """Changes to a cohort. A field left out keeps its value."""

    name: ApiTitle | None = None
    type: Literal["rolling", "fixed"] | None = None
    start_date: FileDate | None = None
    coach: ApiId | None = None
    capacity: Capacity | None = None
    open: StrictBool | None = None
    appointments: StrictBool | None = None
    booking_url: BookingUrl | None = None

    _not_null = ("name", "type", "coach", "open", "appointments")


class CoachInput(_Body):
    """A WordPress user to register as a coach."""

    wp_user_id: ApiId


class CohortChoice(_Body):
    """The cohort a client is added to or moved into."""

    cohort_id: ApiId


def _require_unique_memberships(memberships: Sequence[int]) -> None:
    if len(set(memberships)) != len(memberships):
        raise ValueError("duplicate membership ids in memberships")


def _check_habits(habits: Sequence[HabitInput]) -> None:
    for habit in habits:
        habit.entry()


def _entry(model: type[EntryModel], values: dict[str, Any]) -> EntryModel:
    """Validate values with a programs file model, raising ValueError on a problem.

    Inside a pydantic validator a ValueError becomes a validation error of the
    request, so its message reaches the caller.
    """
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = [
            str(problem["msg"]).removeprefix("Value error, ")
            for problem in error.errors(include_url=False)
        ]
        raise ValueError("; ".join(problems)) from None


def parse_body(model: type[BodyModel], data: Any) -> BodyModel:
    """Validate a request body against a model, raising InvalidRequest."""
    if not isinstance(data, dict):
        raise InvalidRequest("invalid request body: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(describe_validation(error)) from None


def describe_validation(error: ValidationError) -> str:
    """Describe each problem of a validation error with its location."""
    problems = []
    for problem in error.errors(include_url=False):
        where = ", ".join(
            f"item {part + 1}" if isinstance(part, int) else str(part)
            for part in problem["loc"]
        )
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{where or 'body'}: {message}")
    return "invalid request: " + "; ".join(problems)


# Programs: results


@dataclass(frozen=True)
class MembershipRef:
    """A MemberPress membership a program is offered to."""

    id: int
    title: str


@dataclass(frozen=True)
class CohortInfo:
    """A cohort with its coach and the number of active clients in it."""

    id: int
    program_id: int
    program_title: str
    name: str
    type: str
    start_date: dt.date | None
    coach_id: int
    coach_wp_user_id: int
    coach_name: str
    capacity: int | None
    open: bool
    appointments: bool
    booking_url: str | None
    active_clients: int

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.active_clients >= self.capacity


@dataclass(frozen=True)
class ProgramSummary:
    """A program in the programs list, with counts."""

    id: int
    slug: str
    title: str
    milestones: int
    habits: int
    cohorts: int
    memberships: list[int]
    enrollments: int
    active_clients: int


@dataclass(frozen=True)
class ProgramDetail:
    """A program with its content, memberships and cohorts."""

    id: int
    slug: str
    title: str
    description: str
    messaging_enabled: bool
    memberships: list[MembershipRef]
    milestones: list[dict[str, Any]]
    habits: list[dict[str, Any]]
    cohorts: list[CohortInfo]
    enrollments: int
    active_clients: int
    # The reason milestones and habits cannot change, or None when they can.
    lock_reason: str | None

    @property
    def locked(self) -> bool:
        return self.lock_reason is not None


def list_programs(runtime: Runtime, actor: Actor) -> list[ProgramSummary]:
    """Return the programs the actor may see, by title, with counts."""
    require_console(actor)
    select = (
        sa.select(Program)
        .options(
            selectinload(Program.milestones),
            selectinload(Program.habits),
            selectinload(Program.cohorts),
            selectinload(Program.memberships),
        )
        .order_by(Program.title, Program.id)
    )
    if not actor.is_admin:
        led = sa.select(Cohort.program_id).where(Cohort.coach_id == actor.coach_id)
        select = select.where(Program.id.in_(led))

    with runtime.db.session() as session:
        programs = session.scalars(select).all()
        counts = _enrollment_counts(session, actor)
        return [_program_summary(program, actor, counts) for program in programs]


def _enrollment_counts(session: Session, actor: Actor) -> dict[int, dict[str, int]]:
    select = (
        sa.select(Enrollment.program_id, Enrollment.status, sa.func.count())
        .where(console_enrollments(actor))
        .group_by(Enrollment.program_id, Enrollment.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for program_id, status, count in session.execute(select):
        counts.setdefault(program_id, {})[EnrollmentStatus(status).value] = count
    return counts


def _program_summary(
    program: Program, actor: Actor, counts: dict[int, dict[str, int]]
) -> ProgramSummary:
    by_status = counts.get(program.id, {})
    cohorts = [c for c in program.cohorts if actor.is_admin or _leads(actor, c)]
    return ProgramSummary(
        id=program.id,
        slug=program.slug,
        title=program.title,
        milestones=len(program.milestones),
        habits=len(program.habits),
        cohorts=len(cohorts),
        memberships=sorted(row.membership_id for row in program.memberships),
        enrollments=sum(by_status.values()),
        active_clients=by_status.get("active", 0),
    )


def _leads(actor: Actor, cohort: Cohort) -> bool:
    return actor.coach_id is not None and cohort.coach_id == actor.coach_id


def program_detail(runtime: Runtime, actor: Actor, program_id: int) -> ProgramDetail:
    """Return a program the actor may see, or raise NotFound.

    A coach sees the programs in which they lead a cohort, with those cohorts
    only.
    """
    require_console(actor)
    titles = membership_titles(runtime)
    with runtime.db.session() as session:
        program = _load_program(session, program_id)
        cohorts = [c for c in program.cohorts if actor.is_admin or _leads(actor, c)]
        if not cohorts and not actor.is_admin:
            raise NotFound(f"program {program_id} not found")
        enrollments = _count_enrollments(session, program.id)
        active = count_active(session, [c.id for c in program.cohorts])
        return ProgramDetail(
            id=program.id,
            slug=program.slug,
            title=program.title,
            description=program.description,
            messaging_enabled=program.messaging_enabled,
            memberships=[
                MembershipRef(row.membership_id, titles.get(row.membership_id, ""))
                for row in sorted(program.memberships, key=lambda r: r.membership_id)
            ],
            milestones=[milestone_json(row) for row in program.milestones],
            habits=[habit_json(row) for row in program.habits],
            cohorts=[cohort_info(c, active) for c in cohorts],
            enrollments=enrollments,
            active_clients=sum(active.get(c.id, 0) for c in cohorts),
            lock_reason=lock_reason(program, enrollments),
        )


def lock_reason(program: Program, enrollments: int) -> str | None:
    """Explain why a program's milestones and habits are locked, or return None."""
    if enrollments == 0:
        return None
    clients = "1 enrollment" if enrollments == 1 else f"{enrollments} enrollments"
    return (
        f"The milestones and habits of program {program.slug!r} are locked because "
        f"it has {clients} (active or not), whose ticks and progress refer to them. "
        "Duplicate the program and change the copy instead; its title, "
        "description, memberships and cohorts can still change."
    )


def milestone_json(row: Milestone) -> dict[str, Any]:
    """Describe a milestone with the fields of a programs file."""
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "due_amount": row.due_amount,
        "due_unit": str(row.due_unit),
    }


def habit_json(row: Habit) -> dict[str, Any]:
    """Describe a habit with the fields of a programs file."""
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "schedule": str(row.schedule),
        "weekdays": [
            name for day, name in enumerate(WEEKDAY_NAMES) if row.weekdays & (1 << day)
        ],
        "every_days": row.interval_days,
        "start_offset_days": row.start_offset_days,
        "length_amount": row.length_amount,
        "length_unit": str(row.length_unit),
    }


def cohort_info(cohort: Cohort, active: dict[int, int]) -> CohortInfo:
    """Describe a cohort; ``active`` maps cohort ids onto active client counts."""
    return CohortInfo(
        id=cohort.id,
        program_id=cohort.program_id,
        program_title=cohort.program.title,
        name=cohort.name,
        type=str(cohort.kind),
        start_date=cohort.start_date,
        coach_id=cohort.coach_id,
        coach_wp_user_id=cohort.coach.wp_user_id,
        coach_name=cohort.coach.display_name,
        capacity=cohort.capacity,
        open=cohort.is_open,
        appointments=cohort.appointments_enabled,
        booking_url=cohort.booking_url,
        active_clients=active.get(cohort.id, 0),
    )


def membership_titles(runtime: Runtime) -> dict[int, str]:
    """Map MemberPress membership ids onto their titles, trashed ones included."""
    if runtime.wordpress_reader is None:
        return {}
    try:
        memberships = runtime.wordpress_reader.memberships(include_trash=True)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot read MemberPress memberships: {error}") from error
    return {membership.id: membership.title for membership in memberships}


@dataclass(frozen=True)
class MembershipChoice:
    """A MemberPress membership for the program form's picker."""

    id: int
    title: str
    status: str
    program_ids: list[int]


def list_memberships(runtime: Runtime, actor: Actor) -> list[MembershipChoice]:
    """Return MemberPress memberships with the programs each one is offered to."""
    require_change(actor, "list memberships")
    try:
        memberships = runtime.wordpress.memberships()
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot read MemberPress memberships: {error}") from error
    with runtime.db.session() as session:
        programs = load_programs_by_membership(session)
    return [
        MembershipChoice(m.id, m.title, m.status, sorted(programs.get(m.id, ())))
        for m in memberships
    ]


def _load_program(session: Session, program_id: int) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound(f"program {program_id} not found")
    return program


def _count_enrollments(session: Session, program_id: int) -> int:
    select = sa.select(sa.func.count()).where(Enrollment.program_id == program_id)
    return session.scalar(select) or 0


# Programs: changes


def create_program(runtime: Runtime, actor: Actor, body: ProgramInput) -> int:
    """Create a program with its content and memberships; return its id.

    Raises Conflict when the slug is taken or MemberPress does not have one of
    the memberships.
    """
    require_change(actor, "create programs")
    _check_memberships(runtime, body.memberships)

    def work(session: Session) -> int:
        _require_free_slug(session, body.slug)
        program = Program(
            slug=body.slug,
            title=body.title,
            description=body.description,
            messaging_enabled=body.messaging_enabled,
        )
        program.memberships = [
            ProgramMembership(membership_id=m) for m in body.memberships
        ]
        program.milestones = _milestones([item.entry() for item in body.milestones])
        program.habits = _habits([item.entry() for item in body.habits])
        session.add(program)
        session.flush()
        return program.id

    program_id = _write(runtime, work, f"create program {body.slug}")
    log.info("user %s created program %s (%s)", actor.wp_user_id, program_id, body.slug)
    return program_id


def update_program(
    runtime: Runtime, actor: Actor, program_id: int, changes: ProgramChanges
) -> None:
    """Change a program's settings, memberships or content.

    Raises Conflict with the reason when the milestones or habits would change
    while the program has enrollments.
    """
    require_change(actor, "change programs")
    if changes.memberships is not None:
        _check_memberships(runtime, changes.memberships)

    def work(session: Session) -> None:
        program = _load_program(session, program_id)
        _change_content(session, program, changes)
        for name in ("title", "description", "messaging_enabled"):
            value = getattr(changes, name)
            if value is not None:
                setattr(program, name, value)
        if changes.memberships is not None:
            _replace_memberships(program, changes.memberships)

    _write(runtime, work, f"update program {program_id}")
    log.info("user %s changed program %s", actor.wp_user_id, program_id)


def _change_content(
    session: Session, program: Program, changes: ProgramChanges
) -> None:
    milestones = None
    if changes.milestones is not None:
        milestones = [item.entry() for item in changes.milestones]
        if _milestone_keys(program.milestones) == [m.key() for m in milestones]:
            milestones = None
    habits = None
    if changes.habits is not None:
        habits = [item.entry() for item in changes.habits]
        if _habit_keys(program.habits) == [h.key() for h in habits]:
            habits = None
    if milestones is None and habits is None:
        return

    reason = lock_reason(program, _count_enrollments(session, program.id))
    if reason is not None:
        raise Conflict(reason)
    if milestones is not None:
        program.milestones = _milestones(milestones)
    if habits is not None:
        program.habits = _habits(habits)


def _replace_memberships(program: Program, wanted: Collection[int]) -> None:
    current = {row.membership_id for row in program.memberships}
    kept = [row for row in program.memberships if row.membership_id in wanted]
    added = [ProgramMembership(membership_id=m) for m in sorted(set(wanted) - current)]
    program.memberships = kept + added


def delete_program(runtime: Runtime, actor: Actor, program_id: int) -> None:
    """Delete a program without enrollments, with its content and cohorts.

    Raises Conflict when the program has an enrollment, active or not, because
    the client's history refers to it.
    """
    require_change(actor, "delete programs")

    def work(session: Session) -> str:
        program = _load_program(session, program_id)
        enrollments = _count_enrollments(session, program.id)
        if enrollments:
            raise Conflict(
                f"program {program.slug!r} cannot be deleted because it has "
                f"{enrollments} enrollments (active or not), whose history refers "
                "to it. Remove its memberships and close its cohorts instead, so "
                "that nobody new joins."
            )
        for cohort in list(program.cohorts):
            session.delete(cohort)
        session.flush()
        session.delete(program)
        return program.slug

    slug = _write(runtime, work, f"delete program {program_id}")
    log.info("user %s deleted program %s (%s)", actor.wp_user_id, program_id, slug)


def duplicate_program(
    runtime: Runtime, actor: Actor, program_id: int, body: DuplicateInput
) -> int:
    """Copy a program's settings, milestones and habits under a new slug.

    Memberships are not copied: a membership offered to both programs would
    enroll its members in the copy at the next reconcile. Cohorts are not
    copied either. Returns the new program's id.
    """
    require_change(actor, "duplicate programs")

    def work(session: Session) -> int:
        source = _load_program(session, program_id)
        _require_free_slug(session, body.slug)
        copy = Program(
            slug=body.slug,
            title=body.title or f"{source.title} (copy)"[:200],
            description=source.description,
            messaging_enabled=source.messaging_enabled,
        )
        copy.milestones = [_copy_row(Milestone, row) for row in source.milestones]
        copy.habits = [_copy_row(Habit, row) for row in source.habits]
        session.add(copy)
        session.flush()
        return copy.id

    copy_id = _write(runtime, work, f"duplicate program {program_id}")
    log.info(
        "user %s copied program %s to %s (%s)",
        actor.wp_user_id,
        program_id,
        copy_id,
        body.slug,
    )
    return copy_id


def _copy_row(model: type[Milestone] | type[Habit], row: Milestone | Habit) -> Any:
    skipped = {"id", "program_id"}
    values = {
        column.key: getattr(row, column.key)
        for column in model.__table__.columns
        if column.key not in skipped
    }
    return model(**values)


def _require_free_slug(session: Session, slug: str) -> None:
    taken = session.scalar(sa.select(Program.id).where(Program.slug == slug))
    if taken is not None:
        raise Conflict(
            f"a program with slug {slug!r} already exists (program {taken}); "
            "choose another slug"
        )


def _check_memberships(runtime: Runtime, membership_ids: Collection[int]) -> None:
    if not membership_ids or runtime.wordpress_reader is None:
        return
    known = membership_titles(runtime)
    unknown = sorted(set(membership_ids) - set(known))
    if unknown:
        listed = ", ".join(str(m) for m in unknown)
        raise Conflict(
            f"MemberPress has no membership {listed}; reload the membership list"
        )


def _write(runtime: Runtime, work: Any, what: str) -> Any:
    """Run a change in one transaction, reporting a lost race as Conflict."""
    try:
        return runtime.db.run(work, what)
    except sa.exc.IntegrityError as error:
        log.warning("%s failed: %s", what, error.orig)
        raise Conflict(
            f"{what} failed because the same object was changed at the same time; "
            "reload the page and try again"
        ) from None


# Cohorts


def add_cohort(
    runtime: Runtime, actor: Actor, program_id: int, body: CohortInput
) -> int:
    """Add a cohort to a program, even a locked one; return its id.

    Raises NotFound for an unknown program and Conflict when the name is taken
    or the coach is not registered.
    """
    require_change(actor, "add cohorts")
    entry = body.entry()

    def work(session: Session) -> int:
        program = _load_program(session, program_id)
        _require_free_cohort_name(session, program.id, entry.name, None)
        coach = _registered_coach(session, entry.coach)
        cohort = Cohort(
            program_id=program.id, name=entry.name, **entry.values(coach.id)
        )
        session.add(cohort)
        session.flush()
        return cohort.id

    cohort_id = _write(runtime, work, f"add a cohort to program {program_id}")
    log.info(
        "user %s added cohort %s to program %s",
        actor.wp_user_id,
        cohort_id,
        program_id,
    )
    return cohort_id


def update_cohort(
    runtime: Runtime, actor: Actor, cohort_id: int, changes: CohortChanges
) -> None:
    """Change a cohort's fields; the result is checked as a programs file's cohort."""
    require_change(actor, "change cohorts")

    def work(session: Session) -> None:
        cohort = session.get(Cohort, cohort_id)
        if cohort is None:
            raise NotFound(f"cohort {cohort_id} not found")
        entry = _changed_cohort_entry(cohort, changes)
        _require_free_cohort_name(session, cohort.program_id, entry.name, cohort.id)
        coach = _registered_coach(session, entry.coach)
        cohort.name = entry.name
        for name, value in entry.values(coach.id).items():
            setattr(cohort, name, value)

    _write(runtime, work, f"update cohort {cohort_id}")
    log.info("user %s changed cohort %s", actor.wp_user_id, cohort_id)


def _changed_cohort_entry(cohort: Cohort, changes: CohortChanges) -> CohortEntry:
    values: dict[str, Any] = {
        "name": cohort.name,
        "type": str(cohort.kind),
        "start_date": cohort.start_date,
        "coach": cohort.coach.wp_user_id,
        "capacity": cohort.capacity,
        "open": cohort.is_open,
        "appointments": cohort.appointments_enabled,
        "booking_url": cohort.booking_url,
    }
    given = changes.model_dump(exclude_unset=True)
    # A cohort that becomes rolling drops its start date unless one is given,
    # which CohortEntry then rejects with its own message. The combined fields
    # depend on the stored cohort, so a broken combination is a Conflict.
    if given.get("type") == "rolling" and "start_date" not in given:
        values["start_date"] = None
    values.update(given)
    try:
        return CohortEntry.model_validate(values)
    except ValidationError as error:
        raise Conflict(
            "the changes would make the cohort invalid: "
            + describe_validation(error).removeprefix("invalid request: ")
        ) from None


def _require_free_cohort_name(
    session: Session, program_id: int, name: str, cohort_id: int | None
) -> None:
    select = sa.select(Cohort.id).where(
        Cohort.program_id == program_id, Cohort.name == name
    )
    taken = session.scalar(select)
    if taken is not None and taken != cohort_id:
        raise Conflict(
            f"the program already has a cohort named {name!r} (cohort {taken}); "
            "choose another name"
        )


def _registered_coach(session: Session, wp_user_id: int) -> Coach:
    coach = session.scalar(sa.select(Coach).where(Coach.wp_user_id == wp_user_id))
    if coach is None:
        raise Conflict(
            f"WordPress user {wp_user_id} is not a registered coach; register them "
            "under Coaches first"
        )
    return coach


def list_cohorts(runtime: Runtime, actor: Actor) -> list[CohortInfo]:
    """Return every cohort the actor may see, by program title and cohort name."""
    require_console(actor)
    select = (
        sa.select(Cohort)
        .join(Program, Cohort.program_id == Program.id)
        .options(selectinload(Cohort.coach), selectinload(Cohort.program))
        .order_by(Program.title, Cohort.name, Cohort.id)
    )
    if not actor.is_admin:
        select = select.where(Cohort.coach_id == actor.coach_id)
    with runtime.db.session() as session:
        cohorts = session.scalars(select).all()
        active = count_active(session, [cohort.id for cohort in cohorts])
        return [cohort_info(cohort, active) for cohort in cohorts]


# Coaches


@dataclass(frozen=True)
class CoachSummary:
    """A registered coach with counts of cohorts and active clients."""

    id: int
    wp_user_id: int
    display_name: str
    email: str
    cohorts: int
    active_clients: int


@dataclass(frozen=True)
class ActiveClient:
    """A client of a coach with their number of activity entries in a period."""

    enrollment_id: int
    wp_user_id: int
    name: str
    email: str
    program_title: str
    cohort_name: str
    entries: int
    last_activity_at: dt.datetime | None


@dataclass(frozen=True)
class CoachDetail:
    """A coach, the cohorts they lead and their most active clients."""

    coach: CoachSummary
    cohorts: list[CohortInfo]
    most_active: list[ActiveClient]
    most_active_days: int


def list_coaches(runtime: Runtime, actor: Actor) -> list[CoachSummary]:
    """Return the registered coaches by name; a coach gets only themselves."""
    require_console(actor)
    select = sa.select(Coach).order_by(Coach.display_name, Coach.id)
    if not actor.is_admin:
        select = select.where(Coach.id == actor.coach_id)
    with runtime.db.session() as session:
        coaches = session.scalars(select).all()
        return _coach_summaries(session, coaches)


def _coach_summaries(session: Session, coaches: Sequence[Coach]) -> list[CoachSummary]:
    ids = [coach.id for coach in coaches]
    cohort_counts = dict(
        session.execute(
            sa.select(Cohort.coach_id, sa.func.count())
            .where(Cohort.coach_id.in_(ids))
            .group_by(Cohort.coach_id)
        ).all()
    )
    client_counts = dict(
        session.execute(
            sa.select(Cohort.coach_id, sa.func.count())
            .join(Enrollment, Enrollment.cohort_id == Cohort.id)
            .where(
                Cohort.coach_id.in_(ids),
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
            .group_by(Cohort.coach_id)
        ).all()
    )
    return [
        CoachSummary(
            id=coach.id,
            wp_user_id=coach.wp_user_id,
            display_name=coach.display_name,
            email=coach.email,
            cohorts=cohort_counts.get(coach.id, 0),
            active_clients=client_counts.get(coach.id, 0),
        )
        for coach in coaches
    ]


def coach_detail(runtime: Runtime, actor: Actor, coach_id: int) -> CoachDetail:
    """Return a coach's cohorts and most active clients, or raise NotFound.

    The most active clients are those in the coach's cohorts now with the most
    activity entries in the last MOST_ACTIVE_DAYS days.
    """
    require_console(actor)
    if not actor.is_admin and coach_id != actor.coach_id:
        raise NotFound(f"coach {coach_id} not found")

    since = naive_utc(runtime.now()) - dt.timedelta(days=MOST_ACTIVE_DAYS)
    with runtime.db.session() as session:
        coach = session.get(Coach, coach_id)
        if coach is None:
            raise NotFound(f"coach {coach_id} not found")
        summary = _coach_summaries(session, [coach])[0]
        cohorts = sorted(coach.cohorts, key=lambda c: (c.program.title, c.name, c.id))
        active = count_active(session, [cohort.id for cohort in cohorts])
        infos = [cohort_info(cohort, active) for cohort in cohorts]
        counted = _most_active(session, coach.id, since)

    users = read_contacts(runtime, [row.wp_user_id for row in counted])
    most_active = [
        ActiveClient(
            enrollment_id=row.id,
            wp_user_id=row.wp_user_id,
            name=_name_of(users, row.wp_user_id),
            email=_email_of(users, row.wp_user_id),
            program_title=row.program_title,
            cohort_name=row.cohort_name,
            entries=row.entries,
            last_activity_at=row.last_activity_at,
        )
        for row in counted
    ]
    return CoachDetail(summary, infos, most_active, MOST_ACTIVE_DAYS)


def _most_active(session: Session, coach_id: int, since: dt.datetime) -> list[sa.Row]:
    entries = sa.func.count(Activity.id).label("entries")
    select = (
        sa.select(
            Enrollment.id,
            Enrollment.wp_user_id,
            Enrollment.last_activity_at,
            Program.title.label("program_title"),
            Cohort.name.label("cohort_name"),
            entries,
        )
        .join(Activity, Activity.enrollment_id == Enrollment.id)
        .join(Cohort, Enrollment.cohort_id == Cohort.id)
        .join(Program, Enrollment.program_id == Program.id)
        .where(Cohort.coach_id == coach_id, Activity.occurred_at >= since)
        .group_by(
            Enrollment.id,
            Enrollment.wp_user_id,
            Enrollment.last_activity_at,
            Program.title,
            Cohort.name,
        )
        .order_by(entries.desc(), Enrollment.id)
        .limit(MOST_ACTIVE_LIMIT)
    )
    return list(session.execute(select).all())


def register_coach(
    runtime: Runtime, actor: Actor, wp_user_id: int
) -> tuple[CoachSummary, bool]:
    """Register an existing WordPress user as a coach.

    Returns the coach and whether it was created; registering a coach twice
    returns the existing one. Raises NotFound when WordPress has no such user.
    """
    require_change(actor, "register coaches")
    users = read_users(runtime, [wp_user_id])
    user = users.get(wp_user_id)
    if user is None:
        raise NotFound(f"WordPress user {wp_user_id} not found")

    def work(session: Session) -> tuple[int, bool]:
        coach = session.scalar(sa.select(Coach).where(Coach.wp_user_id == user.id))
        created = coach is None
        if coach is None:
            coach = Coach(wp_user_id=user.id)
            session.add(coach)
        coach.display_name = user.display_name[:250]
        coach.email = user.email[:100]
        session.flush()
        return coach.id, created

    coach_id, created = _write(runtime, work, f"register coach {wp_user_id}")
    if created:
        log.info(
            "user %s registered WordPress user %s as coach %s",
            actor.wp_user_id,
            wp_user_id,
            coach_id,
        )
    with runtime.db.session() as session:
        coach = session.get_one(Coach, coach_id)
        return _coach_summaries(session, [coach])[0], created


@dataclass(frozen=True)
class UserChoice:
    """A WordPress user found by a search, with their coach id if registered."""

    id: int
    login: str
    email: str
    display_name: str
    coach_id: int | None


def search_users(runtime: Runtime, actor: Actor, text: str) -> list[UserChoice]:
    """Find WordPress users by login, email or name for the coach and client pickers."""
    require_change(actor, "search WordPress users")
    if not text.strip():
        return []
    try:
        users = runtime.wordpress.search_users(text.strip(), limit=USER_PICKER_LIMIT)
    except WordPressUnavailable as error:
        raise Unavailable(f"cannot search WordPress users: {error}") from error
    with runtime.db.session() as session:
        coach_ids = dict(
            session.execute(
                sa.select(Coach.wp_user_id, Coach.id).where(
                    Coach.wp_user_id.in_([user.id for user in users])
                )
            ).all()
        )
    return [
        UserChoice(u.id, u.login, u.email, u.display_name, coach_ids.get(u.id))
        for u in users
    ]


# Clients


@dataclass(frozen=True)
class ClientQuery(PageRequest):
    """Search and page of the clients list."""

    search: str = ""
    program_id: int | None = None


@dataclass(frozen=True)
class ClientSummary:
    """A client in the clients list: one WordPress user and their enrollments."""

    wp_user_id: int
    name: str
    email: str
    programs: list[str]
    enrollments: int
    active: int
    last_activity_at: dt.datetime | None


@dataclass(frozen=True)
class ClientPage:
    """One page of the clients list, most recently active first."""

    items: list[ClientSummary]
    total: int
    page: int
    per_page: int
    search_truncated: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class EnrollmentInfo:
    """An enrollment with its program, cohort, coach and progress figures."""

    id: int
    wp_user_id: int
    program_id: int
    program_title: str
    cohort_id: int
    cohort_name: str
    coach_id: int
    coach_name: str
    status: str
    start_date: dt.date
    enrolled_by_hand: bool
    membership_id: int | None
    progress_percent: int
    off_track: bool
    milestones_done: int
    milestones_total: int
    habit_dates_done: int
    habit_dates_due: int
    completed_on: dt.date | None
    last_activity_at: dt.datetime | None
    deactivated_at: dt.datetime | None


@dataclass(frozen=True)
class ClientDetail:
    """Everything the console shows about one client."""

    wp_user_id: int
    name: str
    email: str
    login: str
    exists_in_wordpress: bool
    enrollments: list[EnrollmentInfo]
    activity: list[FeedEntry]
    # Cohorts an administrator can add the client to or move them into.
    cohort_choices: list[CohortInfo] = field(default_factory=list)


def list_clients(runtime: Runtime, actor: Actor, query: ClientQuery) -> ClientPage:
    """Return one page of clients, most recently active first."""
    require_console(actor)
    found = search_user_ids(runtime, query.search)
    truncated = found is not None and found.truncated
    if found is not None and not found.ids:
        return ClientPage([], 0, query.page, query.per_page, truncated)

    conditions = [console_enrollments(actor)]
    if query.program_id is not None:
        conditions.append(Enrollment.program_id == query.program_id)
    if found is not None:
        conditions.append(Enrollment.wp_user_id.in_(found.ids))

    last = sa.func.max(Enrollment.last_activity_at)
    active = sa.func.sum(
        sa.case((Enrollment.status == EnrollmentStatus.ACTIVE, 1), else_=0)
    )
    select = (
        sa.select(
            Enrollment.wp_user_id,
            sa.func.count().label("enrollments"),
            active.label("active"),
            last.label("last_activity_at"),
        )
        .where(*conditions)
        .group_by(Enrollment.wp_user_id)
        .order_by(sa.case((last.is_(None), 1), else_=0), last.desc())
        .order_by(Enrollment.wp_user_id)
        .limit(query.per_page)
        .offset(query.offset)
    )
    count = sa.select(sa.func.count(sa.distinct(Enrollment.wp_user_id))).where(
        *conditions
    )
    with runtime.db.session() as session:
        total = session.scalar(count) or 0
        rows = session.execute(select).all()
        programs = _program_titles_by_user(
            session, actor, [row.wp_user_id for row in rows]
        )

    users = read_contacts(runtime, [row.wp_user_id for row in rows])
    items = [
        ClientSummary(
            wp_user_id=row.wp_user_id,
            name=_name_of(users, row.wp_user_id),
            email=_email_of(users, row.wp_user_id),
            programs=programs.get(row.wp_user_id, []),
            enrollments=row.enrollments,
            active=int(row.active or 0),
            last_activity_at=row.last_activity_at,
        )
        for row in rows
    ]
    return ClientPage(items, total, query.page, query.per_page, truncated)


def _program_titles_by_user(
    session: Session, actor: Actor, wp_user_ids: Sequence[int]
) -> dict[int, list[str]]:
    if not wp_user_ids:
        return {}
    select = (
        sa.select(Enrollment.wp_user_id, Program.title)
        .join(Program, Enrollment.program_id == Program.id)
        .where(console_enrollments(actor), Enrollment.wp_user_id.in_(wp_user_ids))
        .order_by(Program.title)
    )
    titles: dict[int, list[str]] = {}
    for wp_user_id, title in session.execute(select):
        titles.setdefault(wp_user_id, []).append(title)
    return titles


def client_detail(runtime: Runtime, actor: Actor, wp_user_id: int) -> ClientDetail:
    """Return a client's enrollments, progress and recent activity.

    An administrator may open any WordPress user, enrolled or not, to add them
    to a cohort. A coach sees only the client's enrollments in cohorts they
    lead, and NotFound when there are none.
    """
    require_console(actor)
    user = read_users(runtime, [wp_user_id]).get(wp_user_id)
    with runtime.db.session() as session:
        enrollments = _client_enrollments(session, actor, wp_user_id)
        if not enrollments and (user is None or not actor.is_admin):
            raise NotFound(f"client {wp_user_id} not found")
        infos = [enrollment_info(enrollment) for enrollment in enrollments]

    feed = list_activity(
        runtime,
        actor,
        FeedQuery(wp_user_id=wp_user_id, per_page=CLIENT_ACTIVITY_LIMIT),
    )
    choices = list_cohorts(runtime, actor) if actor.is_admin else []
    return ClientDetail(
        wp_user_id=wp_user_id,
        name=user.display_name if user else f"deleted user {wp_user_id}",
        email=user.email if user else "",
        login=user.login if user else "",
        exists_in_wordpress=user is not None,
        enrollments=infos,
        activity=feed.items,
        cohort_choices=choices,
    )


def _client_enrollments(
    session: Session, actor: Actor, wp_user_id: int
) -> list[Enrollment]:
    select = (
        sa.select(Enrollment)
        .join(Program, Enrollment.program_id == Program.id)
        .options(
            selectinload(Enrollment.program),
            selectinload(Enrollment.cohort).selectinload(Cohort.coach),
        )
        .where(console_enrollments(actor), Enrollment.wp_user_id == wp_user_id)
        .order_by(Program.title, Enrollment.id)
    )
    return list(session.scalars(select).all())


def enrollment_info(enrollment: Enrollment) -> EnrollmentInfo:
    """Describe an enrollment whose program, cohort and coach can be loaded."""
    return EnrollmentInfo(
        id=enrollment.id,
        wp_user_id=enrollment.wp_user_id,
        program_id=enrollment.program_id,
        program_title=enrollment.program.title,
        cohort_id=enrollment.cohort_id,
        cohort_name=enrollment.cohort.name,
        coach_id=enrollment.cohort.coach_id,
        coach_name=enrollment.cohort.coach.display_name,
        status=EnrollmentStatus(enrollment.status).value,
        start_date=enrollment.start_date,
        enrolled_by_hand=enrollment.enrolled_by_hand,
        membership_id=enrollment.membership_id,
        progress_percent=enrollment.progress_percent,
        off_track=enrollment.off_track,
        milestones_done=enrollment.milestones_done,
        milestones_total=enrollment.milestones_total,
        habit_dates_done=enrollment.habit_dates_done,
        habit_dates_due=enrollment.habit_dates_due,
        completed_on=enrollment.completed_on,
        last_activity_at=enrollment.last_activity_at,
        deactivated_at=enrollment.deactivated_at,
    )


def add_client(
    runtime: Runtime, actor: Actor, wp_user_id: int, cohort_id: int
) -> EnrollmentInfo:
    """Enroll a WordPress user by hand in a cohort of any program.

    The enrollment is marked as by hand, so a reconcile never deactivates it. An
    inactive enrollment in the same program is made active again in the chosen
    cohort with its start date kept. Raises Conflict when the client is already
    active in the program or the cohort is closed or full, and NotFound when
    WordPress has no such user or bridge no such cohort.
    """
    require_change(actor, "add clients")
    if wp_user_id not in read_users(runtime, [wp_user_id]):
        raise NotFound(f"WordPress user {wp_user_id} not found")
    now = naive_utc(runtime.now())
    today = runtime.today()

    def work(session: Session) -> int:
        enrollments = _lock_member_enrollments(session, wp_user_id)
        cohort = _lock_cohort_with_room(session, cohort_id)

        enrollment = enrollments.get(cohort.program_id)
        if enrollment is None:
            enrollment = Enrollment(
                wp_user_id=wp_user_id,
                program_id=cohort.program_id,
                start_date=enrollment_start_date(cohort, today),
            )
            session.add(enrollment)
        elif enrollment.status == EnrollmentStatus.ACTIVE:
            raise Conflict(
                f"WordPress user {wp_user_id} is already active in program "
                f"{cohort.program.title!r} (enrollment {enrollment.id}); move them "
                "to another cohort instead"
            )

        reactivated = enrollment.id is not None
        enrollment.cohort_id = cohort.id
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.enrolled_by_hand = True
        enrollment.unenrolled_by_hand = False
        enrollment.deactivated_at = None
        session.flush()

        activity.record(
            session,
            ActivityType.ENROLLED,
            **_subject(enrollment, cohort),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Added by hand to {cohort.program.title}, cohort {cohort.name}",
            details={"by_hand": True, "reactivated": reactivated},
            occurred_at=now,
        )
        return enrollment.id

    enrollment_id = _write(
        runtime, work, f"add user {wp_user_id} to cohort {cohort_id}"
    )
    log.info(
        "user %s added WordPress user %s to cohort %s (enrollment %s)",
        actor.wp_user_id,
        wp_user_id,
        cohort_id,
        enrollment_id,
    )
    return _enrollment_by_id(runtime, enrollment_id)


def assign_cohort(
    runtime: Runtime, actor: Actor, enrollment_id: int, cohort_id: int
) -> EnrollmentInfo:
    """Move an enrollment to another cohort of the same program.

    An active client takes a seat, so the cohort must be open with room, checked
    under the same row locks as an enrollment. An inactive client takes no seat
    and is moved without that check; they resume in the new cohort. The start
    date is kept, because the client's due dates count from it.
    """
    _require_enrollment_change(runtime, actor, enrollment_id, "move clients")
    now = naive_utc(runtime.now())

    def work(session: Session) -> None:
        enrollment = _lock_enrollment(session, enrollment_id)
        if enrollment.cohort_id == cohort_id:
            raise Conflict(
                f"enrollment {enrollment_id} is already in cohort {cohort_id}"
            )
        active = enrollment.status == EnrollmentStatus.ACTIVE
        target = (
            _lock_cohort_with_room(session, cohort_id)
            if active
            else _lock_cohort(session, cohort_id)
        )
        if target.program_id != enrollment.program_id:
            raise Conflict(
                f"cohort {cohort_id} belongs to program "
                f"{target.program.title!r}, not to the enrollment's program "
                f"{enrollment.program.title!r}; add the client to that program instead"
            )
        source = enrollment.cohort
        enrollment.cohort_id = target.id
        session.flush()
        activity.record(
            session,
            ActivityType.COHORT_CHANGED,
            **_subject(enrollment, target),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Moved from cohort {source.name} to cohort {target.name}",
            details={
                "from_cohort_id": source.id,
                "to_cohort_id": target.id,
                "from_coach_id": source.coach_id,
            },
            occurred_at=now,
        )

    _write(runtime, work, f"move enrollment {enrollment_id} to cohort {cohort_id}")
    log.info(
        "user %s moved enrollment %s to cohort %s",
        actor.wp_user_id,
        enrollment_id,
        cohort_id,
    )
    return _enrollment_by_id(runtime, enrollment_id)


@dataclass(frozen=True)
class UnenrollResult:
    """An unenrolled enrollment and the memberships that still grant its program."""

    enrollment: EnrollmentInfo
    # Membership ids that still grant the program, or None when WordPress
    # could not be read.
    granting_memberships: list[int] | None


def unenroll(runtime: Runtime, actor: Actor, enrollment_id: int) -> UnenrollResult:
    """Make an active enrollment inactive, keeping its data, with activity.

    The sync leaves the enrollment inactive from then on, even while a
    membership grants the program, until an administrator adds the client
    again. The result lists such memberships, which MemberPress may still bill.
    """
    _require_enrollment_change(runtime, actor, enrollment_id, "unenroll clients")
    now = naive_utc(runtime.now())

    def work(session: Session) -> None:
        enrollment = _lock_enrollment(session, enrollment_id)
        if enrollment.status != EnrollmentStatus.ACTIVE:
            raise Conflict(f"enrollment {enrollment_id} is already inactive")
        enrollment.status = EnrollmentStatus.INACTIVE
        enrollment.unenrolled_by_hand = True
        enrollment.deactivated_at = now
        activity.record(
            session,
            ActivityType.UNENROLLED,
            **_subject(enrollment, enrollment.cohort),
            actor_wp_user_id=actor.wp_user_id,
            summary=f"Unenrolled from {enrollment.program.title} by hand",
            details={"reason": "by_hand"},
            occurred_at=now,
        )

    _write(runtime, work, f"unenroll enrollment {enrollment_id}")
    log.info("user %s unenrolled enrollment %s", actor.wp_user_id, enrollment_id)
    info = _enrollment_by_id(runtime, enrollment_id)
    return UnenrollResult(info, _granting_memberships(runtime, info))


def _require_enrollment_change(
    runtime: Runtime, actor: Actor, enrollment_id: int, change: str
) -> None:
    """Raise NotFound for an enrollment hidden from the actor, else Forbidden.

    Checking visibility first means a coach learns nothing about other coaches'
    clients from the status. Administrators pass both checks.
    """
    if not actor.is_admin:
        load_console_enrollment(runtime, actor, enrollment_id)
    require_change(actor, change)


def _granting_memberships(runtime: Runtime, info: EnrollmentInfo) -> list[int] | None:
    try:
        grants = runtime.wordpress.access(info.wp_user_id, runtime.now())
    except WordPressUnavailable as error:
        log.warning(
            "cannot check the memberships of WordPress user %s after unenrolling "
            "enrollment %s: %s",
            info.wp_user_id,
            info.id,
            error,
        )
        return None
    with runtime.db.session() as session:
        programs = load_programs_by_membership(session, grants.keys())
    return sorted(m for m, ids in programs.items() if info.program_id in ids)


def _lock_member_enrollments(
    session: Session, wp_user_id: int
) -> dict[int, Enrollment]:
    # The member's rows are locked before any cohort row, the order that
    # reconcile_member uses, so the two never wait on each other in a cycle.
    # Database.run retries a deadlock that MySQL reports anyway.
    select = (
        sa.select(Enrollment)
        .where(Enrollment.wp_user_id == wp_user_id)
        .with_for_update()
    )
    return {row.program_id: row for row in session.scalars(select)}


def _lock_enrollment(session: Session, enrollment_id: int) -> Enrollment:
    select = sa.select(Enrollment).where(Enrollment.id == enrollment_id)
    enrollment = session.scalar(select.with_for_update())
    if enrollment is None:
        raise NotFound(f"enrollment {enrollment_id} not found")
    return enrollment


def _lock_cohort(session: Session, cohort_id: int) -> Cohort:
    select = sa.select(Cohort).where(Cohort.id == cohort_id).with_for_update()
    cohort = session.scalar(select)
    if cohort is None:
        raise NotFound(f"cohort {cohort_id} not found")
    return cohort


def _lock_cohort_with_room(session: Session, cohort_id: int) -> Cohort:
    """Lock a cohort row, then raise Conflict unless it is open with a free seat.

    Automatic enrollment locks the same row before counting, so the count
    cannot change until this transaction ends.
    """
    cohort = _lock_cohort(session, cohort_id)
    if not cohort.is_open:
        raise Conflict(
            f"cohort {cohort.name!r} is closed to new clients; open it first or "
            "choose another cohort"
        )
    if cohort.capacity is not None:
        taken = count_active(session, [cohort.id]).get(cohort.id, 0)
        if taken >= cohort.capacity:
            raise Conflict(
                f"cohort {cohort.name!r} is full: {taken} active clients of "
                f"{cohort.capacity}; raise its capacity or choose another cohort"
            )
    return cohort


def _subject(enrollment: Enrollment, cohort: Cohort) -> dict[str, Any]:
    return {
        "wp_user_id": enrollment.wp_user_id,
        "program_id": enrollment.program_id,
        "cohort_id": cohort.id,
        "coach_id": cohort.coach_id,
        "enrollment_id": enrollment.id,
    }


def _enrollment_by_id(runtime: Runtime, enrollment_id: int) -> EnrollmentInfo:
    with runtime.db.session() as session:
        enrollment = session.get_one(Enrollment, enrollment_id)
        return enrollment_info(enrollment)


def load_console_enrollment(
    runtime: Runtime, actor: Actor, enrollment_id: int
) -> EnrollmentInfo:
    """Return an enrollment the actor may see in the console, or raise NotFound."""
    require_console(actor)
    select = sa.select(Enrollment).where(
        Enrollment.id == enrollment_id, console_enrollments(actor)
    )
    with runtime.db.session() as session:
        enrollment = session.scalar(select)
        if enrollment is None:
            raise NotFound(f"enrollment {enrollment_id} not found")
        return enrollment_info(enrollment)


# Choices for filters and pickers


@dataclass(frozen=True)
class Choice:
    """An id and a label for a select box."""

    id: int
    label: str


def program_choices(runtime: Runtime, actor: Actor) -> list[Choice]:
    """Return the programs the actor may see as choices, by title."""
    require_console(actor)
    select = sa.select(Program.id, Program.title).order_by(Program.title, Program.id)
    if not actor.is_admin:
        led = sa.select(Cohort.program_id).where(Cohort.coach_id == actor.coach_id)
        select = select.where(Program.id.in_(led))
    with runtime.db.session() as session:
        return [Choice(row.id, row.title) for row in session.execute(select)]


def coach_choices(runtime: Runtime, actor: Actor) -> list[Choice]:
    """Return the coaches the actor may see as choices, by name."""
    require_console(actor)
    select = sa.select(Coach.id, Coach.display_name, Coach.wp_user_id).order_by(
        Coach.display_name, Coach.id
    )
    if not actor.is_admin:
        select = select.where(Coach.id == actor.coach_id)
    with runtime.db.session() as session:
        return [
            Choice(row.id, row.display_name or f"WordPress user {row.wp_user_id}")
            for row in session.execute(select)
        ]
