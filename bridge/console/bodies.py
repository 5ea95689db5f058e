"""Request bodies of the console's changes and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from bridge.errors import InvalidRequest
from bridge.models import DueUnit
from bridge.programs_file import (
    MAX_HABITS,
    MAX_MEMBERSHIPS,
    MAX_MILESTONES,
    MAX_URL_LENGTH,
    SLUG_PATTERN,
    CohortEntry,
    FileDate,
    HabitEntry,
    MilestoneEntry,
)

BodyModel = TypeVar("BodyModel", bound=BaseModel)
EntryModel = TypeVar("EntryModel", bound=BaseModel)


# Request bodies

# The bodies below are checked exactly as bridge/openapi/admin.json describes
# them, so that a request is rejected with 400 if and only if the document
# calls it invalid. Rules that depend on stored data are rejected with 404
# or 409 instead.
MAX_ID = 2**63 - 1
# Limits that keep dates computed from a program inside the calendar.
MAX_DURATION_AMOUNT = 10_000
MAX_DAYS = 36_500
MAX_CAPACITY = 1_000_000
MAX_DESCRIPTION_LENGTH = 10_000
# The characters that str.strip() removes. A title may not start or end with
# one, so it is stored as sent and its length limit counts the stored text.
WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000"
)
TITLE_PATTERN = rf"^[^{WHITESPACE}](?:[\s\S]*[^{WHITESPACE}])?$"
# An http or https address with an ASCII host and no spaces: stricter than the
# programs file's check, which it passes.
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(?:[/?#][!-~]*)?$"
WEEKDAY = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

ApiId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
ApiTitle = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=TITLE_PATTERN)
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)]
BookingUrl = Annotated[
    str, StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)
]
Amount = Annotated[StrictInt, Field(ge=1, le=MAX_DURATION_AMOUNT)]
Days = Annotated[StrictInt, Field(ge=0, le=MAX_DAYS)]
Capacity = Annotated[StrictInt, Field(ge=1, le=MAX_CAPACITY)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Fields that may be left out but not sent as null.
    _not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls._not_null:
                if name in data and data[name] is None:
                    raise ValueError(f"{name} may be left out but not null")
        return data


class MilestoneInput(_Body):
    """A milestone: due a number of days, weeks or months after the start."""

    title: ApiTitle
    description: Description = ""
    due_amount: Annotated[StrictInt, Field(ge=0, le=MAX_DURATION_AMOUNT)]
    due_unit: DueUnit

    def entry(self) -> MilestoneEntry:
        """Return the milestone as a programs file's entry."""
        return _entry(MilestoneEntry, self.model_dump())


class HabitInput(_Body):
    """A habit: a schedule, an offset from the start and a length."""

    title: ApiTitle
    description: Description = ""
    schedule: Literal["daily", "weekdays", "interval"]
    weekdays: list[WEEKDAY] = []
    every_days: Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)] | None = None
    start_offset_days: Days = 0
    length_amount: Amount
    length_unit: DueUnit

    _not_null = ("weekdays",)

    def entry(self) -> HabitEntry:
        """Return the habit as a programs file's entry, which checks the schedule."""
        return _entry(HabitEntry, self.model_dump())


class ProgramInput(_Body):
    """A new program: settings, memberships and content, without cohorts."""

    slug: Slug
    title: ApiTitle
    description: Description = ""
    messaging_enabled: StrictBool = True
    memberships: Annotated[list[ApiId], Field(max_length=MAX_MEMBERSHIPS)] = []
    milestones: Annotated[list[MilestoneInput], Field(max_length=MAX_MILESTONES)] = []
    habits: Annotated[list[HabitInput], Field(max_length=MAX_HABITS)] = []

    @model_validator(mode="after")
    def _check_entries(self) -> ProgramInput:
        _require_unique_memberships(self.memberships)
        _check_habits(self.habits)
        return self


class ProgramChanges(_Body):
    """Changes to a program. A field left out keeps its value."""

    title: ApiTitle | None = None
    description: Description | None = None
    messaging_enabled: StrictBool | None = None
    memberships: Annotated[list[ApiId], Field(max_length=MAX_MEMBERSHIPS)] | None = None
    milestones: (
        Annotated[list[MilestoneInput], Field(max_length=MAX_MILESTONES)] | None
    ) = None
    habits: Annotated[list[HabitInput], Field(max_length=MAX_HABITS)] | None = None

    _not_null = (
        "title",
        "description",
        "messaging_enabled",
        "memberships",
        "milestones",
        "habits",
    )

    @model_validator(mode="after")
    def _check_entries(self) -> ProgramChanges:
        _require_unique_memberships(self.memberships or [])
        _check_habits(self.habits or [])
        return self


class DuplicateInput(_Body):
    """The slug and optional title of a program's copy."""

    slug: Slug
    title: ApiTitle | None = None

    _not_null = ("title",)


class CohortInput(_Body):
    """A new cohort, with the fields of a programs file's cohort."""

    name: ApiTitle
    type: Literal["rolling", "fixed"] = "rolling"
    start_date: FileDate | None = None
    coach: ApiId
    capacity: Capacity | None = None
    open: StrictBool = True
    appointments: StrictBool = False
    booking_url: BookingUrl | None = None

    _not_null = ("type", "open", "appointments")

    @model_validator(mode="after")
    def _check_rules(self) -> CohortInput:
        self.entry()
        return self

    def entry(self) -> CohortEntry:
        """Return the cohort as a programs file's entry, which checks its rules."""
        return _entry(CohortEntry, self.model_dump())


class CohortChanges(_Body):
    """Changes to a cohort. A field left out keeps its value."""

    name: ApiTitle | None = None
    type: Literal["rolling", "fixed"] | None = None
    start_date: FileDate | None = None
    coach: ApiId | None = None
    capacity: Capacity | None = None
    open: StrictBool | None = None
    appointments: StrictBool | None = None
    booking_url: BookingUrl | None = None

    _not_null = ("name", "type", "coach", "open", "appointments")


class CoachInput(_Body):
    """A WordPress user to register as a coach."""

    wp_user_id: ApiId


class CohortChoice(_Body):
    """The cohort a client is added to or moved into."""

    cohort_id: ApiId


def _require_unique_memberships(memberships: Sequence[int]) -> None:
    if len(set(memberships)) != len(memberships):
        raise ValueError("duplicate membership ids in memberships")


def _check_habits(habits: Sequence[HabitInput]) -> None:
    for habit in habits:
        habit.entry()


def _entry(model: type[EntryModel], values: dict[str, Any]) -> EntryModel:
    """Validate values with a programs file model, raising ValueError on a problem.

    Inside a pydantic validator a ValueError becomes a validation error of the
    request, so its message reaches the caller.
    """
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = [
            str(problem["msg"]).removeprefix("Value error, ")
            for problem in error.errors(include_url=False)
        ]
        raise ValueError("; ".join(problems)) from None


def parse_body(model: type[BodyModel], data: Any) -> BodyModel:
    """Validate a request body against a model, raising InvalidRequest."""
    if not isinstance(data, dict):
        raise InvalidRequest("invalid request body: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(describe_validation(error)) from None


def describe_validation(error: ValidationError) -> str:
    """Describe each problem of a validation error with its location."""
    problems = []
    for problem in error.errors(include_url=False):
        where = ", ".join(
            f"item {part + 1}" if isinstance(part, int) else str(part)
            for part in problem["loc"]
        )
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{where or 'body'}: {message}")
    return "invalid request: " + "; ".join(problems)
