"""State database models: coachbridge's own tables.

Conventions: every ``DateTime`` column holds a naive UTC instant; every ``Date``
column holds a calendar date in the site's time zone. WordPress objects (users,
memberships, transactions) are referred to by their WordPress ids, without
foreign keys, because they live in another database.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Integer ids that are BIGINT on MySQL but INTEGER on SQLite, where only
# "INTEGER PRIMARY KEY" gets automatic row ids.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Long text: TEXT is 64 KiB on MySQL, too small for some webhook bodies.
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current UTC instant as a naive datetime, as stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class DueUnit(enum.StrEnum):
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"


class ScheduleKind(enum.StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"
    INTERVAL = "interval"


class CohortKind(enum.StrEnum):
    ROLLING = "rolling"
    FIXED = "fixed"


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class InboxStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    FAILED = "failed"


def _enum(kind: type[enum.StrEnum], name: str) -> sa.Enum:
    # Stored as VARCHAR with a CHECK constraint rather than a native ENUM, so
    # that adding a value later is a plain migration on every database.
    return sa.Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class Program(Base):
    """Coaching content: milestones and habits, offered to memberships."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    messaging_enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[ProgramMembership]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="program",
        cascade="all, delete-orphan",
        order_by="Milestone.position",
    )
    habits: Mapped[list[Habit]] = relationship(
        back_populates="program",
        cascade="all, delete-orphan",
        order_by="Habit.position",
    )
    cohorts: Mapped[list[Cohort]] = relationship(
        back_populates="program", order_by="Cohort.id"
    )


class ProgramMembership(Base):
    """A MemberPress membership (a ``memberpressproduct`` post) granting a program."""

    __tablename__ = "program_memberships"

    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    membership_id: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, index=True
    )

    program: Mapped[Program] = relationship(back_populates="memberships")


class Milestone(Base):
    """A one-off goal due N days, weeks or months after the client's start date."""

    __tablename__ = "milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    due_amount: Mapped[int]
    due_unit: Mapped[DueUnit] = mapped_column(_enum(DueUnit, "due_unit"))

    program: Mapped[Program] = relationship(back_populates="milestones")


class Habit(Base):
    """A recurring action with due dates from a schedule, for a set length."""

    __tablename__ = "habits"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    schedule: Mapped[ScheduleKind] = mapped_column(_enum(ScheduleKind, "schedule"))
    # Chosen weekdays for the "weekdays" schedule, as a bit mask: Monday is bit 0.
    weekdays: Mapped[int] = mapped_column(default=0)
    interval_days: Mapped[int | None]
    start_offset_days: Mapped[int] = mapped_column(default=0)
    length_amount: Mapped[int]
    length_unit: Mapped[DueUnit] = mapped_column(_enum(DueUnit, "length_unit"))

    program: Mapped[Program] = relationship(back_populates="habits")


class Coach(Base):
    """A WordPress user registered as a coach; name and email cached from WordPress."""

    __tablename__ = "coaches"

    id: Mapped[int] = mapped_column(primary_key=True)
    wp_user_id: Mapped[int] = mapped_column(sa.BigInteger, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(250), default="")
    email: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    cohorts: Mapped[list[Cohort]] = relationship(back_populates="coach")


class Cohort(Base):
    """A group of clients in one program, led by one coach."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[CohortKind] = mapped_column(_enum(CohortKind, "cohort_kind"))
    # The shared start date of a fixed cohort; NULL for a rolling cohort.
    start_date: Mapped[dt.date | None]
    coach_id: Mapped[int] = mapped_column(
        sa.ForeignKey("coaches.id", ondelete="RESTRICT"), index=True
    )
    # Maximum number of active enrollments; NULL means no limit.
    capacity: Mapped[int | None]
    is_open: Mapped[bool] = mapped_column(default=True)
    appointments_enabled: Mapped[bool] = mapped_column(default=False)
    booking_url: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    program: Mapped[Program] = relationship(back_populates="cohorts")
    coach: Mapped[Coach] = relationship(back_populates="cohorts")


class Enrollment(Base):
    """One client in one program, through one cohort."""

    __tablename__ = "enrollments"
    __table_args__ = (
        sa.UniqueConstraint("wp_user_id", "program_id"),
        sa.Index("ix_enrollments_cohort_status", "cohort_id", "status"),
        sa.Index("ix_enrollments_program_status", "program_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wp_user_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="RESTRICT")
    )
    cohort_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cohorts.id", ondelete="RESTRICT")
    )
    status: Mapped[EnrollmentStatus] = mapped_column(
        _enum(EnrollmentStatus, "enrollment_status"), default=EnrollmentStatus.ACTIVE
    )
    start_date: Mapped[dt.date]
    # The membership and transaction that granted the program most recently;
    # NULL for a client enrolled by hand.
    membership_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    enrolled_by_hand: Mapped[bool] = mapped_column(default=False)
    # Set when an administrator unenrolls the client: the sync then leaves the
    # enrollment inactive even while a membership grants the program, until an
    # administrator adds the client again.
    unenrolled_by_hand: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deactivated_at: Mapped[dt.datetime | None]

    # Evaluation state, written by the rules evaluation so that lists read it
    # without recomputing.
    off_track: Mapped[bool] = mapped_column(default=False)
    progress_percent: Mapped[int] = mapped_column(default=0)
    milestones_done: Mapped[int] = mapped_column(default=0)
    milestones_total: Mapped[int] = mapped_column(default=0)
    habit_dates_done: Mapped[int] = mapped_column(default=0)
    habit_dates_due: Mapped[int] = mapped_column(default=0)
    completed_on: Mapped[dt.date | None]
    evaluated_on: Mapped[dt.date | None]
    last_activity_at: Mapped[dt.datetime | None]

    program: Mapped[Program] = relationship()
    cohort: Mapped[Cohort] = relationship()


class MilestoneTick(Base):
    """A milestone ticked done by a client."""

    __tablename__ = "milestone_ticks"

    enrollment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    milestone_id: Mapped[int] = mapped_column(
        sa.ForeignKey("milestones.id", ondelete="CASCADE"), primary_key=True
    )
    ticked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HabitTick(Base):
    """A habit ticked for one of its due dates."""

    __tablename__ = "habit_ticks"

    enrollment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    habit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("habits.id", ondelete="CASCADE"), primary_key=True
    )
    due_date: Mapped[dt.date] = mapped_column(primary_key=True)
    ticked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HabitTickSummary(Base):
    """Totals of one enrollment's ticks of one habit, kept current with each tick.

    The nightly evaluation reads these rows instead of every tick. A pair with
    no ticks has no row. ``residues`` has bit r set when some ticked date d has
    ``d.toordinal() % 42 == r``, which lets the evaluation check that every
    tick falls on the habit's schedule without reading the ticks.
    """

    __tablename__ = "habit_tick_summaries"

    enrollment_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    habit_id: Mapped[int] = mapped_column(
        sa.ForeignKey("habits.id", ondelete="CASCADE"), primary_key=True
    )
    tick_count: Mapped[int]
    first_due_date: Mapped[dt.date]
    last_due_date: Mapped[dt.date]
    # The latest ticked date before last_due_date; NULL with a single tick.
    previous_due_date: Mapped[dt.date | None]
    residues: Mapped[int] = mapped_column(sa.BigInteger)


class ActivityType(enum.StrEnum):
    PROGRAM_STARTED = "program_started"
    ENROLLED = "enrolled"
    UNENROLLED = "unenrolled"
    RESUMED = "resumed"
    NO_OPEN_COHORT = "no_open_cohort"
    MILESTONE_COMPLETED = "milestone_completed"
    MILESTONE_REOPENED = "milestone_reopened"
    HABIT_TICKED = "habit_ticked"
    HABIT_UNTICKED = "habit_unticked"
    OFF_TRACK = "off_track"
    BACK_ON_TRACK = "back_on_track"
    PROGRAM_COMPLETED = "program_completed"
    COHORT_CHANGED = "cohort_changed"
    MESSAGE_SENT = "message_sent"


class Activity(Base):
    """An append-only feed entry: what happened, to whom, in which program."""

    __tablename__ = "activity"
    __table_args__ = (
        sa.Index("ix_activity_type_occurred", "type", "occurred_at"),
        sa.Index("ix_activity_user_occurred", "wp_user_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    type: Mapped[str] = mapped_column(sa.String(40))
    # The client the entry is about.
    wp_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    program_id: Mapped[int | None] = mapped_column(index=True)
    cohort_id: Mapped[int | None]
    coach_id: Mapped[int | None] = mapped_column(index=True)
    enrollment_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Who did it: a WordPress user id, or NULL for the service itself.
    actor_wp_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    details: Mapped[dict | None] = mapped_column(sa.JSON)


class InboxEntry(Base):
    """A MemberPress webhook delivery, stored before it is acknowledged."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        sa.Index("ix_webhook_inbox_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(sa.String(100))
    body: Mapped[str] = mapped_column(LongText)
    body_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    wp_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[InboxStatus] = mapped_column(
        _enum(InboxStatus, "inbox_status"), default=InboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A worker that claimed the entry keeps its lease until this instant.
    lease_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    processed_at: Mapped[dt.datetime | None]


class JobLock(Base):
    """A lease on a scheduled job, so that one process runs each tick."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(200))
    locked_until: Mapped[dt.datetime | None]
    # The last tick (a scheduled fire time) that ran to completion.
    last_tick: Mapped[dt.datetime | None]
    last_finished_at: Mapped[dt.datetime | None]


# Request ids are case-sensitive, but MySQL's default utf8mb4 collations are not.
# The ascii_bin collation keeps "abc" and "ABC" distinct, as SQLite does anyway.
RequestIdString = sa.String(64).with_variant(
    mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)


class SeenRequest(Base):
    """A signed API request id, kept to reject replays of the same request."""

    __tablename__ = "api_seen_requests"

    request_id: Mapped[str] = mapped_column(RequestIdString, primary_key=True)
    # The request's signed timestamp. Rows are pruned once it is far in the past.
    signed_at: Mapped[dt.datetime] = mapped_column(index=True)


class Conversation(Base):
    """A private conversation between two WordPress users.

    The pair is stored with the lower user id first, so that two users have at
    most one conversation. Each side's read position is the id of the last
    message that side has seen.
    """

    __tablename__ = "conversations"
    __table_args__ = (sa.UniqueConstraint("user_low_id", "user_high_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_low_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_high_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    low_last_read_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    high_last_read_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_message_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Message(Base):
    """A message in a conversation. The body is plain text, never HTML."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    sender_wp_user_id: Mapped[int] = mapped_column(sa.BigInteger)
    body: Mapped[str] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
