"""WordPressUnavailable when the WordPress database cannot be reached."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sync.reader import WordPressReader, WordPressUnavailable

# Port 1 on the loopback address has no server, so connecting fails at once.
CLOSED_PORT_URL = "mysql+pymysql://coach:s3cret-pass@127.0.0.1:1/wordpress"


@pytest.fixture
def closed_port_reader():
    engine = sa.create_engine(CLOSED_PORT_URL, connect_args={"connect_timeout": 2})
    yield WordPressReader(engine)
    engine.dispose()


@pytest.mark.parametrize(
    "call",
    [
        lambda reader: reader.ping(),
        lambda reader: reader.user(1),
        lambda reader: reader.users([1, 2]),
        lambda reader: reader.search_users("ana"),
        lambda reader: reader.memberships(),
        lambda reader: reader.site_time(),
        lambda reader: reader.access(1, dt.datetime(2026, 1, 1)),
        lambda reader: next(reader.iter_access(dt.datetime(2026, 1, 1))),
        lambda reader: reader.count_members(),
    ],
    ids=[
        "ping",
        "user",
        "users",
        "search_users",
        "memberships",
        "site_time",
        "access",
        "iter_access",
        "count_members",
    ],
)
def test_closed_port_raises_unavailable(closed_port_reader, call):
    with pytest.raises(WordPressUnavailable) as raised:
        call(closed_port_reader)

    message = str(raised.value)
    assert "127.0.0.1:1/wordpress" in message
    assert "s3cret-pass" not in message
    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)


def test_missing_sqlite_directory_raises_unavailable(tmp_path):
    path = tmp_path / "missing" / "wordpress.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")

    with pytest.raises(WordPressUnavailable, match="missing"):
        WordPressReader(engine).ping()
    engine.dispose()


@pytest.mark.mariadb
def test_killed_connection_raises_unavailable(mysql_database_factory, monkeypatch):
    engine = sa.create_engine(mysql_database_factory("kill"), poolclass=sa.NullPool)
    reader = WordPressReader(engine)
    killer = sa.create_engine(mysql_database_factory("killer"))
    original_connect = reader.engine.connect

    def connect_then_kill() -> sa.Connection:
        connection = original_connect()
        connection_id = connection.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
        with killer.begin() as admin:
            admin.execute(sa.text(f"KILL {int(connection_id)}"))
        return connection

    monkeypatch.setattr(engine, "connect", connect_then_kill)

    with pytest.raises(WordPressUnavailable):
        reader.ping()
    killer.dispose()
    engine.dispose()
