"""Add the table of seen API request ids

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# utf8mb4 so that names with emoji fit; InnoDB for row locks and transactions.
TABLE_OPTIONS = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}


def upgrade() -> None:
    op.create_table(
        "api_seen_requests",
        sa.Column(
            "request_id",
            sa.String(length=64).with_variant(
                mysql.VARCHAR(length=64, charset="ascii", collation="ascii_bin"),
                "mysql",
                "mariadb",
            ),
            nullable=False,
        ),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_api_seen_requests")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("api_seen_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_seen_requests_signed_at"), ["signed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_seen_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_seen_requests_signed_at"))

    op.drop_table("api_seen_requests")
