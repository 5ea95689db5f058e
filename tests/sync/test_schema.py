"""Table definitions, the MySQL DDL and the WordPressSite test helper."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from sync.schema import ZERO_DATE, validate_prefix, wordpress_tables
from tests.wpsite import WORDPRESS_MYSQL_DDL, NewTransaction, NewUser, WordPressSite


def test_wordpress_tables_cached_per_prefix():
    assert wordpress_tables("wp_") is wordpress_tables("wp_")
    assert wordpress_tables("wpx_") is not wordpress_tables("wp_")


def test_wordpress_tables_use_prefix():
    tables = wordpress_tables("wpx_")

    assert tables.users.name == "wpx_users"
    assert tables.usermeta.name == "wpx_usermeta"
    assert tables.transactions.name == "wpx_mepr_transactions"
    assert tables.events.name == "wpx_mepr_events"
    assert tables.capabilities_key == "wpx_capabilities"
    assert set(tables.metadata.tables) == {
        "wpx_users",
        "wpx_usermeta",
        "wpx_options",
        "wpx_posts",
        "wpx_mepr_transactions",
        "wpx_mepr_subscriptions",
        "wpx_mepr_members",
        "wpx_mepr_events",
    }


@pytest.mark.parametrize(
    "prefix",
    ["", "wp-", "wp_;DROP TABLE x;", "wp.", "wp ", "wp`", "wü_", None],
    ids=["empty", "dash", "sql", "dot", "space", "backtick", "non-ascii", "none"],
)
def test_invalid_prefix_rejected(prefix):
    with pytest.raises(ValueError, match="invalid WordPress table prefix"):
        validate_prefix(prefix)
    with pytest.raises(ValueError):
        wordpress_tables(prefix)
    with pytest.raises(ValueError):
        WORDPRESS_MYSQL_DDL(prefix)


def test_create_all_builds_sqlite_database(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/demo.sqlite3")
    tables = wordpress_tables("wp_")

    tables.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            tables.transactions.insert(),
            {
                "amount": "10.00",
                "user_id": 1,
                "product_id": 2,
                "created_at": dt.datetime(2026, 1, 1, 8, 30),
            },
        )
        row = connection.execute(sa.select(tables.transactions)).one()

    assert row.expires_at == ZERO_DATE
    assert row.created_at == dt.datetime(2026, 1, 1, 8, 30)
    assert row.status == "pending"
    engine.dispose()


def test_mysql_ddl_has_wordpress_column_types():
    statements = "\n".join(WORDPRESS_MYSQL_DDL("wp_"))

    assert "CREATE TABLE `wp_users`" in statements
    assert "ID bigint(20) unsigned NOT NULL AUTO_INCREMENT" in statements
    assert "user_registered datetime NOT NULL DEFAULT '0000-00-00 00:00:00'" in (
        statements
    )
    assert "meta_value longtext" in statements
    assert "KEY user_id (user_id)" in statements
    assert "utf8mb4_unicode_520_ci" in statements
    assert len(WORDPRESS_MYSQL_DDL("wp_")) == 8


@pytest.mark.mariadb
def test_mysql_ddl_applies_on_mariadb(mysql_database_factory):
    engine = sa.create_engine(mysql_database_factory("ddl"))
    site = WordPressSite(engine, prefix="wpx_")

    site.create_schema()
    with engine.connect() as connection:
        columns = {
            (row.TABLE_NAME, row.COLUMN_NAME): row
            for row in connection.execute(
                sa.text(
                    "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT, "
                    "COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE()"
                )
            )
        }
        transaction_indexes = {
            row.Key_name
            for row in connection.execute(
                sa.text("SHOW INDEX FROM wpx_mepr_transactions")
            )
        }
    engine.dispose()

    assert columns["wpx_users", "ID"].COLUMN_TYPE == "bigint(20) unsigned"
    assert columns["wpx_users", "user_login"].COLLATION_NAME == (
        "utf8mb4_unicode_520_ci"
    )
    assert (
        "0000-00-00 00:00:00" in columns["wpx_users", "user_registered"].COLUMN_DEFAULT
    )
    assert columns["wpx_usermeta", "meta_value"].COLUMN_TYPE == "longtext"
    assert columns["wpx_posts", "post_title"].COLUMN_TYPE == "text"
    assert columns["wpx_mepr_transactions", "user_id"].COLUMN_TYPE == "bigint(20)"
    assert columns["wpx_mepr_transactions", "expires_at"].COLUMN_TYPE == "datetime"
    assert "user_id" in transaction_indexes


def test_add_user_writes_capabilities_with_byte_lengths(site):
    user_id = site.add_user("eva", "eva@example.org", roles=("éditeur", "coach"))

    meta = _user_meta(site, user_id)

    assert meta["wp_capabilities"] == 'a:2:{s:8:"éditeur";b:1;s:5:"coach";b:1;}'
    assert meta["wp_user_level"] == "0"
    assert meta["nickname"] == "eva"


def test_add_user_writes_denied_roles_as_false(site):
    user_id = site.add_user(
        "root", "root@example.org", roles={"administrator": True, "editor": False}
    )

    meta = _user_meta(site, user_id)

    assert meta["wp_capabilities"] == (
        'a:2:{s:13:"administrator";b:1;s:6:"editor";b:0;}'
    )
    assert meta["wp_user_level"] == "10"


def test_add_user_rejects_single_role_string(site):
    with pytest.raises(TypeError, match="collection of role names"):
        site.add_user("eva", "eva@example.org", roles="administrator")


def test_add_users_returns_consecutive_ids(site):
    first = site.add_user("first", "first@example.org")

    ids = site.add_users(
        (NewUser(f"bulk{i}", f"bulk{i}@example.org") for i in range(7)), chunk_size=3
    )

    assert ids == list(range(first + 1, first + 8))


def test_add_transactions_returns_consecutive_ids(site):
    user_id = site.add_user("ana", "ana@example.org")
    membership_id = site.add_membership("Monthly")

    ids = site.add_transactions(
        [NewTransaction(user_id, membership_id) for _ in range(5)], chunk_size=2
    )

    assert ids == [1, 2, 3, 4, 5]


def test_set_option_replaces_value(site):
    site.set_option("timezone_string", "Europe/Lisbon")
    site.set_option("timezone_string", "America/Sao_Paulo")

    options = site.tables.options
    with site.engine.connect() as connection:
        values = connection.execute(
            sa.select(options.c.option_value).where(
                options.c.option_name == "timezone_string"
            )
        ).scalars()
        assert list(values) == ["America/Sao_Paulo"]


@pytest.mark.mariadb
@pytest.mark.slow
def test_bulk_insert_meets_benchmark_size(mysql_database_factory):
    engine = sa.create_engine(mysql_database_factory("bulk"))
    site = WordPressSite(engine)
    site.create_schema()
    membership_ids = [site.add_membership(f"Plan {number}") for number in range(3)]
    started = time.perf_counter()

    user_ids = site.add_users(
        NewUser(f"member{number}", f"member{number}@example.org")
        for number in range(100_000)
    )
    site.add_transactions(
        NewTransaction(user_id, membership_id, expires_at=dt.datetime(2030, 1, 1))
        for user_id in user_ids
        for membership_id in membership_ids
    )
    elapsed = time.perf_counter() - started

    with engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count()).select_from(site.tables.transactions)
        ).scalar_one()
    engine.dispose()
    assert count == 300_000
    assert elapsed < 60, f"bulk insert took {elapsed:.1f} s"


def _user_meta(site: WordPressSite, user_id: int) -> dict[str, str]:
    usermeta = site.tables.usermeta
    with site.engine.connect() as connection:
        rows = connection.execute(
            sa.select(usermeta.c.meta_key, usermeta.c.meta_value).where(
                usermeta.c.user_id == user_id
            )
        )
        return {row.meta_key: row.meta_value for row in rows}
