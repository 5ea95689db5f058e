"""Create the state tables

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
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
        "activity",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("wp_user_id", sa.BigInteger(), nullable=True),
        sa.Column("program_id", sa.Integer(), nullable=True),
        sa.Column("cohort_id", sa.Integer(), nullable=True),
        sa.Column("coach_id", sa.Integer(), nullable=True),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_wp_user_id", sa.BigInteger(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activity_coach_id"), ["coach_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_activity_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_activity_program_id"), ["program_id"], unique=False
        )
        batch_op.create_index(
            "ix_activity_type_occurred", ["type", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_activity_user_occurred", ["wp_user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "coaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wp_user_id", sa.BigInteger(), nullable=False),
        sa.Column("display_name", sa.String(length=250), nullable=False),
        sa.Column("email", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coaches")),
        sa.UniqueConstraint("wp_user_id", name=op.f("uq_coaches_wp_user_id")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_tick", sa.DateTime(), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_locks")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("messaging_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("slug", name=op.f("uq_programs_slug")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "webhook_inbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column(
            "body",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("wp_user_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "done",
                "ignored",
                "duplicate",
                "failed",
                name="inbox_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_inbox_body_sha256"), ["body_sha256"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_inbox_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "rolling",
                "fixed",
                name="cohort_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("coach_id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("appointments_enabled", sa.Boolean(), nullable=False),
        sa.Column("booking_url", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coach_id"],
            ["coaches.id"],
            name=op.f("fk_cohorts_coach_id_coaches"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_cohorts_program_id_programs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohorts_coach_id"), ["coach_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cohorts_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "habits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "schedule",
            sa.Enum(
                "daily",
                "weekdays",
                "interval",
                name="schedule",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("weekdays", sa.Integer(), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=True),
        sa.Column("start_offset_days", sa.Integer(), nullable=False),
        sa.Column("length_amount", sa.Integer(), nullable=False),
        sa.Column(
            "length_unit",
            sa.Enum(
                "days",
                "weeks",
                "months",
                name="length_unit",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_habits_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_habits")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("habits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_habits_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "milestones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("due_amount", sa.Integer(), nullable=False),
        sa.Column(
            "due_unit",
            sa.Enum(
                "days",
                "weeks",
                "months",
                name="due_unit",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_milestones_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_milestones_program_id"), ["program_id"], unique=False
        )

    op.create_table(
        "program_memberships",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_program_memberships_program_id_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "membership_id", name=op.f("pk_program_memberships")
        ),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("program_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_program_memberships_membership_id"),
            ["membership_id"],
            unique=False,
        )

    op.create_table(
        "enrollments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("wp_user_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "inactive",
                name="enrollment_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("membership_id", sa.BigInteger(), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("enrolled_by_hand", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(), nullable=True),
        sa.Column("off_track", sa.Boolean(), nullable=False),
        sa.Column("progress_percent", sa.Integer(), nullable=False),
        sa.Column("milestones_done", sa.Integer(), nullable=False),
        sa.Column("milestones_total", sa.Integer(), nullable=False),
        sa.Column("habit_dates_done", sa.Integer(), nullable=False),
        sa.Column("habit_dates_due", sa.Integer(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("evaluated_on", sa.Date(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohorts.id"],
            name=op.f("fk_enrollments_cohort_id_cohorts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_enrollments_program_id_programs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint(
            "wp_user_id",
            "program_id",
            name=op.f("uq_enrollments_wp_user_id_program_id"),
        ),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollments_cohort_status", ["cohort_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_enrollments_program_status", ["program_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enrollments_wp_user_id"), ["wp_user_id"], unique=False
        )

    op.create_table(
        "habit_ticks",
        sa.Column(
            "enrollment_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("habit_id", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("ticked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_habit_ticks_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["habit_id"],
            ["habits.id"],
            name=op.f("fk_habit_ticks_habit_id_habits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "enrollment_id", "habit_id", "due_date", name=op.f("pk_habit_ticks")
        ),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "milestone_ticks",
        sa.Column(
            "enrollment_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("milestone_id", sa.Integer(), nullable=False),
        sa.Column("ticked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_milestone_ticks_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_milestone_ticks_milestone_id_milestones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "enrollment_id", "milestone_id", name=op.f("pk_milestone_ticks")
        ),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("milestone_ticks")
    op.drop_table("habit_ticks")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_wp_user_id"))
        batch_op.drop_index("ix_enrollments_program_status")
        batch_op.drop_index("ix_enrollments_cohort_status")

    op.drop_table("enrollments")
    with op.batch_alter_table("program_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_program_memberships_membership_id"))

    op.drop_table("program_memberships")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_milestones_program_id"))

    op.drop_table("milestones")
    with op.batch_alter_table("habits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_habits_program_id"))

    op.drop_table("habits")
    with op.batch_alter_table("cohorts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohorts_program_id"))
        batch_op.drop_index(batch_op.f("ix_cohorts_coach_id"))

    op.drop_table("cohorts")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_status_next")
        batch_op.drop_index(batch_op.f("ix_webhook_inbox_body_sha256"))

    op.drop_table("webhook_inbox")
    op.drop_table("programs")
    op.drop_table("job_locks")
    op.drop_table("coaches")
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_user_occurred")
        batch_op.drop_index("ix_activity_type_occurred")
        batch_op.drop_index(batch_op.f("ix_activity_program_id"))
        batch_op.drop_index(batch_op.f("ix_activity_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_activity_coach_id"))

    op.drop_table("activity")
