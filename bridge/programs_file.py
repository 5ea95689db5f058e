"""Load programs, milestones, habits, cohorts and coaches from a TOML or JSON file.

The format is described in docs/programs-file.md. Loading is idempotent by
program slug: a second load of the same file changes nothing. The whole file is
validated before anything is written and applied in one transaction, so a bad
file changes nothing. Once a program has enrollments its milestones and habits
are locked, because clients' ticks and progress refer to them; cohorts and
memberships can still change.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy.orm import Session

from bridge.errors import Conflict, InvalidRequest, Unavailable
from bridge.models import (
    Coach,
    Cohort,
    CohortKind,
    DueUnit,
    Enrollment,
    Habit,
    Milestone,
    Program,
    ProgramMembership,
    ScheduleKind,
)
from bridge.runtime import Runtime
from rules.schedules import HabitSchedule, MilestoneSchedule
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# "6 weeks", "1 month", "10 days": a whole number and a unit, singular or plural.
DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*(day|week|month)s?\s*$", re.IGNORECASE)
MAX_URL_LENGTH = 500
# Descriptions are TEXT columns, which hold 65,535 bytes on MySQL and MariaDB:
# 10,000 characters of up to 4 bytes each in utf8mb4 always fit.
MAX_DESCRIPTION_LENGTH = 10_000
# WordPress ids are stored in signed BIGINT columns, capacities in INT columns.
MAX_WORDPRESS_ID = 2**63 - 1
MAX_CAPACITY = 2**31 - 1
# Maximum amount of a delay or length in any unit, and maximum every_days and
# start_offset_days. Due dates then stay under about 940 years after the start
# date, inside the calendar of datetime.date (up to 9999-12-31) for any start
# date before the year 9000. The admin API documents the same limits.
MAX_DURATION_AMOUNT = 10_000
MAX_DAYS = 36_500
LAST_START_YEAR = 9000
# Items per program. A program page lists them all and the nightly evaluation
# joins each client's habit summaries into one text, so both stay bounded.
MAX_MILESTONES = 200
MAX_HABITS = 50
MAX_COHORTS = 200
MAX_MEMBERSHIPS = 200
ISO_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
# Validation errors listed in one message; the rest are counted.
MAX_REPORTED_ERRORS = 20


def _date_or_iso_text(value: object) -> object:
    # Pydantic would also read a number, or a text of digits, as a Unix
    # timestamp; a file means a date.
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and ISO_DATE_PATTERN.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("expected a date such as 2025-04-01")


def _before_last_year(value: dt.date) -> dt.date:
    if value.year >= LAST_START_YEAR:
        raise ValueError(f"expected a date before the year {LAST_START_YEAR}")
    return value


Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
WordPressId = Annotated[StrictInt, Field(ge=1, le=MAX_WORDPRESS_ID)]
FileDate = Annotated[
    dt.date, BeforeValidator(_date_or_iso_text), AfterValidator(_before_last_year)
]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilestoneEntry(_Entry):
    """A milestone as written in the file."""

    title: Title
    description: Description = ""
    due: str | None = None
    due_amount: StrictInt | None = None
    due_unit: DueUnit | None = None

    @model_validator(mode="after")
    def _normalize_due(self) -> MilestoneEntry:
        amount, unit = _duration(self.due, self.due_amount, self.due_unit, "due")
        MilestoneSchedule(amount, unit)
        self.due_amount = amount
        self.due_unit = unit
        return self

    def key(self) -> tuple[object, ...]:
        """Return the values that define the milestone, for comparison."""
        return (self.title, self.description, self.due_amount, self.due_unit)


class HabitEntry(_Entry):
    """A habit as written in the file."""

    title: Title
    description: Description = ""
    schedule: Literal["daily", "weekdays", "interval"]
    weekdays: list[str] = []
    every_days: Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)] | None = None
    start_offset_days: Annotated[StrictInt, Field(ge=0, le=MAX_DAYS)] = 0
    length: str | None = None
    length_amount: StrictInt | None = None
    length_unit: DueUnit | None = None

    @model_validator(mode="after")
    def _check_schedule(self) -> HabitEntry:
        _check_schedule_fields(self.schedule, self.weekdays, self.every_days)
        amount, unit = _duration(
            self.length, self.length_amount, self.length_unit, "length"
        )
        HabitSchedule(
            kind=self.schedule,
            start_offset_days=self.start_offset_days,
            length_amount=amount,
            length_unit=unit,
            weekdays=_weekday_numbers(self.weekdays),
            interval_days=self.every_days,
        )
        self.length_amount = amount
        self.length_unit = unit
        return self

    @property
    def weekday_mask(self) -> int:
        """Return the chosen weekdays as a bit mask, Monday as bit 0."""
        return sum(1 << day for day in _weekday_numbers(self.weekdays))

    def key(self) -> tuple[object, ...]:
        """Return the values that define the habit, for comparison."""
        return (
            self.title,
            self.description,
            ScheduleKind(self.schedule),
            self.weekday_mask,
            self.every_days,
            self.start_offset_days,
            self.length_amount,
            self.length_unit,
        )


class CohortEntry(_Entry):
    """A cohort as written in the file."""

    name: Title
    type: Literal["rolling", "fixed"] = "rolling"
    start_date: FileDate | None = None
    coach: WordPressId
    capacity: Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY)] | None = None
    open: StrictBool = True
    appointments: StrictBool = False
    booking_url: str | None = None

    @model_validator(mode="after")
    def _check_cohort(self) -> CohortEntry:
        if self.type == "fixed" and self.start_date is None:
            raise ValueError("missing start_date: a fixed cohort needs its start date")
        if self.type == "rolling" and self.start_date is not None:
            raise ValueError(
                "start_date is set on a rolling cohort, where each client starts on "
                'the day they enroll; remove it or use type = "fixed"'
            )
        if self.booking_url is not None:
            _check_booking_url(self.booking_url)
        if self.appointments and not self.booking_url:
            raise ValueError("missing booking_url: appointments = true needs one")
        return self

    def values(self, coach_id: int) -> dict[str, object]:
        """Return the Cohort column values this entry sets."""
        return {
            "kind": CohortKind(self.type),
            "start_date": self.start_date,
            "coach_id": coach_id,
            "capacity": self.capacity,
            "is_open": self.open,
            "appointments_enabled": self.appointments,
            "booking_url": self.booking_url,
        }


class ProgramEntry(_Entry):
    """A program as written in the file."""

    slug: Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)]
    title: Title
    description: Description = ""
    messaging_enabled: StrictBool = True
    memberships: Annotated[list[WordPressId], Field(max_length=MAX_MEMBERSHIPS)] = []
    milestones: Annotated[list[MilestoneEntry], Field(max_length=MAX_MILESTONES)] = []
    habits: Annotated[list[HabitEntry], Field(max_length=MAX_HABITS)] = []
    cohorts: Annotated[list[CohortEntry], Field(max_length=MAX_COHORTS)] = []

    @model_validator(mode="after")
    def _check_unique(self) -> ProgramEntry:
        _require_unique(self.memberships, "memberships", "membership id")
        _require_unique([c.name for c in self.cohorts], "cohorts", "cohort name")
        return self


class CoachEntry(_Entry):
    """A coach's name and email, used when no WordPress database is configured."""

    wp_user_id: WordPressId
    display_name: Annotated[str, StringConstraints(max_length=250)] = ""
    email: Annotated[str, StringConstraints(max_length=100)] = ""


class ProgramsFile(_Entry):
    """The whole file: programs and optional coach details."""

    programs: Annotated[list[ProgramEntry], Field(min_length=1)]
    coaches: list[CoachEntry] = []

    @model_validator(mode="after")
    def _check_unique(self) -> ProgramsFile:
        _require_unique([p.slug for p in self.programs], "programs", "program slug")
        _require_unique(
            [c.wp_user_id for c in self.coaches], "coaches", "coach wp_user_id"
        )
        return self

    def coach_ids(self) -> list[int]:
        """Return every coach's WordPress user id, from cohorts and [[coaches]]."""
        ids = {cohort.coach for p in self.programs for cohort in p.cohorts}
        ids.update(coach.wp_user_id for coach in self.coaches)
        return sorted(ids)


@dataclass
class ProgramOutcome:
    """The outcome of a load for one program, with the changes it made."""

    slug: str
    status: Literal["created", "updated", "unchanged"]
    changes: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """The outcome of a load: one entry per program, plus coach cache counts."""

    path: str
    programs: list[ProgramOutcome] = field(default_factory=list)
    coaches_created: int = 0
    coaches_updated: int = 0

    @property
    def changed(self) -> bool:
        """Tell whether the load wrote anything."""
        touched = self.coaches_created or self.coaches_updated
        return bool(touched) or any(p.status != "unchanged" for p in self.programs)

    def lines(self) -> list[str]:
        """Return a human summary, one line per program and one for coaches."""
        lines = [f"loaded {self.path}"]
        for outcome in self.programs:
            detail = f" ({'; '.join(outcome.changes)})" if outcome.changes else ""
            lines.append(f"program {outcome.slug}: {outcome.status}{detail}")
        lines.append(
            f"coaches: {self.coaches_created} created, {self.coaches_updated} updated"
        )
        return lines


@dataclass(frozen=True)
class _CoachInfo:
    display_name: str
    email: str


def load_programs_file(runtime: Runtime, path: str | Path) -> LoadResult:
    """Create or update the programs of a TOML or JSON file in one transaction.

    Raises InvalidRequest for an unreadable or invalid file, Conflict when the
    file changes the milestones or habits of a program that has enrollments, and
    Unavailable when WordPress is configured but cannot be reached. In each case
    nothing was changed.
    """
    path = Path(path)
    parsed = parse_programs_file(path)
    coaches = _coach_details(runtime, parsed)
    try:
        result = runtime.db.run(
            lambda session: _apply(session, parsed, coaches, str(path)),
            f"load of programs file {path}",
        )
    except sa.exc.IntegrityError as error:
        log.warning("load of programs file %s failed: %s", path, error.orig)
        raise Conflict(
            f"{path}: not loaded, a program or cohort was changed at the same time "
            f"({error.orig}); run the load again"
        ) from None
    for line in result.lines():
        log.info("%s", line)
    return result


def parse_programs_file(path: Path) -> ProgramsFile:
    """Read and validate a programs file, without touching any database."""
    raw = _read(path)
    try:
        return ProgramsFile.model_validate(raw)
    except ValidationError as error:
        raise InvalidRequest(_describe_errors(error, raw, path)) from None


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise InvalidRequest(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            "name the file *.toml or *.json"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidRequest(
            f"{path}: cannot read the file: {error.strerror}"
        ) from None
    kind = suffix[1:].upper()
    try:
        # utf-8-sig drops the byte order mark that some Windows editors write.
        text = data.decode("utf-8-sig")
        if suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text, object_pairs_hook=_object_without_duplicates)
    except (
        tomllib.TOMLDecodeError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        _DuplicateKey,
    ) as error:
        raise InvalidRequest(f"{path}: invalid {kind}: {error}") from None
    except ValueError:
        # Both parsers call int(), which rejects literals longer than
        # sys.get_int_max_str_digits().
        raise InvalidRequest(
            f"{path}: invalid {kind}: a number with too many digits "
            f"(more than {sys.get_int_max_str_digits()})"
        ) from None
    except RecursionError:
        raise InvalidRequest(
            f"{path}: invalid {kind}: nested too deeply to parse"
        ) from None


class _DuplicateKey(ValueError):
    """Raised when a JSON object repeats a key, which TOML rejects too."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last value of a repeated key and drops the others.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _coach_details(runtime: Runtime, parsed: ProgramsFile) -> dict[int, _CoachInfo]:
    """Return coach names and emails: from WordPress when configured, else the file."""
    from_file = {
        coach.wp_user_id: _CoachInfo(coach.display_name, coach.email)
        for coach in parsed.coaches
    }
    reader = runtime.wordpress_reader
    if reader is None:
        return from_file

    try:
        users = reader.users(parsed.coach_ids())
        memberships = {membership.id for membership in reader.memberships()}
    except WordPressUnavailable as error:
        raise Unavailable(f"programs file not loaded: {error}") from None
    _require_known(parsed, set(users), memberships)
    return {
        user_id: _CoachInfo(user.display_name, user.email)
        for user_id, user in users.items()
    }


def _require_known(
    parsed: ProgramsFile, user_ids: set[int], membership_ids: set[int]
) -> None:
    problems = []
    for program in parsed.programs:
        for cohort in program.cohorts:
            if cohort.coach not in user_ids:
                problems.append(
                    f"program {program.slug!r}, cohort {cohort.name!r}, field coach: "
                    f"WordPress user {cohort.coach} not found"
                )
        for membership_id in program.memberships:
            if membership_id not in membership_ids:
                problems.append(
                    f"program {program.slug!r}, field memberships: MemberPress "
                    f"membership {membership_id} not found"
                )
    if problems:
        raise InvalidRequest("invalid programs file:\n  " + "\n  ".join(problems))


def _apply(
    session: Session,
    parsed: ProgramsFile,
    coach_details: dict[int, _CoachInfo],
    path: str,
) -> LoadResult:
    result = LoadResult(path)
    coaches = _upsert_coaches(session, parsed.coach_ids(), coach_details, result)
    for entry in parsed.programs:
        result.programs.append(_apply_program(session, entry, coaches))
    return result


def _upsert_coaches(
    session: Session,
    wp_user_ids: Sequence[int],
    details: dict[int, _CoachInfo],
    result: LoadResult,
) -> dict[int, Coach]:
    query = sa.select(Coach).where(Coach.wp_user_id.in_(wp_user_ids))
    coaches = {coach.wp_user_id: coach for coach in session.scalars(query)}
    for wp_user_id in wp_user_ids:
        info = details.get(wp_user_id)
        coach = coaches.get(wp_user_id)
        if coach is None:
            coach = Coach(wp_user_id=wp_user_id, display_name="", email="")
            session.add(coach)
            coaches[wp_user_id] = coach
            result.coaches_created += 1
            _update_coach(coach, info)
        elif _update_coach(coach, info):
            result.coaches_updated += 1
    session.flush()
    return coaches


def _update_coach(coach: Coach, info: _CoachInfo | None) -> bool:
    if info is None or (coach.display_name, coach.email) == (
        info.display_name,
        info.email,
    ):
        return False
    coach.display_name = info.display_name
    coach.email = info.email
    return True


def _apply_program(
    session: Session, entry: ProgramEntry, coaches: dict[int, Coach]
) -> ProgramOutcome:
    program = session.scalar(sa.select(Program).where(Program.slug == entry.slug))
    if program is None:
        return _create_program(session, entry, coaches)

    changes = _update_program_fields(program, entry)
    changes += _update_memberships(program, entry)
    changes += _update_content(session, program, entry)
    changes += _update_cohorts(session, program, entry, coaches)
    session.flush()
    return ProgramOutcome(entry.slug, "updated" if changes else "unchanged", changes)


def _create_program(
    session: Session, entry: ProgramEntry, coaches: dict[int, Coach]
) -> ProgramOutcome:
    program = Program(
        slug=entry.slug,
        title=entry.title,
        description=entry.description,
        messaging_enabled=entry.messaging_enabled,
    )
    program.memberships = [
        ProgramMembership(membership_id=m) for m in entry.memberships
    ]
    program.milestones = _milestones(entry.milestones)
    program.habits = _habits(entry.habits)
    session.add(program)
    session.flush()
    for cohort in entry.cohorts:
        coach_id = coaches[cohort.coach].id
        session.add(
            Cohort(program_id=program.id, name=cohort.name, **cohort.values(coach_id))
        )
    session.flush()
    return ProgramOutcome(entry.slug, "created", [_counts(entry)])


def _counts(entry: ProgramEntry) -> str:
    memberships = ", ".join(str(m) for m in entry.memberships) or "none"
    return (
        f"{_plural(len(entry.milestones), 'milestone')}, "
        f"{_plural(len(entry.habits), 'habit')}, "
        f"{_plural(len(entry.cohorts), 'cohort')}, memberships {memberships}"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _update_program_fields(program: Program, entry: ProgramEntry) -> list[str]:
    changed = []
    for name in ("title", "description", "messaging_enabled"):
        if getattr(program, name) != getattr(entry, name):
            setattr(program, name, getattr(entry, name))
            changed.append(f"{name} changed")
    return changed


def _update_memberships(program: Program, entry: ProgramEntry) -> list[str]:
    current = {row.membership_id for row in program.memberships}
    wanted = set(entry.memberships)
    if current == wanted:
        return []

    program.memberships = [
        row for row in program.memberships if row.membership_id in wanted
    ] + [ProgramMembership(membership_id=m) for m in sorted(wanted - current)]
    listed = ", ".join(str(m) for m in sorted(wanted)) or "none"
    return [f"memberships now {listed}"]


def _update_content(
    session: Session, program: Program, entry: ProgramEntry
) -> list[str]:
    milestones_same = _milestone_keys(program.milestones) == [
        item.key() for item in entry.milestones
    ]
    habits_same = _habit_keys(program.habits) == [item.key() for item in entry.habits]
    if milestones_same and habits_same:
        return []

    if _has_enrollments(session, program.id):
        parts = [] if milestones_same else ["milestones"]
        parts += [] if habits_same else ["habits"]
        raise Conflict(
            f"program {program.slug!r}: the file changes its {' and '.join(parts)}, "
            "but the program already has enrollments, whose ticks and progress "
            "refer to them. Keep them as they are, or create a program with a new "
            "slug; cohorts and memberships can still change."
        )
    changes = []
    if not milestones_same:
        program.milestones = _milestones(entry.milestones)
        changes.append(f"milestones replaced ({len(entry.milestones)})")
    if not habits_same:
        program.habits = _habits(entry.habits)
        changes.append(f"habits replaced ({len(entry.habits)})")
    return changes


def _update_cohorts(
    session: Session,
    program: Program,
    entry: ProgramEntry,
    coaches: dict[int, Coach],
) -> list[str]:
    existing = {cohort.name: cohort for cohort in program.cohorts}
    changes = []
    for item in entry.cohorts:
        values = item.values(coaches[item.coach].id)
        cohort = existing.get(item.name)
        if cohort is None:
            session.add(Cohort(program_id=program.id, name=item.name, **values))
            changes.append(f"cohort {item.name!r} created")
            continue
        changed = [
            name for name, value in values.items() if getattr(cohort, name) != value
        ]
        for name in changed:
            setattr(cohort, name, values[name])
        if changed:
            changes.append(f"cohort {item.name!r} {', '.join(changed)} changed")
    return changes


def _has_enrollments(session: Session, program_id: int) -> bool:
    query = sa.select(Enrollment.id).where(Enrollment.program_id == program_id).limit(1)
    return session.scalar(query) is not None


def _milestones(entries: Iterable[MilestoneEntry]) -> list[Milestone]:
    return [
        Milestone(
            position=position,
            title=item.title,
            description=item.description,
            due_amount=item.due_amount,
            due_unit=item.due_unit,
        )
        for position, item in enumerate(entries)
    ]


def _habits(entries: Iterable[HabitEntry]) -> list[Habit]:
    return [
        Habit(
            position=position,
            title=item.title,
            description=item.description,
            schedule=ScheduleKind(item.schedule),
            weekdays=item.weekday_mask,
            interval_days=item.every_days,
            start_offset_days=item.start_offset_days,
            length_amount=item.length_amount,
            length_unit=item.length_unit,
        )
        for position, item in enumerate(entries)
    ]


def _milestone_keys(rows: Iterable[Milestone]) -> list[tuple[object, ...]]:
    return [
        (row.title, row.description, row.due_amount, DueUnit(row.due_unit))
        for row in rows
    ]


def _habit_keys(rows: Iterable[Habit]) -> list[tuple[object, ...]]:
    return [
        (
            row.title,
            row.description,
            ScheduleKind(row.schedule),
            row.weekdays,
            row.interval_days,
            row.start_offset_days,
            row.length_amount,
            DueUnit(row.length_unit),
        )
        for row in rows
    ]


def _duration(
    text: str | None, amount: int | None, unit: DueUnit | None, name: str
) -> tuple[int, DueUnit]:
    """Return (amount, unit) from "N days|weeks|months" or the two separate fields.

    Raises ValueError when neither or both forms are given, or when the amount
    exceeds MAX_DURATION_AMOUNT.
    """
    if text is not None:
        if amount is not None or unit is not None:
            raise ValueError(
                f'{name} is given twice: use either {name} = "N days|weeks|months" '
                f"or {name}_amount and {name}_unit"
            )
        match = DURATION_PATTERN.match(text)
        if match is None:
            raise ValueError(
                f"invalid {name} {text!r}: expected a whole number and days, weeks "
                'or months, such as "6 weeks"'
            )
        amount, unit = int(match.group(1)), DueUnit(match.group(2).lower() + "s")
    elif amount is None or unit is None:
        raise ValueError(
            f'missing {name}: give {name} = "N days|weeks|months" or both '
            f"{name}_amount and {name}_unit"
        )
    if amount > MAX_DURATION_AMOUNT:
        raise ValueError(
            f"{name} of {amount} {unit.value} is too long: at most "
            f"{MAX_DURATION_AMOUNT} {unit.value}"
        )
    return amount, unit


def _check_schedule_fields(
    schedule: str, weekdays: Sequence[str], every_days: int | None
) -> None:
    if schedule == "weekdays" and not weekdays:
        raise ValueError(
            'missing weekdays: a "weekdays" habit needs them, such as ["mon", "wed"]'
        )
    if schedule != "weekdays" and weekdays:
        raise ValueError('weekdays applies only to schedule = "weekdays"')
    if schedule == "interval" and every_days is None:
        raise ValueError('missing every_days: an "interval" habit needs every_days = N')
    if schedule != "interval" and every_days is not None:
        raise ValueError('every_days applies only to schedule = "interval"')


def _weekday_numbers(names: Sequence[str]) -> list[int]:
    keys = [name.strip().lower() for name in names]
    for name, key in zip(names, keys, strict=True):
        if key not in WEEKDAY_NAMES:
            raise ValueError(
                f"invalid weekday {name!r}: expected one of {', '.join(WEEKDAY_NAMES)}"
            )
    _require_unique(keys, "weekdays", "weekday")
    return [WEEKDAY_NAMES.index(key) for key in keys]


def _check_booking_url(url: str) -> None:
    if len(url) > MAX_URL_LENGTH or not all(
        char.isprintable() and not char.isspace() for char in url
    ):
        raise ValueError(
            f"invalid booking_url {url[:60]!r}: at most {MAX_URL_LENGTH} characters, "
            "without spaces or control characters"
        )
    if not _is_web_address(url):
        raise ValueError(
            f"invalid booking_url {url!r}: expected an http:// or https:// address "
            "with a host name"
        )


def _is_web_address(url: str) -> bool:
    """Tell whether ``url`` is an http(s) URL with a host name and a valid port."""
    # urlsplit raises ValueError for a malformed IPv6 address, and .port for a
    # port that is not a number from 0 to 65535.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _require_unique(values: Sequence[object], field_name: str, what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} in {field_name}")
        seen.add(value)


def _describe_errors(error: ValidationError, raw: Any, path: Path) -> str:
    problems = error.errors(include_url=False)
    lines = [f"{path}: invalid programs file:"]
    for problem in problems[:MAX_REPORTED_ERRORS]:
        lines.append(f"  {_location(problem['loc'], raw)}: {_message(problem)}")
    if len(problems) > MAX_REPORTED_ERRORS:
        lines.append(f"  ... and {len(problems) - MAX_REPORTED_ERRORS} more problems")
    return "\n".join(lines)


# Names of list items in messages, and the key that identifies an item.
_ITEM_NAMES = {
    "programs": ("program", "slug"),
    "milestones": ("milestone", "title"),
    "habits": ("habit", "title"),
    "cohorts": ("cohort", "name"),
    "coaches": ("coach", "wp_user_id"),
}


def _location(loc: Sequence[str | int], raw: Any) -> str:
    """Describe where a problem is: the program slug, the item and the field."""
    parts: list[str] = []
    node = raw
    index = 0
    while index < len(loc):
        key = loc[index]
        following = loc[index + 1] if index + 1 < len(loc) else None
        if key in _ITEM_NAMES and isinstance(following, int):
            node = _child(_child(node, key), following)
            parts.append(_item_label(key, following, node))
            index += 2
            continue
        node = _child(node, key)
        parts.append(f"field {key}" if isinstance(key, str) else f"item {key + 1}")
        index += 1
    return ", ".join(parts) or "file"


def _item_label(list_name: str, position: int, item: Any) -> str:
    noun, key = _ITEM_NAMES[list_name]
    name = item.get(key) if isinstance(item, dict) else None
    if isinstance(name, str) and name.strip():
        return f"{noun} {name!r}"
    if isinstance(name, int) and not isinstance(name, bool):
        return f"{noun} {name}"
    return f"{noun} #{position + 1}"


def _child(node: Any, key: str | int) -> Any:
    if isinstance(node, dict) and isinstance(key, str):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _message(problem: dict[str, Any]) -> str:
    kind = problem["type"]
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field; check its spelling against docs/programs-file.md"
    return str(problem["msg"]).removeprefix("Value error, ")
