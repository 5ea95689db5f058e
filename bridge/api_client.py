"""The client JSON API under ``/api/v1/``: enrollments, ticks and messages.

Every route verifies the request signature first, and the acting user comes only
from it. Objects are loaded through bridge.auth, so another user's enrollment,
milestone or habit is reported as not found (404), as is another user's
conversation (bridge.messages). A coach or an administrator may read a client's
enrollment but not tick for the client: that is 403 ``forbidden``, because the
enrollment is visible to them. Ticking an inactive enrollment is 409.

The data functions here (``enrollment_summaries``, ``enrollment_detail``,
``set_milestone_tick``, ``set_habit_tick``) also feed the client pages, so a page
and the API always show the same figures.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session

from bridge import messages, ticks
from bridge.app import get_runtime
from bridge.auth import (
    Actor,
    current_actor,
    load_enrollment,
    load_habit,
    load_milestone,
)
from bridge.errors import InvalidRequest, NotFound, Unauthorized
from bridge.evaluation import habit_schedule
from bridge.messages import MAX_ID, Forbidden, iso_utc
from bridge.models import (
    Coach,
    Cohort,
    Enrollment,
    EnrollmentStatus,
    Habit,
    HabitTick,
    Milestone,
    MilestoneTick,
    Program,
)
from bridge.runtime import Runtime
from bridge.signing import require_signed_requests, signed_user_id
from rules.progress import Evaluation, evaluate_enrollment, is_late_tick
from rules.schedules import (
    HabitSchedule,
    HabitTimeline,
    MilestoneSchedule,
    ScheduleKind,
    milestone_due_date,
)
from sync.reader import WordPressUnavailable, WPUser

log = logging.getLogger(__name__)

# Request bodies of the client API are small JSON objects: a message of 5,000
# characters is at most 20 KB of UTF-8, and 60 KB when JSON escapes every one.
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 120
# Windows stay this far from the ends of the calendar, so that moving a window
# by its length never leaves the range of datetime.date.
EARLIEST_DATE = dt.date.min + dt.timedelta(days=MAX_WINDOW_DAYS)
LATEST_DATE = dt.date.max - dt.timedelta(days=MAX_WINDOW_DAYS)
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CALENDLY_DOMAIN = "calendly.com"
WEEKDAY_NAMES = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)

api_client_blueprint = Blueprint("api_client", __name__, url_prefix="/api/v1")


@api_client_blueprint.before_request
def _limit_body_size() -> None:
    # Registered before the signature check, which reads the body.
    request.max_content_length = MAX_REQUEST_BYTES


require_signed_requests(api_client_blueprint)


@dataclass(frozen=True)
class Window:
    """Dates shown for habits: ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        """Return the number of dates in the window."""
        return (self.end - self.start).days + 1

    def dates(self) -> list[dt.date]:
        """List every date of the window, ascending."""
        return [self.start + dt.timedelta(days=n) for n in range(self.days)]

    def shifted(self, days: int) -> Window:
        """Return the window moved by ``days``, clamped to the supported dates."""
        start = min(
            max(self.start + dt.timedelta(days=days), EARLIEST_DATE), LATEST_DATE
        )
        return Window(start, start + (self.end - self.start))


@dataclass
class Content:
    """The milestones and habits of one program, with the habits' schedules."""

    milestones: list[Milestone]
    habits: list[tuple[Habit, HabitSchedule]]


@dataclass
class TickState:
    """The ticks of one enrollment: milestone id or (habit id, date) to ticked_at."""

    milestones: dict[int, dt.datetime]
    habits: dict[tuple[int, dt.date], dt.datetime]


def acting_actor(runtime: Runtime, user_id: int) -> Actor:
    """Return the actor of a verified user id; ids beyond BIGINT do not exist."""
    if user_id > MAX_ID:
        raise Unauthorized(f"WordPress user {user_id} does not exist")
    return current_actor(runtime, user_id)


def parse_window(
    start_text: str | None, end_text: str | None, today: dt.date
) -> Window:
    """Build the habit window from the ``from`` and ``to`` query values.

    Both are optional: the default is the last DEFAULT_WINDOW_DAYS days through
    today, and one given bound places a default-length window next to it.
    Raises InvalidRequest for a malformed date, a reversed window or one longer
    than MAX_WINDOW_DAYS.
    """
    length = dt.timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    start = _parse_date(start_text, "from")
    end = _parse_date(end_text, "to")
    if start is None and end is None:
        end = today
    if start is None:
        assert end is not None
        start = end - length
    if end is None:
        end = start + length

    if start > end:
        raise InvalidRequest(
            f"invalid window: from {start} is after to {end}; swap the dates"
        )
    window = Window(start, end)
    if window.days > MAX_WINDOW_DAYS:
        raise InvalidRequest(
            f"invalid window: from {start} to {end} spans {window.days} days and "
            f"the maximum is {MAX_WINDOW_DAYS}; request a shorter window"
        )
    return window


def _parse_date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    expected = (
        f"expected a date written YYYY-MM-DD from {EARLIEST_DATE} to {LATEST_DATE}"
    )
    if not DATE_PATTERN.fullmatch(text):
        raise InvalidRequest(f"invalid {name} {text!r}: {expected}")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"invalid {name} {text!r}: {expected}") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InvalidRequest(f"invalid {name} {text!r}: {expected}")
    return day


def describe_schedule(habit: Habit) -> str:
    """Describe when a habit is due, such as "Every Monday and Friday for 6 weeks"."""
    schedule = habit_schedule(habit)
    if schedule.kind is ScheduleKind.DAILY:
        recurrence = "Every day"
    elif schedule.kind is ScheduleKind.WEEKDAYS:
        names = [WEEKDAY_NAMES[day] for day in sorted(schedule.weekdays)]
        recurrence = "Every " + _join_words(names)
    elif schedule.interval_days == 1:
        recurrence = "Every day"
    else:
        recurrence = f"Every {schedule.interval_days} days"
    unit = habit.length_unit.value
    if habit.length_amount == 1:
        unit = unit.removesuffix("s")
    return f"{recurrence} for {habit.length_amount} {unit}"


def _join_words(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def milestone_due(milestone: Milestone, start_date: dt.date) -> dt.date:
    """Return a milestone's due date for a client who started on ``start_date``."""
    schedule = MilestoneSchedule(milestone.due_amount, milestone.due_unit.value)
    return milestone_due_date(schedule, start_date)


def load_contents(session: Session, program_ids: Iterable[int]) -> dict[int, Content]:
    """Load the milestones and habits of several programs, in their order."""
    wanted = set(program_ids)
    contents = {program_id: Content([], []) for program_id in wanted}
    if not wanted:
        return contents

    milestones = session.scalars(
        sa.select(Milestone)
        .where(Milestone.program_id.in_(wanted))
        .order_by(Milestone.position, Milestone.id)
    )
    for milestone in milestones:
        contents[milestone.program_id].milestones.append(milestone)
    habits = session.scalars(
        sa.select(Habit)
        .where(Habit.program_id.in_(wanted))
        .order_by(Habit.position, Habit.id)
    )
    for habit in habits:
        contents[habit.program_id].habits.append((habit, habit_schedule(habit)))
    return contents


def load_ticks(session: Session, enrollment_ids: Iterable[int]) -> dict[int, TickState]:
    """Load the milestone and habit ticks of several enrollments."""
    wanted = set(enrollment_ids)
    states = {enrollment_id: TickState({}, {}) for enrollment_id in wanted}
    if not wanted:
        return states

    milestone_rows = session.execute(
        sa.select(
            MilestoneTick.enrollment_id,
            MilestoneTick.milestone_id,
            MilestoneTick.ticked_at,
        ).where(MilestoneTick.enrollment_id.in_(wanted))
    )
    for enrollment_id, milestone_id, ticked_at in milestone_rows:
        states[enrollment_id].milestones[milestone_id] = ticked_at
    habit_rows = session.execute(
        sa.select(
            HabitTick.enrollment_id,
            HabitTick.habit_id,
            HabitTick.due_date,
            HabitTick.ticked_at,
        ).where(HabitTick.enrollment_id.in_(wanted))
    )
    for enrollment_id, habit_id, due_date, ticked_at in habit_rows:
        states[enrollment_id].habits[(habit_id, due_date)] = ticked_at
    return states


def evaluate(
    enrollment: Enrollment,
    content: Content,
    ticks: TickState,
    today: dt.date,
    threshold: int,
) -> Evaluation:
    """Compute off track, progress and completion of an enrollment now."""
    return evaluate_enrollment(
        start_date=enrollment.start_date,
        today=today,
        milestone_done={m.id: m.id in ticks.milestones for m in content.milestones},
        habits={habit.id: schedule for habit, schedule in content.habits},
        ticks=ticks.habits.keys(),
        threshold=threshold,
    )


def progress_json(evaluation: Evaluation) -> dict[str, int]:
    """Describe the progress of an evaluation as the API returns it."""
    progress = evaluation.progress
    return {
        "percent": progress.percent,
        "milestones_done": progress.milestones_done,
        "milestones_total": progress.milestones_total,
        "habit_dates_done": progress.habit_dates_done,
        "habit_dates_due": progress.habit_dates_due,
    }


def appointment_url(cohort: Cohort, client: WPUser | None) -> str | None:
    """Return the cohort's booking link, or None when appointments are off.

    A Calendly link gets the client's ``name`` and ``email`` as query
    parameters, which Calendly uses to fill in its booking form.
    """
    if not cohort.appointments_enabled or not cohort.booking_url:
        return None
    url = cohort.booking_url
    if client is None or not is_calendly(url):
        return url

    name = f"{client.first_name} {client.last_name}".strip() or client.display_name
    parts = urlsplit(url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("name", "email")
    ]
    query += [("name", name), ("email", client.email)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def is_calendly(url: str) -> bool:
    """Return whether a booking link points to Calendly."""
    host = (urlsplit(url).hostname or "").lower()
    return host == CALENDLY_DOMAIN or host.endswith("." + CALENDLY_DOMAIN)


def _needs_client_profile(cohorts: Iterable[Cohort]) -> bool:
    return any(
        cohort.appointments_enabled
        and cohort.booking_url
        and is_calendly(cohort.booking_url)
        for cohort in cohorts
    )


def _client_profile(runtime: Runtime, user_id: int) -> WPUser | None:
    try:
        return runtime.wordpress.user(user_id)
    except WordPressUnavailable as error:
        # The booking link still works without the prefilled fields.
        log.warning(
            "booking link of user %s left without name and email: %s", user_id, error
        )
        return None


def summary_json(
    enrollment: Enrollment,
    program: Program,
    cohort: Cohort,
    coach: Coach,
    evaluation: Evaluation,
    client: WPUser | None,
) -> dict[str, Any]:
    """Describe one enrollment as the enrollment list returns it."""
    return {
        "id": enrollment.id,
        "program_id": program.id,
        "program_slug": program.slug,
        "program_title": program.title,
        "cohort_id": cohort.id,
        "cohort_name": cohort.name,
        "coach_user_id": coach.wp_user_id,
        "coach_name": coach.display_name,
        "start_date": enrollment.start_date.isoformat(),
        "status": enrollment.status.value,
        "progress": progress_json(evaluation),
        "off_track": evaluation.off_track,
        "completed": evaluation.completed,
        "appointment_url": appointment_url(cohort, client),
        "messaging_enabled": program.messaging_enabled,
    }


def enrollment_summaries(
    runtime: Runtime, actor: Actor, include_milestones: bool = False
) -> list[dict[str, Any]]:
    """List the actor's own active enrollments by program title.

    With ``include_milestones`` each summary also lists the program's
    milestones with their due dates and done flags, for the client page.
    """
    today = runtime.today()
    threshold = runtime.config.coaching.off_track_threshold

    def work(session: Session) -> list[dict[str, Any]]:
        rows = session.execute(
            _enrollment_select()
            .where(Enrollment.wp_user_id == actor.wp_user_id)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .order_by(Program.title, Enrollment.id)
        ).all()
        contents = load_contents(session, [row[1].id for row in rows])
        ticks = load_ticks(session, [row[0].id for row in rows])
        evaluated = []
        for enrollment, program, cohort, coach in rows:
            content = contents[program.id]
            state = ticks[enrollment.id]
            evaluation = evaluate(enrollment, content, state, today, threshold)
            milestones = None
            if include_milestones:
                milestones = _milestones_json(enrollment, content, state)
            evaluated.append(
                (enrollment, program, cohort, coach, evaluation, milestones)
            )
        return evaluated

    rows = runtime.db.run(work, "list the enrollments of a client")
    client = None
    if _needs_client_profile(row[2] for row in rows):
        client = _client_profile(runtime, actor.wp_user_id)

    summaries = []
    for *parts, milestones in rows:
        summary = summary_json(*parts, client)
        if milestones is not None:
            summary["milestones"] = milestones
        summaries.append(summary)
    return summaries


def _enrollment_select() -> sa.Select:
    return (
        sa.select(Enrollment, Program, Cohort, Coach)
        .join(Program, Program.id == Enrollment.program_id)
        .join(Cohort, Cohort.id == Enrollment.cohort_id)
        .join(Coach, Coach.id == Cohort.coach_id)
    )


def enrollment_detail(
    runtime: Runtime, actor: Actor, enrollment_id: int, window: Window
) -> dict[str, Any]:
    """Describe one enrollment with its milestones and the habits' due dates.

    Raises NotFound unless the actor may see the enrollment.
    """
    _require_id(enrollment_id, "enrollment")
    today = runtime.today()
    threshold = runtime.config.coaching.off_track_threshold

    def work(session: Session) -> dict[str, Any]:
        load_enrollment(session, actor, enrollment_id)
        enrollment, program, cohort, coach = session.execute(
            _enrollment_select().where(Enrollment.id == enrollment_id)
        ).one()
        content = load_contents(session, [program.id])[program.id]
        ticks = load_ticks(session, [enrollment.id])[enrollment.id]
        evaluation = evaluate(enrollment, content, ticks, today, threshold)
        return {
            "parts": (enrollment, program, cohort, coach, evaluation),
            "milestones": _milestones_json(enrollment, content, ticks),
            "habits": _habits_json(
                enrollment, content, ticks, window, today, evaluation, runtime
            ),
            "can_tick": enrollment.wp_user_id == actor.wp_user_id
            and enrollment.status is EnrollmentStatus.ACTIVE,
        }

    result = runtime.db.run(work, "read an enrollment")
    enrollment, program, cohort, coach, evaluation = result.pop("parts")
    client = None
    if _needs_client_profile([cohort]):
        client = _client_profile(runtime, enrollment.wp_user_id)
    return {
        "enrollment": summary_json(
            enrollment, program, cohort, coach, evaluation, client
        ),
        "today": today.isoformat(),
        "window": {"from": window.start.isoformat(), "to": window.end.isoformat()},
        **result,
    }


def _milestones_json(
    enrollment: Enrollment, content: Content, ticks: TickState
) -> list[dict[str, Any]]:
    items = []
    for milestone in content.milestones:
        ticked_at = ticks.milestones.get(milestone.id)
        items.append(
            {
                "id": milestone.id,
                "title": milestone.title,
                "description": milestone.description,
                "due_date": milestone_due(milestone, enrollment.start_date).isoformat(),
                "done": ticked_at is not None,
                "ticked_at": iso_utc(ticked_at) if ticked_at is not None else None,
            }
        )
    return items


def _habits_json(
    enrollment: Enrollment,
    content: Content,
    ticks: TickState,
    window: Window,
    today: dt.date,
    evaluation: Evaluation,
    runtime: Runtime,
) -> list[dict[str, Any]]:
    items = []
    for habit, schedule in content.habits:
        timeline = HabitTimeline.for_client(schedule, enrollment.start_date)
        last = timeline.last_due_date()
        due_dates = timeline.due_dates_between(
            window.start, window.end + dt.timedelta(days=1)
        )
        items.append(
            {
                "id": habit.id,
                "title": habit.title,
                "description": habit.description,
                "schedule": describe_schedule(habit),
                "first_date": timeline.first.isoformat(),
                "last_date": last.isoformat() if last is not None else None,
                "off_track": habit.id in evaluation.off_track_habit_ids,
                "due_dates": [
                    _due_date_json(habit.id, day, ticks, today, runtime)
                    for day in due_dates
                ],
            }
        )
    return items


def _due_date_json(
    habit_id: int, day: dt.date, ticks: TickState, today: dt.date, runtime: Runtime
) -> dict[str, Any]:
    ticked_at = ticks.habits.get((habit_id, day))
    late = False
    if ticked_at is not None:
        late = is_late_tick(day, ticked_at.replace(tzinfo=dt.UTC), runtime.site_zone())
    return {
        "date": day.isoformat(),
        "ticked": ticked_at is not None,
        "late": late,
        "future": day > today,
    }


def set_milestone_tick(
    runtime: Runtime, actor: Actor, enrollment_id: int, milestone_id: int, done: bool
) -> dict[str, Any]:
    """Tick or untick a milestone of the actor's own enrollment; return the new state.

    Raises NotFound for an enrollment or milestone the actor may not see,
    Forbidden when the enrollment is someone else's, and Conflict (from
    bridge.ticks) when it is inactive.
    """
    _require_id(enrollment_id, "enrollment")
    _require_id(milestone_id, "milestone")
    runtime.db.run(
        lambda session: _check_owner(
            session, actor, enrollment_id, milestone_id, load_milestone
        ),
        "check a milestone tick",
    )

    if done:
        result = ticks.tick_milestone(
            runtime, enrollment_id, milestone_id, actor.wp_user_id
        )
    else:
        result = ticks.untick_milestone(
            runtime, enrollment_id, milestone_id, actor.wp_user_id
        )
    return tick_state_json(enrollment_id, result) | {
        "milestone_id": milestone_id,
        "done": done,
    }


def set_habit_tick(
    runtime: Runtime,
    actor: Actor,
    enrollment_id: int,
    habit_id: int,
    day: dt.date,
    done: bool,
) -> dict[str, Any]:
    """Tick or untick one due date of a habit; return the new state.

    Raises as set_milestone_tick does, and InvalidRequest (from bridge.ticks)
    when the date is not a due date of the habit or is after today.
    """
    _require_id(enrollment_id, "enrollment")
    _require_id(habit_id, "habit")
    runtime.db.run(
        lambda session: _check_owner(
            session, actor, enrollment_id, habit_id, load_habit
        ),
        "check a habit tick",
    )

    if done:
        result = ticks.tick_habit(
            runtime, enrollment_id, habit_id, day, actor.wp_user_id
        )
    else:
        result = ticks.untick_habit(
            runtime, enrollment_id, habit_id, day, actor.wp_user_id
        )
    return tick_state_json(enrollment_id, result) | {
        "habit_id": habit_id,
        "date": day.isoformat(),
        "ticked": done,
    }


def _check_owner(
    session: Session,
    actor: Actor,
    enrollment_id: int,
    item_id: int,
    loader: Callable[[Session, Actor, int, int], tuple[Enrollment, object]],
) -> None:
    enrollment, _ = loader(session, actor, enrollment_id, item_id)
    if enrollment.wp_user_id != actor.wp_user_id:
        raise Forbidden(
            f"enrollment {enrollment_id} belongs to another user: only the client "
            "can tick their own milestones and habits"
        )


def tick_state_json(enrollment_id: int, result: ticks.TickResult) -> dict[str, Any]:
    """Describe an enrollment's stored evaluation after a tick or an untick."""
    state = result.state
    percent = state.progress_percent
    return {
        "enrollment_id": enrollment_id,
        "changed": result.changed,
        "progress": {
            "percent": percent,
            "milestones_done": state.milestones_done,
            "milestones_total": state.milestones_total,
            "habit_dates_done": state.habit_dates_done,
            "habit_dates_due": state.habit_dates_due,
        },
        "off_track": state.off_track,
        "completed": state.completed_on is not None,
    }


def _require_id(value: int, what: str) -> None:
    if not 0 < value <= MAX_ID:
        raise NotFound(f"{what} {value} not found")


def parse_day(text: str) -> dt.date:
    """Parse a due date from a path segment, or raise InvalidRequest.

    Any calendar date is valid here. Whether the habit is due on it is checked
    after the enrollment, so another user's enrollment is still not found.
    """
    expected = "expected a date written YYYY-MM-DD"
    if not DATE_PATTERN.fullmatch(text):
        raise InvalidRequest(f"invalid date {text!r}: {expected}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"invalid date {text!r}: {expected}") from None


def unread_total(runtime: Runtime, actor: Actor) -> int:
    """Count the messages others sent to the actor that the actor has not read."""
    return runtime.db.run(
        lambda session: messages.unread_total(session, actor.wp_user_id),
        "count unread messages",
    )


# Views.


def _context() -> tuple[Runtime, Actor]:
    runtime = get_runtime(current_app)
    return runtime, acting_actor(runtime, signed_user_id())


def json_field(name: str) -> object:
    """Return the only field of the request's JSON object body.

    Raises InvalidRequest when the body is not a JSON object, lacks the field or
    has any other field.
    """
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest(
            "invalid body: expected a JSON object, sent with Content-Type "
            "application/json"
        )
    unknown = sorted(key for key in body if key != name)
    if unknown:
        raise InvalidRequest(
            f"invalid body: unknown field {unknown[0]!r}; send only {name!r}"
        )
    if name not in body:
        raise InvalidRequest(f"missing {name} in the body")
    return body[name]


def query_int(name: str, default: int | None) -> int | None:
    """Return an integer query parameter, or raise InvalidRequest."""
    text = request.args.get(name)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", text):
        raise InvalidRequest(f"invalid {name} {text!r}: expected a whole number")
    return int(text)


@api_client_blueprint.get("/me/enrollments")
def my_enrollments() -> Response:
    """Return the acting user's enrollments with progress."""
    runtime, actor = _context()
    return jsonify({"enrollments": enrollment_summaries(runtime, actor)})


@api_client_blueprint.get("/enrollments/<int:enrollment_id>")
def enrollment(enrollment_id: int) -> Response:
    """Return one enrollment's milestones and habit due dates in a window."""
    runtime, actor = _context()
    window = parse_window(
        request.args.get("from"), request.args.get("to"), runtime.today()
    )
    return jsonify(enrollment_detail(runtime, actor, enrollment_id, window))


@api_client_blueprint.route(
    "/enrollments/<int:enrollment_id>/milestones/<int:milestone_id>/tick",
    methods=["PUT", "DELETE"],
)
def milestone_tick(enrollment_id: int, milestone_id: int) -> Response:
    """Tick (PUT) or untick (DELETE) a milestone."""
    runtime, actor = _context()
    done = request.method == "PUT"
    return jsonify(
        set_milestone_tick(runtime, actor, enrollment_id, milestone_id, done)
    )


@api_client_blueprint.route(
    "/enrollments/<int:enrollment_id>/habits/<int:habit_id>/ticks/<day>",
    methods=["PUT", "DELETE"],
)
def habit_tick(enrollment_id: int, habit_id: int, day: str) -> Response:
    """Tick (PUT) or untick (DELETE) one due date of a habit."""
    runtime, actor = _context()
    done = request.method == "PUT"
    return jsonify(
        set_habit_tick(runtime, actor, enrollment_id, habit_id, parse_day(day), done)
    )


@api_client_blueprint.get("/me/conversations")
def my_conversations() -> Response:
    """Return the acting user's conversations with unread counts."""
    runtime, actor = _context()
    return jsonify({"conversations": messages.list_conversations(runtime, actor)})


@api_client_blueprint.get("/me/message-partners")
def my_message_partners() -> Response:
    """Return the users the acting user may message."""
    runtime, actor = _context()
    partners = messages.list_partners(runtime, actor)
    return jsonify(
        {
            "messaging_enabled": messages.messaging_enabled(runtime),
            "partners": [
                {"id": p.wp_user_id, "name": p.name, "relation": p.relation}
                for p in partners
            ],
        }
    )


@api_client_blueprint.post("/conversations")
def start_conversation() -> tuple[Response, int]:
    """Return the conversation with a partner, creating it when needed."""
    runtime, actor = _context()
    partner_id = json_field("partner_id")
    if isinstance(partner_id, bool) or not isinstance(partner_id, int):
        raise InvalidRequest("invalid partner_id: expected a WordPress user id")
    if not 0 < partner_id <= MAX_ID:
        raise InvalidRequest(f"invalid partner_id {partner_id}: no such user")
    conversation, created = messages.start_conversation(runtime, actor, partner_id)
    return jsonify(conversation), 201 if created else 200


@api_client_blueprint.get("/conversations/<int:conversation_id>/messages")
def conversation_messages(conversation_id: int) -> Response:
    """Return a page of a conversation's messages and mark them read."""
    runtime, actor = _context()
    before = query_int("before", None)
    limit = query_int("limit", messages.DEFAULT_PAGE_SIZE)
    assert limit is not None
    page = messages.read_messages(runtime, actor, conversation_id, before, limit)
    return jsonify(page)


@api_client_blueprint.post("/conversations/<int:conversation_id>/messages")
def send_message(conversation_id: int) -> tuple[Response, int]:
    """Send a message in a conversation."""
    runtime, actor = _context()
    body = json_field("body")
    message = messages.send_message(runtime, actor, conversation_id, body)
    return jsonify(message), 201
