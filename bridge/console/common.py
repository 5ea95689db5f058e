"""Access checks, contact reads, paging and write helpers shared by the console."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bridge.auth import Actor, require_coach_or_admin, visible_enrollments
from bridge.errors import CoachbridgeError, Conflict, InvalidRequest, Unavailable
from bridge.models import Activity, Cohort, Enrollment
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable, WPUser

log = logging.getLogger(__name__)


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# Deeper pages are refused, so that an offset stays a small number.
MAX_PAGE = 1_000_000
# WordPress users read for one search. A search that matches more users than
# this is cut off there, and the result is marked as truncated.
SEARCH_USER_LIMIT = 500
# User ids per query when reading names and emails.
CONTACT_CHUNK = 5000


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
