"""SQLAlchemy Core tables for the WordPress and MemberPress data that sync reads.

The column lists cover what coachbridge reads plus the columns that have no default
in WordPress or MemberPress, so ``metadata.create_all()`` on SQLite gives a
WordPress-shaped database that a demo or a test can fill. For the exact MySQL
column types see ``bridge/wpsite.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

DEFAULT_PREFIX = "wp_"

# MemberPress stores this in expires_at for lifetime access. WordPress uses it as
# the "never" value of its NOT NULL datetime columns.
ZERO_DATE = "0000-00-00 00:00:00"

_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_]+")


class WPDateTime(sa.types.TypeDecorator):
    """MySQL DATETIME that keeps the zero date readable on every backend.

    Values read back are naive datetimes, None, or the zero date as the string
    ``ZERO_DATE``, which is what PyMySQL returns for it. SQLite stores the value as
    text in ``YYYY-MM-DD HH:MM:SS`` form, with ``.ffffff`` only when microseconds
    are set, so text comparison orders the values correctly. An aware datetime is
    stored as naive UTC.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(26))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: object, dialect: Dialect) -> object:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if dialect.name == "sqlite" and isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        return value

    def process_result_value(self, value: object, dialect: Dialect) -> object:
        if dialect.name != "sqlite" or not isinstance(value, str):
            return value
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value


def _id() -> sa.types.TypeEngine:
    # SQLite auto-increments only a column declared exactly INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _zero_date_default() -> sa.sql.elements.TextClause:
    return sa.text(f"'{ZERO_DATE}'")


@dataclass(frozen=True)
class WordPressTables:
    """Tables of one WordPress site, named with its table prefix."""

    prefix: str
    metadata: sa.MetaData
    users: sa.Table
    usermeta: sa.Table
    options: sa.Table
    posts: sa.Table
    transactions: sa.Table
    subscriptions: sa.Table
    members: sa.Table
    events: sa.Table

    @property
    def capabilities_key(self) -> str:
        """Usermeta key of the serialized roles array, such as ``wp_capabilities``."""
        return f"{self.prefix}capabilities"


def validate_prefix(prefix: str) -> str:
    """Return the table prefix, or raise ValueError unless it is ``[A-Za-z0-9_]+``.

    The prefix becomes part of table names in SQL text, so it must not contain
    quotes, dots or spaces.
    """
    if not isinstance(prefix, str) or not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"invalid WordPress table prefix {prefix!r}: "
            "use only letters, digits and underscores, such as 'wp_'"
        )
    return prefix


@cache
def wordpress_tables(prefix: str = DEFAULT_PREFIX) -> WordPressTables:
    """Build the table definitions for a prefix, cached per prefix."""
    validate_prefix(prefix)
    metadata = sa.MetaData()
    return WordPressTables(
        prefix=prefix,
        metadata=metadata,
        users=_users(metadata, prefix),
        usermeta=_usermeta(metadata, prefix),
        options=_options(metadata, prefix),
        posts=_posts(metadata, prefix),
        transactions=_transactions(metadata, prefix),
        subscriptions=_subscriptions(metadata, prefix),
        members=_members(metadata, prefix),
        events=_events(metadata, prefix),
    )


def _users(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}users",
        metadata,
        sa.Column("ID", _id(), primary_key=True, autoincrement=True),
        sa.Column("user_login", sa.String(60), nullable=False, server_default=""),
        sa.Column("user_pass", sa.String(255), nullable=False, server_default=""),
        sa.Column("user_nicename", sa.String(50), nullable=False, server_default=""),
        sa.Column("user_email", sa.String(100), nullable=False, server_default=""),
        sa.Column("user_url", sa.String(100), nullable=False, server_default=""),
        sa.Column(
            "user_registered",
            WPDateTime(),
            nullable=False,
            server_default=_zero_date_default(),
        ),
        sa.Column(
            "user_activation_key", sa.String(255), nullable=False, server_default=""
        ),
        sa.Column("user_status", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("display_name", sa.String(250), nullable=False, server_default=""),
        sa.Index(f"{prefix}users_user_login_key", "user_login"),
        sa.Index(f"{prefix}users_user_email", "user_email"),
    )


def _usermeta(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}usermeta",
        metadata,
        sa.Column("umeta_id", _id(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("meta_key", sa.String(255), nullable=True),
        sa.Column("meta_value", sa.Text(), nullable=True),
        sa.Index(f"{prefix}usermeta_user_id", "user_id"),
        sa.Index(f"{prefix}usermeta_meta_key", "meta_key"),
    )


def _options(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}options",
        metadata,
        sa.Column("option_id", _id(), primary_key=True, autoincrement=True),
        sa.Column(
            "option_name",
            sa.String(191),
            nullable=False,
            server_default="",
            unique=True,
        ),
        sa.Column("option_value", sa.Text(), nullable=False),
        sa.Column("autoload", sa.String(20), nullable=False, server_default="yes"),
    )


def _posts(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}posts",
        metadata,
        sa.Column("ID", _id(), primary_key=True, autoincrement=True),
        sa.Column("post_author", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column(
            "post_date",
            WPDateTime(),
            nullable=False,
            server_default=_zero_date_default(),
        ),
        sa.Column(
            "post_date_gmt",
            WPDateTime(),
            nullable=False,
            server_default=_zero_date_default(),
        ),
        sa.Column("post_content", sa.Text(), nullable=False, server_default=""),
        sa.Column("post_title", sa.Text(), nullable=False, server_default=""),
        sa.Column("post_excerpt", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "post_status", sa.String(20), nullable=False, server_default="publish"
        ),
        sa.Column("post_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("to_ping", sa.Text(), nullable=False, server_default=""),
        sa.Column("pinged", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "post_modified",
            WPDateTime(),
            nullable=False,
            server_default=_zero_date_default(),
        ),
        sa.Column(
            "post_modified_gmt",
            WPDateTime(),
            nullable=False,
            server_default=_zero_date_default(),
        ),
        sa.Column(
            "post_content_filtered", sa.Text(), nullable=False, server_default=""
        ),
        sa.Column("post_parent", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("post_type", sa.String(20), nullable=False, server_default="post"),
        sa.Index(f"{prefix}posts_type_status", "post_type", "post_status"),
    )


def _transactions(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}mepr_transactions",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False, server_default="0"),
        sa.Column("total", sa.Numeric(16, 2), server_default="0"),
        sa.Column("tax_amount", sa.Numeric(16, 2), server_default="0"),
        sa.Column("tax_rate", sa.Numeric(6, 3), server_default="0"),
        sa.Column("tax_desc", sa.String(255), server_default=""),
        sa.Column("tax_compound", sa.Integer(), server_default="0"),
        sa.Column("tax_shipping", sa.Integer(), server_default="1"),
        sa.Column("tax_class", sa.String(255), server_default="standard"),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.BigInteger()),
        sa.Column("trans_num", sa.String(255)),
        sa.Column("status", sa.String(255), server_default="pending"),
        sa.Column("txn_type", sa.String(255), server_default="payment"),
        sa.Column("response", sa.Text()),
        sa.Column("gateway", sa.String(255), server_default="manual"),
        sa.Column("subscription_id", sa.BigInteger()),
        sa.Column("ip_addr", sa.String(255)),
        sa.Column("prorated", sa.Integer(), server_default="0"),
        sa.Column("created_at", WPDateTime(), nullable=False),
        sa.Column("expires_at", WPDateTime(), server_default=_zero_date_default()),
        sa.Column("corporate_account_id", sa.BigInteger(), server_default="0"),
        sa.Column("parent_transaction_id", sa.BigInteger(), server_default="0"),
        sa.Index(f"{prefix}mepr_transactions_user_id", "user_id"),
        sa.Index(f"{prefix}mepr_transactions_product_id", "product_id"),
    )


def _subscriptions(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}mepr_subscriptions",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.BigInteger()),
        sa.Column("subscr_id", sa.String(255), server_default=""),
        sa.Column("price", sa.Numeric(16, 2), nullable=False, server_default="0"),
        sa.Column("total", sa.Numeric(16, 2), server_default="0"),
        sa.Column("gateway", sa.String(255), server_default="manual"),
        sa.Column("period", sa.Integer(), server_default="1"),
        sa.Column("period_type", sa.String(20), server_default="months"),
        sa.Column("trial", sa.Integer(), server_default="0"),
        sa.Column("trial_days", sa.Integer(), server_default="1"),
        sa.Column("status", sa.String(20), server_default="pending"),
        sa.Column("created_at", WPDateTime(), nullable=False),
        sa.Index(f"{prefix}mepr_subscriptions_user_id", "user_id"),
    )


def _members(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}mepr_members",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("first_txn_id", sa.BigInteger()),
        sa.Column("latest_txn_id", sa.BigInteger()),
        sa.Column("txn_count", sa.BigInteger()),
        sa.Column("expired_txn_count", sa.BigInteger()),
        sa.Column("active_txn_count", sa.BigInteger()),
        sa.Column("sub_count", sa.BigInteger()),
        sa.Column("memberships", sa.Text()),
        sa.Column("inactive_memberships", sa.Text()),
        sa.Column("login_count", sa.BigInteger()),
        sa.Column("total_spent", sa.Numeric(16, 2), server_default="0"),
        sa.Column("trial_txn_count", sa.BigInteger()),
        sa.Column("created_at", WPDateTime(), nullable=False),
        sa.Column("updated_at", WPDateTime(), nullable=False),
    )


def _events(metadata: sa.MetaData, prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}mepr_events",
        metadata,
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(255), nullable=False, server_default="login"),
        sa.Column("args", sa.String(255)),
        sa.Column("evt_id", sa.BigInteger(), nullable=False),
        sa.Column("evt_id_type", sa.String(255), nullable=False),
        sa.Column("created_at", WPDateTime(), nullable=False),
        sa.Index(f"{prefix}mepr_events_evt_id", "evt_id"),
    )
