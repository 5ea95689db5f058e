"""Schema migrations of the state database, with Alembic.

``coachbridge db upgrade`` calls :func:`upgrade`. Tables are created with
utf8mb4 and InnoDB on MySQL and MariaDB.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(engine: Engine, connection) -> AlembicConfig:  # type: ignore[no-untyped-def]
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (the latest by default)."""
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(_alembic_config(engine, connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    log.info("state database schema at %s (was %s)", after, before or "empty")


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at, or None when empty."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """Return the newest revision shipped with this version."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
