"""Add per-habit tick summaries for the nightly evaluation

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE_OPTIONS = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
    "mysql_engine": "InnoDB",
}

# Day numbers as Python's date.toordinal(): MariaDB's TO_DAYS and SQLite's
# whole Julian day number count from other origins.
_ORDINAL = {
    "sqlite": "(CAST(julianday(due_date) AS INTEGER) - 1721424)",
    "mysql": "(TO_DAYS(due_date) - 365)",
}
# SQLite has no BIT_OR; each value is one bit, so the sum of distinct values is
# their OR.
_OR = {"sqlite": "SUM(DISTINCT {})", "mysql": "BIT_OR({})"}


def upgrade() -> None:
    op.create_table(
        "habit_tick_summaries",
        sa.Column(
            "enrollment_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("habit_id", sa.Integer(), nullable=False),
        sa.Column("tick_count", sa.Integer(), nullable=False),
        sa.Column("first_due_date", sa.Date(), nullable=False),
        sa.Column("last_due_date", sa.Date(), nullable=False),
        sa.Column("previous_due_date", sa.Date(), nullable=True),
        sa.Column("residues", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_habit_tick_summaries_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["habit_id"],
            ["habits.id"],
            name=op.f("fk_habit_tick_summaries_habit_id_habits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "enrollment_id", "habit_id", name=op.f("pk_habit_tick_summaries")
        ),
        **TABLE_OPTIONS,
    )
    _summarize_existing_ticks()


def _summarize_existing_ticks() -> None:
    dialect = "sqlite" if op.get_context().dialect.name == "sqlite" else "mysql"
    bit = f"(1 << ({_ORDINAL[dialect]} % 42))"
    op.execute(
        "INSERT INTO habit_tick_summaries (enrollment_id, habit_id, tick_count, "
        "first_due_date, last_due_date, residues) "
        "SELECT enrollment_id, habit_id, COUNT(*), MIN(due_date), MAX(due_date), "
        f"{_OR[dialect].format(bit)} "
        "FROM habit_ticks GROUP BY enrollment_id, habit_id"
    )
    op.execute(
        "UPDATE habit_tick_summaries SET previous_due_date = ("
        "SELECT MAX(t.due_date) FROM habit_ticks t "
        "WHERE t.enrollment_id = habit_tick_summaries.enrollment_id "
        "AND t.habit_id = habit_tick_summaries.habit_id "
        "AND t.due_date < habit_tick_summaries.last_due_date) "
        "WHERE tick_count > 1"
    )


def downgrade() -> None:
    op.drop_table("habit_tick_summaries")
