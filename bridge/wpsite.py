"""Build and fill WordPress + MemberPress databases for the demo, tests and benchmarks.

Nothing here is ever pointed at a real site: coachbridge only reads WordPress.

``WORDPRESS_MYSQL_DDL`` returns CREATE TABLE statements with the column types that
WordPress core (``wp-admin/includes/schema.php``) and MemberPress (``MeprDb``) use
on MySQL, for the tables that coachbridge reads. ``WordPressSite`` creates those
tables and inserts users, memberships, transactions and options the way WordPress
and MemberPress store them.

Example::

    site = WordPressSite(sa.create_engine(url), prefix="wp_")
    site.create_schema()
    ana = site.add_user("ana", "ana@example.org", roles=("subscriber",))
    monthly = site.add_membership("Monthly coaching")
    site.add_transaction(ana, monthly, expires_at=datetime(2030, 1, 1))
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from sync import phpserial
from sync.schema import ZERO_DATE, validate_prefix, wordpress_tables

__all__ = [
    "WORDPRESS_MYSQL_DDL",
    "ZERO_DATE",
    "NewTransaction",
    "NewUser",
    "WordPressSite",
]

# WordPress's own charset and collation on MySQL 5.6+ and MariaDB.
_CHARSET = "DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"

# Under these modes MySQL rejects the zero date, which WordPress and MemberPress
# use as a column default. WordPress removes NO_ZERO_DATE from its sessions too.
_ZERO_DATE_MODES = frozenset({"NO_ZERO_DATE", "NO_ZERO_IN_DATE"})

# Rows per executemany call. PyMySQL turns each call into multi-row INSERTs.
BULK_CHUNK_SIZE = 5000

# Levels that WordPress stores in <prefix>user_level for the default roles.
_USER_LEVELS = {
    "administrator": 10,
    "editor": 7,
    "author": 2,
    "contributor": 1,
}


def WORDPRESS_MYSQL_DDL(prefix: str = "wp_") -> list[str]:
    """Return CREATE TABLE statements for the WordPress and MemberPress tables.

    Covered: users, usermeta, options, posts, mepr_transactions,
    mepr_subscriptions, mepr_members and mepr_events, each named with ``prefix``.
    """
    validate_prefix(prefix)
    tables = {
        "users": _USERS_DDL,
        "usermeta": _USERMETA_DDL,
        "options": _OPTIONS_DDL,
        "posts": _POSTS_DDL,
        "mepr_transactions": _TRANSACTIONS_DDL,
        "mepr_subscriptions": _SUBSCRIPTIONS_DDL,
        "mepr_members": _MEMBERS_DDL,
        "mepr_events": _EVENTS_DDL,
    }
    return [
        _create_table(f"{prefix}{name}", definitions)
        for name, definitions in tables.items()
    ]


def _create_table(name: str, definitions: tuple[str, ...]) -> str:
    body = ",\n  ".join(definitions)
    return f"CREATE TABLE `{name}` (\n  {body}\n) {_CHARSET}"


_ZERO = f"'{ZERO_DATE}'"

_USERS_DDL = (
    "ID bigint(20) unsigned NOT NULL AUTO_INCREMENT",
    "user_login varchar(60) NOT NULL DEFAULT ''",
    "user_pass varchar(255) NOT NULL DEFAULT ''",
    "user_nicename varchar(50) NOT NULL DEFAULT ''",
    "user_email varchar(100) NOT NULL DEFAULT ''",
    "user_url varchar(100) NOT NULL DEFAULT ''",
    f"user_registered datetime NOT NULL DEFAULT {_ZERO}",
    "user_activation_key varchar(255) NOT NULL DEFAULT ''",
    "user_status int(11) NOT NULL DEFAULT 0",
    "display_name varchar(250) NOT NULL DEFAULT ''",
    "PRIMARY KEY (ID)",
    "KEY user_login_key (user_login)",
    "KEY user_nicename (user_nicename)",
    "KEY user_email (user_email)",
)

_USERMETA_DDL = (
    "umeta_id bigint(20) unsigned NOT NULL AUTO_INCREMENT",
    "user_id bigint(20) unsigned NOT NULL DEFAULT 0",
    "meta_key varchar(255) DEFAULT NULL",
    "meta_value longtext",
    "PRIMARY KEY (umeta_id)",
    "KEY user_id (user_id)",
    "KEY meta_key (meta_key(191))",
)

_OPTIONS_DDL = (
    "option_id bigint(20) unsigned NOT NULL AUTO_INCREMENT",
    "option_name varchar(191) NOT NULL DEFAULT ''",
    "option_value longtext NOT NULL",
    "autoload varchar(20) NOT NULL DEFAULT 'yes'",
    "PRIMARY KEY (option_id)",
    "UNIQUE KEY option_name (option_name)",
    "KEY autoload (autoload)",
)

_POSTS_DDL = (
    "ID bigint(20) unsigned NOT NULL AUTO_INCREMENT",
    "post_author bigint(20) unsigned NOT NULL DEFAULT 0",
    f"post_date datetime NOT NULL DEFAULT {_ZERO}",
    f"post_date_gmt datetime NOT NULL DEFAULT {_ZERO}",
    "post_content longtext NOT NULL",
    "post_title text NOT NULL",
    "post_excerpt text NOT NULL",
    "post_status varchar(20) NOT NULL DEFAULT 'publish'",
    "comment_status varchar(20) NOT NULL DEFAULT 'open'",
    "ping_status varchar(20) NOT NULL DEFAULT 'open'",
    "post_password varchar(255) NOT NULL DEFAULT ''",
    "post_name varchar(200) NOT NULL DEFAULT ''",
    "to_ping text NOT NULL",
    "pinged text NOT NULL",
    f"post_modified datetime NOT NULL DEFAULT {_ZERO}",
    f"post_modified_gmt datetime NOT NULL DEFAULT {_ZERO}",
    "post_content_filtered longtext NOT NULL",
    "post_parent bigint(20) unsigned NOT NULL DEFAULT 0",
    "guid varchar(255) NOT NULL DEFAULT ''",
    "menu_order int(11) NOT NULL DEFAULT 0",
    "post_type varchar(20) NOT NULL DEFAULT 'post'",
    "post_mime_type varchar(100) NOT NULL DEFAULT ''",
    "comment_count bigint(20) NOT NULL DEFAULT 0",
    "PRIMARY KEY (ID)",
    "KEY post_name (post_name(191))",
    "KEY type_status_date (post_type, post_status, post_date, ID)",
    "KEY post_parent (post_parent)",
    "KEY post_author (post_author)",
)

# MemberPress ids are signed bigint(20), unlike WordPress core's unsigned ones.
_TRANSACTIONS_DDL = (
    "id bigint(20) NOT NULL AUTO_INCREMENT",
    "amount decimal(16,2) NOT NULL",
    "total decimal(16,2) DEFAULT 0",
    "tax_amount decimal(16,2) DEFAULT 0",
    "tax_rate decimal(6,3) DEFAULT 0",
    "tax_desc varchar(255) DEFAULT ''",
    "tax_compound int(1) DEFAULT 0",
    "tax_shipping int(1) DEFAULT 1",
    "tax_class varchar(255) DEFAULT 'standard'",
    "user_id bigint(20) NOT NULL",
    "product_id bigint(20) NOT NULL",
    "coupon_id bigint(20) DEFAULT NULL",
    "trans_num varchar(255) DEFAULT NULL",
    "status varchar(255) DEFAULT 'pending'",
    "txn_type varchar(255) DEFAULT 'payment'",
    "response text DEFAULT NULL",
    "gateway varchar(255) DEFAULT 'manual'",
    "subscription_id bigint(20) DEFAULT NULL",
    "ip_addr varchar(255) DEFAULT NULL",
    "prorated tinyint(1) DEFAULT 0",
    "created_at datetime NOT NULL",
    f"expires_at datetime DEFAULT {_ZERO}",
    "corporate_account_id bigint(20) DEFAULT 0",
    "parent_transaction_id bigint(20) DEFAULT 0",
    "PRIMARY KEY (id)",
    "KEY amount (amount)",
    "KEY total (total)",
    "KEY tax_class (tax_class(191))",
    "KEY user_id (user_id)",
    "KEY status (status(191))",
    "KEY txn_type (txn_type(191))",
    "KEY product_id (product_id)",
    "KEY coupon_id (coupon_id)",
    "KEY trans_num (trans_num(191))",
    "KEY subscription_id (subscription_id)",
    "KEY gateway (gateway(191))",
    "KEY created_at (created_at)",
    "KEY expires_at (expires_at)",
    "KEY corporate_account_id (corporate_account_id)",
    "KEY parent_transaction_id (parent_transaction_id)",
)

_SUBSCRIPTIONS_DDL = (
    "id bigint(20) NOT NULL AUTO_INCREMENT",
    "user_id bigint(20) NOT NULL",
    "product_id bigint(20) NOT NULL",
    "coupon_id bigint(20) DEFAULT NULL",
    "subscr_id varchar(255) DEFAULT ''",
    "price decimal(16,2) NOT NULL",
    "total decimal(16,2) DEFAULT 0",
    "tax_amount decimal(16,2) DEFAULT 0",
    "tax_rate decimal(6,3) DEFAULT 0",
    "tax_desc varchar(255) DEFAULT ''",
    "tax_compound int(1) DEFAULT 0",
    "tax_shipping int(1) DEFAULT 1",
    "tax_class varchar(255) DEFAULT 'standard'",
    "gateway varchar(255) DEFAULT 'manual'",
    "response longtext DEFAULT ''",
    "period int(11) DEFAULT 1",
    "period_type varchar(20) DEFAULT 'months'",
    "limit_cycles tinyint(1) DEFAULT 0",
    "limit_cycles_num int(11) DEFAULT 1",
    "limit_cycles_action varchar(255) DEFAULT 'lifetime'",
    "limit_cycles_expires_after int(11) DEFAULT 1",
    "limit_cycles_expires_type varchar(255) DEFAULT 'days'",
    "prorated_trial tinyint(1) DEFAULT 0",
    "trial tinyint(1) DEFAULT 0",
    "trial_days int(11) DEFAULT 1",
    "trial_amount decimal(16,2) DEFAULT 0.00",
    "trial_tax_amount decimal(16,2) DEFAULT 0",
    "trial_total decimal(16,2) DEFAULT 0",
    "status varchar(20) DEFAULT 'pending'",
    "created_at datetime NOT NULL",
    "cc_last4 varchar(10) DEFAULT '4242'",
    "cc_exp_month varchar(10) DEFAULT '01'",
    "cc_exp_year varchar(10) DEFAULT '1999'",
    "token varchar(64) DEFAULT NULL",
    "PRIMARY KEY (id)",
    "KEY mp_user_id (user_id)",
    "KEY mp_product_id (product_id)",
    "KEY mp_subscr_id (subscr_id(191))",
    "KEY mp_status (status)",
    "KEY mp_created_at (created_at)",
)

_MEMBERS_DDL = (
    "id bigint(20) NOT NULL AUTO_INCREMENT",
    "user_id bigint(20) NOT NULL",
    "first_txn_id bigint(20)",
    "latest_txn_id bigint(20)",
    "txn_count bigint(20)",
    "expired_txn_count bigint(20)",
    "active_txn_count bigint(20)",
    "sub_count bigint(20)",
    "pending_sub_count bigint(20)",
    "active_sub_count bigint(20)",
    "suspended_sub_count bigint(20)",
    "cancelled_sub_count bigint(20)",
    "memberships longtext",
    "inactive_memberships longtext",
    "last_login_id bigint(20)",
    "login_count bigint(20)",
    "total_spent decimal(16,2) DEFAULT 0",
    "created_at datetime NOT NULL",
    "updated_at datetime NOT NULL",
    "trial_txn_count bigint(20)",
    "PRIMARY KEY (id)",
    "UNIQUE KEY mp_user_id (user_id)",
    "KEY mp_latest_txn_id (latest_txn_id)",
    "KEY mp_created_at (created_at)",
    "KEY mp_updated_at (updated_at)",
)

_EVENTS_DDL = (
    "id bigint(20) NOT NULL AUTO_INCREMENT",
    "event varchar(255) NOT NULL DEFAULT 'login'",
    "args varchar(255) DEFAULT NULL",
    "evt_id bigint(20) NOT NULL",
    "evt_id_type varchar(255) NOT NULL",
    "created_at datetime NOT NULL",
    "PRIMARY KEY (id)",
    "KEY event_args (args(191))",
    "KEY event_event (event(191))",
    "KEY event_evt_id (evt_id)",
    "KEY event_evt_id_type (evt_id_type(191))",
    "KEY event_created_at (created_at)",
)


@dataclass(frozen=True)
class NewUser:
    """User for ``WordPressSite.add_users``.

    ``roles`` is either role names, all granted, or a mapping of role name to
    granted flag, which writes ``b:0`` for the false ones. ``display_name``
    defaults to the login.
    """

    login: str
    email: str
    display_name: str | None = None
    first_name: str = ""
    last_name: str = ""
    roles: Iterable[str] | Mapping[str, bool] = ("subscriber",)
    registered: dt.datetime | None = None


@dataclass(frozen=True)
class NewTransaction:
    """MemberPress transaction for ``WordPressSite.add_transactions``.

    ``expires_at`` is a naive UTC datetime, None, or ``ZERO_DATE`` (lifetime, the
    MemberPress default). ``created_at`` defaults to the current UTC time.
    """

    user_id: int
    membership_id: int
    status: str = "complete"
    txn_type: str = "payment"
    expires_at: dt.datetime | str | None = ZERO_DATE
    created_at: dt.datetime | None = None
    subscription_id: int = 0
    amount: str = "0.00"
    gateway: str = "manual"
    trans_num: str = ""


class WordPressSite:
    """WordPress + MemberPress database that tests can create and fill.

    Writes go through one short transaction per call. On MySQL the session drops
    NO_ZERO_DATE and NO_ZERO_IN_DATE while it writes, and keeps strict mode so that
    invalid test data fails loudly.
    """

    def __init__(self, engine: sa.Engine, prefix: str = "wp_") -> None:
        self.engine = engine
        self.prefix = validate_prefix(prefix)
        self.tables = wordpress_tables(prefix)

    @property
    def is_mysql(self) -> bool:
        """Whether the engine talks to MySQL or MariaDB."""
        return self.engine.dialect.name in ("mysql", "mariadb")

    def create_schema(self) -> None:
        """Create the tables with the WordPress DDL on MySQL, create_all elsewhere."""
        if not self.is_mysql:
            self.tables.metadata.create_all(self.engine)
            return
        with self._begin() as connection:
            for statement in WORDPRESS_MYSQL_DDL(self.prefix):
                connection.execute(sa.text(statement))

    def add_user(
        self,
        login: str,
        email: str,
        display_name: str | None = None,
        first_name: str = "",
        last_name: str = "",
        roles: Iterable[str] | Mapping[str, bool] = ("subscriber",),
        registered: dt.datetime | None = None,
    ) -> int:
        """Insert one user with its name and capabilities meta and return the id."""
        user = NewUser(
            login=login,
            email=email,
            display_name=display_name,
            first_name=first_name,
            last_name=last_name,
            roles=roles,
            registered=registered,
        )
        return self.add_users([user])[0]

    def add_users(
        self, users: Iterable[NewUser], chunk_size: int = BULK_CHUNK_SIZE
    ) -> list[int]:
        """Insert users and their usermeta in chunks and return the new ids."""
        ids: list[int] = []
        with self._begin() as connection:
            next_id = self._next_id(connection, self.tables.users.c.ID)
            for chunk in _chunks(users, chunk_size):
                chunk_ids = list(range(next_id, next_id + len(chunk)))
                next_id += len(chunk)
                user_rows = [
                    self._user_row(user_id, user)
                    for user_id, user in zip(chunk_ids, chunk, strict=True)
                ]
                meta_rows = [
                    row
                    for user_id, user in zip(chunk_ids, chunk, strict=True)
                    for row in self._user_meta_rows(user_id, user)
                ]
                connection.execute(self.tables.users.insert(), user_rows)
                connection.execute(self.tables.usermeta.insert(), meta_rows)
                ids.extend(chunk_ids)
        return ids

    def set_user_meta(self, user_id: int, key: str, value: str | None) -> None:
        """Replace every usermeta row of ``key`` for the user with one raw value."""
        usermeta = self.tables.usermeta
        with self._begin() as connection:
            connection.execute(
                usermeta.delete()
                .where(usermeta.c.user_id == user_id)
                .where(usermeta.c.meta_key == key)
            )
            connection.execute(
                usermeta.insert(),
                {"user_id": user_id, "meta_key": key, "meta_value": value},
            )

    def set_capabilities(self, user_id: int, raw_value: str | None) -> None:
        """Store a raw ``<prefix>capabilities`` value, such as malformed data."""
        self.set_user_meta(user_id, self.tables.capabilities_key, raw_value)

    def add_membership(self, title: str, status: str = "publish") -> int:
        """Insert a MemberPress membership post and return its id."""
        now = _utc_now()
        posts = self.tables.posts
        row = {
            "post_author": 1,
            "post_date": now,
            "post_date_gmt": now,
            "post_content": "",
            "post_title": title,
            "post_excerpt": "",
            "post_status": status,
            "post_name": _slug(title),
            "to_ping": "",
            "pinged": "",
            "post_modified": now,
            "post_modified_gmt": now,
            "post_content_filtered": "",
            "post_parent": 0,
            "post_type": "memberpressproduct",
        }
        with self._begin() as connection:
            result = connection.execute(posts.insert(), row)
            return int(result.inserted_primary_key[0])

    def set_membership_status(self, membership_id: int, status: str) -> None:
        """Change a membership's post_status, such as to ``trash``."""
        posts = self.tables.posts
        with self._begin() as connection:
            connection.execute(
                posts.update()
                .where(posts.c.ID == membership_id)
                .values(post_status=status)
            )

    def add_transaction(
        self,
        user_id: int,
        membership_id: int,
        status: str = "complete",
        txn_type: str = "payment",
        expires_at: dt.datetime | str | None = ZERO_DATE,
        created_at: dt.datetime | None = None,
        subscription_id: int = 0,
    ) -> int:
        """Insert one MemberPress transaction and return its id."""
        transaction = NewTransaction(
            user_id=user_id,
            membership_id=membership_id,
            status=status,
            txn_type=txn_type,
            expires_at=expires_at,
            created_at=created_at,
            subscription_id=subscription_id,
        )
        return self.add_transactions([transaction])[0]

    def add_transactions(
        self,
        transactions: Iterable[NewTransaction],
        chunk_size: int = BULK_CHUNK_SIZE,
    ) -> list[int]:
        """Insert transactions in chunks and return the new ids in order."""
        ids: list[int] = []
        table = self.tables.transactions
        with self._begin() as connection:
            next_id = self._next_id(connection, table.c.id)
            for chunk in _chunks(transactions, chunk_size):
                rows = [
                    _transaction_row(next_id + offset, transaction)
                    for offset, transaction in enumerate(chunk)
                ]
                connection.execute(table.insert(), rows)
                ids.extend(row["id"] for row in rows)
                next_id += len(chunk)
        return ids

    def set_transaction_status(self, transaction_id: int, status: str) -> None:
        """Change a transaction's status, as a refund or a failed rebill does."""
        table = self.tables.transactions
        with self._begin() as connection:
            connection.execute(
                table.update().where(table.c.id == transaction_id).values(status=status)
            )

    def set_option(self, name: str, value: str) -> None:
        """Insert or replace one row of the options table."""
        options = self.tables.options
        with self._begin() as connection:
            connection.execute(options.delete().where(options.c.option_name == name))
            connection.execute(
                options.insert(),
                {"option_name": name, "option_value": value, "autoload": "yes"},
            )

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as connection:
            if not self.is_mysql:
                yield connection
                return
            previous = connection.execute(sa.text("SELECT @@SESSION.sql_mode")).scalar()
            modes = [mode for mode in previous.split(",") if mode]
            allowed = [mode for mode in modes if mode not in _ZERO_DATE_MODES]
            if allowed == modes:
                yield connection
                return
            _set_sql_mode(connection, ",".join(allowed))
            try:
                yield connection
            finally:
                _set_sql_mode(connection, previous)

    def _next_id(self, connection: sa.Connection, column: sa.Column) -> int:
        # Ids are assigned here so that a bulk insert can return them without a
        # round trip per row.
        current = connection.execute(sa.select(sa.func.max(column))).scalar()
        return int(current or 0) + 1

    def _user_row(self, user_id: int, user: NewUser) -> dict[str, object]:
        return {
            "ID": user_id,
            "user_login": user.login,
            "user_pass": "",
            "user_nicename": _slug(user.login)[:50],
            "user_email": user.email,
            "user_url": "",
            "user_registered": user.registered or _utc_now(),
            "user_activation_key": "",
            "user_status": 0,
            "display_name": user.login
            if user.display_name is None
            else user.display_name,
        }

    def _user_meta_rows(self, user_id: int, user: NewUser) -> list[dict[str, object]]:
        roles = _role_flags(user.roles)
        level = max(
            (_USER_LEVELS.get(role, 0) for role, granted in roles.items() if granted),
            default=0,
        )
        values = {
            "nickname": user.login,
            "first_name": user.first_name,
            "last_name": user.last_name,
            f"{self.prefix}capabilities": phpserial.dumps(roles),
            f"{self.prefix}user_level": str(level),
        }
        return [
            {"user_id": user_id, "meta_key": key, "meta_value": value}
            for key, value in values.items()
        ]


def _transaction_row(transaction_id: int, transaction: NewTransaction) -> dict:
    return {
        "id": transaction_id,
        "amount": transaction.amount,
        "total": transaction.amount,
        "user_id": transaction.user_id,
        "product_id": transaction.membership_id,
        "trans_num": transaction.trans_num or f"mp-txn-{transaction_id}",
        "status": transaction.status,
        "txn_type": transaction.txn_type,
        "gateway": transaction.gateway,
        "subscription_id": transaction.subscription_id,
        "created_at": transaction.created_at or _utc_now(),
        "expires_at": transaction.expires_at,
    }


def _role_flags(roles: Iterable[str] | Mapping[str, bool]) -> dict[str, bool]:
    if isinstance(roles, Mapping):
        return {str(role): bool(granted) for role, granted in roles.items()}
    if isinstance(roles, str):
        raise TypeError("roles must be a collection of role names, not one string")
    return dict.fromkeys(roles, True)


def _set_sql_mode(connection: sa.Connection, mode: str) -> None:
    connection.execute(sa.text("SET SESSION sql_mode = :mode"), {"mode": mode})


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
