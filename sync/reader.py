"""Read users, memberships and access grants from a WordPress + MemberPress database.

The reader only runs SELECT statements, because WordPress owns these tables.
Driver errors that mean the server cannot be reached are raised as
WordPressUnavailable, so callers can retry later.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from sync import phpserial
from sync.schema import DEFAULT_PREFIX, ZERO_DATE, WordPressTables, wordpress_tables

logger = logging.getLogger(__name__)

MEMBERSHIP_POST_TYPE = "memberpressproduct"
ADMINISTRATOR_ROLE = "administrator"

# Maximum ids per IN list, which keeps each statement small.
ID_CHUNK_SIZE = 1000

_GRANTING_STATUS = "complete"
_TRIAL_STATUS = "confirmed"
_TRIAL_TXN_TYPE = "subscription_confirmation"


# Tables that the reader queries, by their attribute on WordPressTables.
TABLES_READ = ("users", "usermeta", "options", "posts", "transactions")


class WordPressUnavailable(Exception):
    """Error raised when the WordPress database cannot be reached.

    The cause is a network, server or login failure, so a retry later may succeed.
    """


@dataclass(frozen=True)
class WPUser:
    """WordPress user with the profile fields that coachbridge shows."""

    id: int
    login: str
    email: str
    display_name: str
    first_name: str
    last_name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Membership:
    """MemberPress membership, a post of type ``memberpressproduct``."""

    id: int
    title: str
    status: str


@dataclass(frozen=True)
class Grant:
    """Transaction that gives a member access to a membership.

    ``expires_at`` is a naive UTC datetime, or None for lifetime access.
    """

    membership_id: int
    transaction_id: int
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class SiteTime:
    """Raw ``timezone_string`` and ``gmt_offset`` options, empty when missing."""

    timezone_string: str
    gmt_offset: str


def is_lifetime(expires_at: object) -> bool:
    """Return whether a MemberPress expires_at value means lifetime access.

    NULL and the zero date ``0000-00-00 00:00:00`` both mean lifetime. PyMySQL
    returns the zero date as that string, and SQLite stores it as that text.
    """
    return expires_at is None or expires_at == ZERO_DATE


def grants_access(
    status: str | None,
    txn_type: str | None,
    expires_at: dt.datetime | str | None,
    now: dt.datetime,
) -> bool:
    """Return whether one MemberPress transaction gives access at ``now``.

    A transaction grants access when its status is ``complete``, or when it is
    ``confirmed`` with txn_type ``subscription_confirmation`` (the start of a free
    trial). It must also be unexpired: expires_at is NULL, the zero date, or after
    ``now``. Datetimes are UTC, and an aware ``now`` is converted to naive UTC.
    Refunded, failed and pending transactions never grant. The reader evaluates
    the same rule in SQL (see ``_granting``).
    """
    granted_by_status = status == _GRANTING_STATUS or (
        status == _TRIAL_STATUS and txn_type == _TRIAL_TXN_TYPE
    )
    if not granted_by_status:
        return False
    if is_lifetime(expires_at):
        return True
    expiry = _as_datetime(expires_at)
    return expiry is not None and expiry > _naive_utc(now)


class WordPressReader:
    """Read-only access to one WordPress site's users and MemberPress data."""

    def __init__(self, engine: sa.Engine, table_prefix: str = DEFAULT_PREFIX) -> None:
        self.engine = engine
        self.tables: WordPressTables = wordpress_tables(table_prefix)

    def ping(self) -> None:
        """Run ``SELECT 1`` and raise WordPressUnavailable if the server is down."""
        with self._connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def missing_tables(self) -> list[str]:
        """Return the names of the tables read here that the database lacks.

        A wrong table prefix, or a site without MemberPress, shows up here.
        Raises WordPressUnavailable when the server is down.
        """
        names = [getattr(self.tables, table).name for table in TABLES_READ]
        with self._connect() as connection:
            inspector = sa.inspect(connection)
            return [name for name in names if not inspector.has_table(name)]

    def user(self, user_id: int) -> WPUser | None:
        """Return one user, or None when no user has that id."""
        return self.users([user_id]).get(user_id)

    def users(self, ids: Iterable[int]) -> dict[int, WPUser]:
        """Return the users with these ids, leaving out ids without a user.

        Each chunk of ``ID_CHUNK_SIZE`` ids costs two queries: users and usermeta.
        """
        requested_ids = sorted({int(user_id) for user_id in ids})
        found: dict[int, WPUser] = {}
        with self._connect() as connection:
            for chunk in _chunks(requested_ids, ID_CHUNK_SIZE):
                users = self.tables.users
                rows = connection.execute(
                    self._user_select().where(users.c.ID.in_(chunk))
                ).all()
                found.update(self._build_users(connection, rows))
        return found

    def search_users(self, text: str, limit: int = 20) -> list[WPUser]:
        """Find users whose login, email or display name contains ``text``.

        Returns at most ``limit`` users, ordered by id. The match is
        case-insensitive under WordPress's MySQL collations and for ASCII on SQLite.
        ``%`` and ``_`` in text match themselves, and an empty text matches everyone.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        users = self.tables.users
        matches = sa.or_(
            users.c.user_login.contains(text, autoescape=True),
            users.c.user_email.contains(text, autoescape=True),
            users.c.display_name.contains(text, autoescape=True),
        )
        query = self._user_select().where(matches).order_by(users.c.ID).limit(limit)
        with self._connect() as connection:
            rows = connection.execute(query).all()
            found = self._build_users(connection, rows)
        return [found[int(row.ID)] for row in rows]

    def is_administrator(self, user_id: int) -> bool:
        """Return whether the user has the administrator role."""
        usermeta = self.tables.usermeta
        query = (
            sa.select(usermeta.c.meta_value)
            .where(usermeta.c.user_id == user_id)
            .where(usermeta.c.meta_key == self.tables.capabilities_key)
            .order_by(usermeta.c.umeta_id)
            .limit(1)
        )
        with self._connect() as connection:
            value = connection.execute(query).scalar()
        return ADMINISTRATOR_ROLE in parse_roles(value, user_id)

    def administrator_ids(self) -> list[int]:
        """Return the ids of all users with the administrator role, ascending."""
        usermeta = self.tables.usermeta
        query = (
            sa.select(usermeta.c.user_id, usermeta.c.meta_value)
            .where(usermeta.c.meta_key == self.tables.capabilities_key)
            .where(usermeta.c.meta_value.contains(f'"{ADMINISTRATOR_ROLE}"'))
            .order_by(usermeta.c.user_id)
        )
        with self._connect() as connection:
            rows = connection.execute(query).all()
        # The LIKE filter only narrows the rows, because the entry may be b:0.
        return sorted(
            {
                int(row.user_id)
                for row in rows
                if ADMINISTRATOR_ROLE in parse_roles(row.meta_value, int(row.user_id))
            }
        )

    def memberships(self, include_trash: bool = False) -> list[Membership]:
        """Return MemberPress memberships of every status, ordered by id.

        Trashed memberships are left out unless ``include_trash`` is true.
        """
        posts = self.tables.posts
        query = (
            sa.select(posts.c.ID, posts.c.post_title, posts.c.post_status)
            .where(posts.c.post_type == MEMBERSHIP_POST_TYPE)
            .order_by(posts.c.ID)
        )
        if not include_trash:
            query = query.where(posts.c.post_status != "trash")
        with self._connect() as connection:
            rows = connection.execute(query).all()
        return [
            Membership(id=int(row.ID), title=row.post_title, status=row.post_status)
            for row in rows
        ]

    def site_time(self) -> SiteTime:
        """Return the site's raw ``timezone_string`` and ``gmt_offset`` options."""
        options = self.tables.options
        names = ("timezone_string", "gmt_offset")
        query = sa.select(options.c.option_name, options.c.option_value).where(
            options.c.option_name.in_(names)
        )
        with self._connect() as connection:
            values = {
                row.option_name: row.option_value for row in connection.execute(query)
            }
        return SiteTime(
            timezone_string=values.get("timezone_string") or "",
            gmt_offset=values.get("gmt_offset") or "",
        )

    def access(self, user_id: int, now: dt.datetime) -> dict[int, Grant]:
        """Return membership id -> granting transaction for one user at ``now``."""
        transactions = self.tables.transactions
        query = self._grant_select(now).where(transactions.c.user_id == user_id)
        with self._connect() as connection:
            rows = connection.execute(query).all()
        return _grants_by_user(rows).get(user_id, {})

    def iter_access(
        self, now: dt.datetime, batch_size: int = 2000
    ) -> Iterator[dict[int, dict[int, Grant]]]:
        """Yield the grants of every user who has a transaction, in batches.

        Each batch maps user id -> (membership id -> grant) for up to ``batch_size``
        users in ascending id order. Users whose transactions grant nothing map to
        an empty dict. A batch costs two queries, and each batch is read in its own
        short connection, so the walk is not one snapshot: a user whose first
        transaction appears mid-walk is missed when the id is below the cursor.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        last_user_id = 0
        while True:
            with self._connect() as connection:
                user_ids = self._next_member_ids(connection, last_user_id, batch_size)
                if not user_ids:
                    return
                batch = self._batch_grants(connection, user_ids, now)
            last_user_id = user_ids[-1]
            yield batch

    def count_members(self) -> int:
        """Return how many distinct users have at least one transaction."""
        transactions = self.tables.transactions
        query = sa.select(sa.func.count(sa.distinct(transactions.c.user_id)))
        with self._connect() as connection:
            return int(connection.execute(query).scalar_one())

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        # Any failure to connect means unavailable. After connecting, only errors
        # that SQLAlchemy classifies as a lost connection do, so that a missing
        # table or a bad query still raises the driver's own error.
        try:
            connection = self.engine.connect()
        except sa.exc.DBAPIError as error:
            raise self._unavailable(error) from error
        try:
            with connection:
                yield connection
        except sa.exc.DBAPIError as error:
            if error.connection_invalidated:
                raise self._unavailable(error) from error
            raise

    def _unavailable(self, error: sa.exc.DBAPIError) -> WordPressUnavailable:
        where = _describe_database(self.engine.url)
        return WordPressUnavailable(
            f"cannot reach the WordPress database {where}: {error.orig}. "
            "Check that the server is running and that the database URL is correct."
        )

    def _user_select(self) -> sa.Select:
        users = self.tables.users
        return sa.select(
            users.c.ID, users.c.user_login, users.c.user_email, users.c.display_name
        )

    def _build_users(
        self, connection: sa.Connection, rows: Sequence[sa.Row]
    ) -> dict[int, WPUser]:
        ids = [int(row.ID) for row in rows]
        meta = self._user_meta(connection, ids) if ids else {}
        users: dict[int, WPUser] = {}
        for row in rows:
            user_id = int(row.ID)
            values = meta.get(user_id, {})
            users[user_id] = WPUser(
                id=user_id,
                login=row.user_login,
                email=row.user_email,
                display_name=row.display_name,
                first_name=values.get("first_name") or "",
                last_name=values.get("last_name") or "",
                roles=parse_roles(values.get(self.tables.capabilities_key), user_id),
            )
        return users

    def _user_meta(
        self, connection: sa.Connection, ids: list[int]
    ) -> dict[int, dict[str, str | None]]:
        usermeta = self.tables.usermeta
        keys = ("first_name", "last_name", self.tables.capabilities_key)
        query = (
            sa.select(usermeta.c.user_id, usermeta.c.meta_key, usermeta.c.meta_value)
            .where(usermeta.c.user_id.in_(ids))
            .where(usermeta.c.meta_key.in_(keys))
            .order_by(usermeta.c.umeta_id)
        )
        meta: dict[int, dict[str, str | None]] = {}
        for row in connection.execute(query):
            # WordPress reads the oldest row when a key is stored more than once.
            meta.setdefault(int(row.user_id), {}).setdefault(
                row.meta_key, row.meta_value
            )
        return meta

    def _grant_select(self, now: dt.datetime) -> sa.Select:
        transactions = self.tables.transactions
        return sa.select(
            transactions.c.id,
            transactions.c.user_id,
            transactions.c.product_id,
            transactions.c.expires_at,
        ).where(_granting(transactions, now))

    def _next_member_ids(
        self, connection: sa.Connection, after_user_id: int, limit: int
    ) -> list[int]:
        user_id = self.tables.transactions.c.user_id
        query = (
            sa.select(user_id)
            .distinct()
            .where(user_id > after_user_id)
            .order_by(user_id)
            .limit(limit)
        )
        return [int(value) for value in connection.execute(query).scalars()]

    def _batch_grants(
        self, connection: sa.Connection, user_ids: list[int], now: dt.datetime
    ) -> dict[int, dict[int, Grant]]:
        # The batch is every user with a transaction in this id range, so a range
        # scan on the user_id index replaces a long IN list.
        user_id = self.tables.transactions.c.user_id
        query = self._grant_select(now).where(
            user_id.between(user_ids[0], user_ids[-1])
        )
        grants = _grants_by_user(connection.execute(query).all())
        return {member_id: grants.get(member_id, {}) for member_id in user_ids}


def parse_roles(capabilities: str | bytes | None, user_id: int) -> frozenset[str]:
    """Return the granted roles from a serialized ``<prefix>capabilities`` value.

    Roles mapped to a false value, such as ``b:0``, are not granted. Malformed or
    unsupported data gives no roles and logs a warning with the user id.
    """
    if capabilities is None or capabilities == "":
        return frozenset()
    try:
        value = phpserial.loads(capabilities)
    except phpserial.PHPSerialError as error:
        logger.warning("Ignoring malformed capabilities of user %s: %s", user_id, error)
        return frozenset()
    if not isinstance(value, dict):
        logger.warning(
            "Ignoring capabilities of user %s: expected an array, found %s",
            user_id,
            type(value).__name__,
        )
        return frozenset()
    return frozenset(
        role
        for role, granted in value.items()
        if isinstance(role, str) and _php_truthy(granted)
    )


def _granting(transactions: sa.Table, now: dt.datetime) -> sa.ColumnElement[bool]:
    """Build the SQL form of ``grants_access`` for the transactions table."""
    status = transactions.c.status
    expires_at = transactions.c.expires_at
    granted_by_status = sa.or_(
        status == _GRANTING_STATUS,
        sa.and_(status == _TRIAL_STATUS, transactions.c.txn_type == _TRIAL_TXN_TYPE),
    )
    unexpired = sa.or_(
        expires_at.is_(None),
        expires_at == ZERO_DATE,
        expires_at > _naive_utc(now),
    )
    return sa.and_(granted_by_status, unexpired)


def _grants_by_user(rows: Iterable[sa.Row]) -> dict[int, dict[int, Grant]]:
    """Group granting transaction rows by user, keeping one grant per membership."""
    grants: dict[int, dict[int, Grant]] = {}
    for row in rows:
        grant = _grant_from_row(row)
        if grant is None:
            continue
        user_grants = grants.setdefault(int(row.user_id), {})
        current = user_grants.get(grant.membership_id)
        if current is None or _grant_rank(grant) > _grant_rank(current):
            user_grants[grant.membership_id] = grant
    return grants


def _grant_from_row(row: sa.Row) -> Grant | None:
    expires_at = None
    if not is_lifetime(row.expires_at):
        expires_at = _as_datetime(row.expires_at)
        if expires_at is None:
            logger.warning(
                "Ignoring transaction %s: unreadable expires_at %r",
                row.id,
                row.expires_at,
            )
            return None
    return Grant(
        membership_id=int(row.product_id),
        transaction_id=int(row.id),
        expires_at=expires_at,
    )


def _grant_rank(grant: Grant) -> tuple[bool, dt.datetime, int]:
    if grant.expires_at is None:
        return (True, dt.datetime.min, grant.transaction_id)
    return (False, grant.expires_at, grant.transaction_id)


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return _naive_utc(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _php_truthy(value: phpserial.PHPValue) -> bool:
    # PHP treats the string "0" as false, unlike Python.
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _describe_database(url: sa.URL) -> str:
    """Return host:port/database for messages, leaving out user and password."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"{host}{port}/{url.database or ''}"
