"""The migrations build exactly the schema that the models describe."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bridge.migrate import current_revision, head_revision, upgrade
from bridge.models import Base


def schema_differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_sqlite_schema_matches_models(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/state.sqlite3")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


@pytest.mark.mariadb
def test_mariadb_schema_matches_models(mysql_database_factory):
    engine = sa.create_engine(mysql_database_factory("migrations"))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    engine.dispose()


def test_downgrade_to_empty_and_back(tmp_path):
    from alembic import command

    from bridge.migrate import _alembic_config

    engine = sa.create_engine(f"sqlite:///{tmp_path}/state.sqlite3")
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(_alembic_config(engine, connection), "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert schema_differences(engine) == []
