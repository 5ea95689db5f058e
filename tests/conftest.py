"""Shared fixtures: database servers, state databases and the Flask app.

MariaDB tests carry the ``mariadb`` marker. They use the server named by
``COACHBRIDGE_TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306``),
create a fresh database for each test and drop it afterwards. When no server
responds they are skipped with the reason shown, except under CI (``CI=true``),
where an unreachable server fails the run instead of hiding the tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306"


def _server_url() -> str:
    return os.environ.get("COACHBRIDGE_TEST_MYSQL_URL", DEFAULT_MYSQL_URL).rstrip("/")


@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    """URL of a reachable MariaDB server without a database name."""
    url = _server_url()
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        reason = f"no MariaDB server at {url}: {error.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI must run the MariaDB tests)")
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


def _create_database(server_url: str, label: str) -> str:
    name = f"cbtest_{label}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE DATABASE `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        )
    engine.dispose()
    return name


def _drop_database(server_url: str, name: str) -> None:
    engine = sa.create_engine(server_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


@pytest.fixture
def mysql_database_factory(mysql_server_url: str) -> Iterator:
    """Create empty utf8mb4 databases on demand; all are dropped after the test.

    Call it with a short label; it returns a full SQLAlchemy URL.
    """
    created: list[str] = []

    def create(label: str = "db") -> str:
        name = _create_database(mysql_server_url, label)
        created.append(name)
        return f"{mysql_server_url}/{name}?charset=utf8mb4"

    yield create
    for name in created:
        _drop_database(mysql_server_url, name)


@pytest.fixture
def make_runtime(tmp_path) -> Iterator:
    """Build Runtimes on an upgraded state database; all are closed after the test.

    Arguments: ``state_url`` (default: an SQLite file in tmp_path), ``wordpress_url``
    (optional), ``clock`` and ``rng`` (optional), and ``config`` overrides as a
    mapping of sections, e.g. ``{"coaching": {"off_track_threshold": 2}}``.
    """
    from bridge.config import config_from_mapping
    from bridge.migrate import upgrade
    from bridge.runtime import Runtime

    built: list[Runtime] = []

    def make(
        state_url: str | None = None,
        wordpress_url: str | None = None,
        clock=None,
        rng=None,
        table_prefix: str = "wp_",
        **sections,
    ) -> Runtime:
        data = {section: dict(values) for section, values in sections.items()}
        data.setdefault("state", {})["database_url"] = (
            state_url or f"sqlite:///{tmp_path}/state-{len(built)}.sqlite3"
        )
        if wordpress_url:
            wordpress = data.setdefault("wordpress", {})
            wordpress["database_url"] = wordpress_url
            wordpress["table_prefix"] = table_prefix
        runtime = Runtime.from_config(config_from_mapping(data))
        if clock is not None:
            runtime.clock = clock
        if rng is not None:
            runtime.rng = rng
        upgrade(runtime.db.engine)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()
