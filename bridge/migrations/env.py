"""Alembic environment: runs the state database migrations.

The connection comes from ``bridge.migrate`` through ``config.attributes``, so
migrations use the same engine settings as the service.
"""

from __future__ import annotations

from alembic import context

from bridge.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
