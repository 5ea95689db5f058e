"""Engines and sessions for the state database and the WordPress database.

Both databases are SQLAlchemy URLs: SQLite for the embedded default, MySQL or
MariaDB (PyMySQL) in production. Engines are tuned per dialect here so that the
rest of the code can stay dialect-agnostic.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")

# MySQL error numbers worth retrying: deadlock, lock wait timeout, server gone
# away, lost connection. Anything else is a bug or bad data and is raised.
TRANSIENT_MYSQL_ERRORS = {1205, 1213, 2006, 2013}
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A WordPress read of 2,000 members' transactions, the largest the sync makes,
# took well under a second in bench/reconcile.py; this leaves a wide margin.
WORDPRESS_READ_TIMEOUT_SECONDS = 120
# GROUP_CONCAT results are cut at group_concat_max_len bytes: 1 KiB by default
# on MySQL, 1 MiB on MariaDB. The nightly evaluation joins each enrollment's
# habit summaries into one text, about 40 bytes per habit.
GROUP_CONCAT_MAX_LEN = 16 * 1024 * 1024


def create_state_engine(url: str, **options: object) -> Engine:
    """Create the engine for coachbridge's own tables."""
    engine = _create_engine(url, isolation="READ COMMITTED", **options)
    if not is_sqlite(engine):

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET SESSION group_concat_max_len = {GROUP_CONCAT_MAX_LEN}")
            cursor.close()

    return engine


def create_wordpress_engine(url: str, **options: object) -> Engine:
    """Create the engine used to read the WordPress database (never written).

    Reads time out after WORDPRESS_READ_TIMEOUT_SECONDS, so a server that
    accepts connections but never responds fails the sync instead of hanging it.
    """
    if sa.engine.make_url(url).get_backend_name() != "sqlite":
        connect_args = {
            "read_timeout": WORDPRESS_READ_TIMEOUT_SECONDS,
            "write_timeout": WORDPRESS_READ_TIMEOUT_SECONDS,
        }
        connect_args.update(options.pop("connect_args", {}))  # type: ignore[arg-type]
        options["connect_args"] = connect_args
    return _create_engine(url, isolation="READ COMMITTED", **options)


def _create_engine(url: str, isolation: str, **options: object) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, **options)

    query = dict(parsed.query)
    query.setdefault("charset", "utf8mb4")
    parsed = parsed.set(query=query)
    connect_args: dict[str, object] = {"connect_timeout": 5}
    connect_args.update(options.pop("connect_args", {}))  # type: ignore[arg-type]
    return sa.create_engine(
        parsed,
        isolation_level=isolation,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
        **options,
    )


def _create_sqlite_engine(url: str, **options: object) -> Engine:
    engine = sa.create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **options
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy issue BEGIN itself, so that every transaction can start
        # as IMMEDIATE: SQLite then takes its single write lock up front instead
        # of failing later when two readers both try to upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine) -> bool:
    """Tell whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def is_transient(error: BaseException) -> bool:
    """Tell whether a database error is worth retrying (deadlock, lost link)."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    original = getattr(error, "orig", None)
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int) and args[0] in TRANSIENT_MYSQL_ERRORS:
        return True
    return "database is locked" in str(original or "")


class Database:
    """The state database: an engine plus a session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **options: object) -> Database:
        """Create a Database for an SQLAlchemy URL."""
        return cls(create_state_engine(url, **options))

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session whose transaction commits on success, rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def run(
        self,
        work: Callable[[Session], T],
        what: str,
        attempts: int = 5,
    ) -> T:
        """Run ``work`` in a transaction, retrying transient errors with backoff.

        ``work`` must be safe to repeat: a retry starts a fresh transaction.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as session:
                    return work(session)
            except sa.exc.DBAPIError as error:
                if attempt == attempts or not is_transient(error):
                    raise
                delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
                log.warning(
                    "retrying %s after a transient database error "
                    "(attempt %d of %d, next in %.2fs): %s",
                    what,
                    attempt,
                    attempts,
                    delay,
                    error.orig,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        """Run a trivial query; raises the driver error when the database is down."""
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
