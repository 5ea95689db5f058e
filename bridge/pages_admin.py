"""The admin and coach console pages that the plugin embeds in wp-admin.

The plugin fetches these pages with signed GET requests and prints them inside
its Coaching menu, so every link is a relative query string such as
``?page=coachbridge-clients&client=12``. Administrators reach each section
through its own menu slug. A coach who is not an administrator has a single
menu page, ``coachbridge-coach``, and the plugin picks the section from
``section=``.

Forms post to WordPress's admin-post.php with the action URL and nonce that the
plugin passes in the signed query (``form_action``, ``form_nonce``). The
plugin checks the nonce and the capability, then forwards the fields to
``POST /pages/admin/forms/<name>``, which ``submit_form`` applies with the same
service functions as the JSON API. Pages render forms for administrators only,
because coaches change nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, jsonify, render_template, request

from bridge import console
from bridge.api_admin import (
    acting,
    client_query,
    date_arg,
    feed_query,
    int_arg,
    json_ready,
    progress_query,
    request_json,
)
from bridge.auth import Actor
from bridge.errors import InvalidRequest, NotFound
from bridge.programs_file import DURATION_PATTERN
from bridge.runtime import Runtime
from bridge.signing import require_signed_requests

log = logging.getLogger(__name__)

admin_pages_blueprint = require_signed_requests(
    Blueprint("admin_pages", __name__, url_prefix="/pages")
)

STYLESHEET = Path(__file__).resolve().parent / "static" / "admin.css"

# wp-admin menu slugs of the sections, as registered by the plugin.
ADMIN_SLUGS = {
    "activity": "coachbridge",
    "programs": "coachbridge-programs",
    "coaches": "coachbridge-coaches",
    "clients": "coachbridge-clients",
    "coach": "coachbridge-coach",
}
COACH_SLUG = ADMIN_SLUGS["coach"]
FORM_ACTION = "coachbridge_admin_action"
# WordPress nonces are 10 hexadecimal digits. Other values are rejected.
NONCE_PATTERN = re.compile(r"[A-Za-z0-9]{1,64}")
MAX_URL_LENGTH = 500
# Blank milestone and habit rows that the program form offers for new content.
BLANK_ROWS = 2

ACTIVITY_LABELS = {
    "program_started": "Program started",
    "enrolled": "Enrolled",
    "unenrolled": "Unenrolled",
    "resumed": "Resumed",
    "no_open_cohort": "No open cohort",
    "milestone_completed": "Milestone completed",
    "milestone_reopened": "Milestone reopened",
    "habit_ticked": "Habit ticked",
    "habit_unticked": "Habit unticked",
    "off_track": "Off track",
    "back_on_track": "Back on track",
    "program_completed": "Program completed",
    "cohort_changed": "Cohort changed",
    "message_sent": "Message sent",
}
SORT_LABELS = {
    "last_activity": "Last activity",
    "name": "Name",
    "program": "Program",
    "progress": "Progress",
}


@dataclass(frozen=True)
class FormTarget:
    """Action URL and nonce of the console's forms, both checked by the plugin."""

    action: str
    nonce: str


@dataclass(frozen=True)
class PageUI:
    """Context of every console template: the actor, links, forms and dates."""

    actor: Actor
    zone: dt.tzinfo
    form: FormTarget | None
    user_edit_url: str

    @property
    def is_admin(self) -> bool:
        return self.actor.is_admin

    def link(self, section: str, **params: object) -> str:
        """Build a relative wp-admin link to a section, dropping empty values."""
        if self.actor.is_admin:
            query: dict[str, object] = {"page": ADMIN_SLUGS[section]}
        else:
            query = {"page": COACH_SLUG}
            if section != "coach":
                query["section"] = section
        query.update(
            {k: v for k, v in params.items() if v is not None and v != "" and v != ()}
        )
        return "?" + urlencode(query, quote_via=quote)

    def page_fields(self, section: str) -> list[tuple[str, str]]:
        """Return the hidden fields that keep a GET filter form on its section."""
        if self.actor.is_admin:
            return [("page", ADMIN_SLUGS[section])]
        if section == "coach":
            return [("page", COACH_SLUG)]
        return [("page", COACH_SLUG), ("section", section)]

    def user_edit(self, wp_user_id: int) -> str:
        """Build the link to WordPress's user editor for a user."""
        return f"{self.user_edit_url}?user_id={wp_user_id}"

    def time(self, value: dt.datetime | None) -> str:
        """Format a stored UTC instant as site time, or a dash for none."""
        if value is None:
            return "–"
        local = value.replace(tzinfo=dt.UTC).astimezone(self.zone)
        return local.strftime("%Y-%m-%d %H:%M")

    def iso(self, value: dt.datetime | None) -> str:
        """Format a stored UTC instant for a ``<time datetime>`` attribute."""
        if value is None:
            return ""
        return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds")

    def label(self, activity_type: str) -> str:
        """Return the readable label of an activity type."""
        return ACTIVITY_LABELS.get(activity_type, activity_type.replace("_", " "))


def page_ui(runtime: Runtime, actor: Actor, args: Mapping[str, str]) -> PageUI:
    """Read the form target and user editor URL that the plugin passed."""
    return PageUI(
        actor=actor,
        zone=runtime.site_zone(),
        form=form_target(args) if actor.is_admin else None,
        user_edit_url=_user_edit_url(args),
    )


def form_target(args: Mapping[str, str]) -> FormTarget | None:
    """Read ``form_action`` and ``form_nonce``, or return None to render no forms."""
    action = args.get("form_action", "")
    nonce = args.get("form_nonce", "")
    if not _is_web_url(action) or not NONCE_PATTERN.fullmatch(nonce):
        if action or nonce:
            log.warning("console page rendered without forms: invalid form_action")
        return None
    return FormTarget(action, nonce)


def _user_edit_url(args: Mapping[str, str]) -> str:
    # Without a URL from the plugin the link stays relative, which works because
    # the page is shown under /wp-admin/.
    url = args.get("user_edit_url", "")
    return url if _is_web_url(url) else "user-edit.php"


def _is_web_url(value: str) -> bool:
    return (
        value.startswith(("https://", "http://"))
        and len(value) <= MAX_URL_LENGTH
        and not any(char.isspace() or char in "\"'<>" for char in value)
    )


def render(template: str, ui: PageUI, section: str, **context: Any) -> Response:
    """Render a console template as an HTML fragment."""
    html = render_template(
        template,
        ui=ui,
        section=section,
        labels=ACTIVITY_LABELS,
        sort_labels=SORT_LABELS,
        **context,
    )
    return Response(html, mimetype="text/html")


# Pages


@admin_pages_blueprint.get("/admin/activity")
def activity_page() -> Response:
    """Render client progress (``view=progress``) or the feed (``view=feed``)."""
    runtime, actor = acting()
    console.require_console(actor)
    ui = page_ui(runtime, actor, request.args)
    view = request.args.get("view", "") or "progress"
    programs = console.program_choices(runtime, actor)
    coaches = console.coach_choices(runtime, actor)

    if view == "feed":
        query = feed_query(request.args, "paged")
        return render(
            "admin/feed.html",
            ui,
            "activity",
            feed=console.list_activity(runtime, actor, query),
            filters=_feed_filters(query),
            programs=programs,
            coaches=coaches,
        )
    if view != "progress":
        raise NotFound(f"page view {view!r} not found")

    query = progress_query(request.args, "paged")
    return render(
        "admin/activity.html",
        ui,
        "activity",
        progress=console.list_progress(runtime, actor, query),
        query=query,
        filters=_progress_filters(query),
        programs=programs,
        coaches=coaches,
    )


def _progress_filters(query: console.ProgressQuery) -> dict[str, object]:
    return {
        "program": query.program_id,
        "coach": query.coach_id,
        "cohort": query.cohort_id,
        "status": query.status if query.status != "active" else None,
        "off_track": "1" if query.off_track else None,
        "q": query.search.strip() or None,
        "sort": query.sort if query.sort != "last_activity" else None,
        "order": query.order,
        "per_page": query.per_page if query.per_page != 50 else None,
    }


def _feed_filters(query: console.FeedQuery) -> dict[str, object]:
    return {
        "view": "feed",
        "type": ",".join(query.types) or None,
        "from": query.date_from.isoformat() if query.date_from else None,
        "to": query.date_to.isoformat() if query.date_to else None,
        "program": query.program_id,
        "coach": query.coach_id,
        "per_page": query.per_page if query.per_page != 50 else None,
    }


@admin_pages_blueprint.get("/admin/programs")
def programs_page() -> Response:
    """Render the programs list, one program, or the new program form."""
    runtime, actor = acting()
    console.require_console(actor)
    ui = page_ui(runtime, actor, request.args)
    program_id = int_arg(request.args, "program")

    if request.args.get("view") == "new":
        console.require_change(actor, "create programs")
        return render(
            "admin/program_new.html",
            ui,
            "programs",
            memberships=console.list_memberships(runtime, actor),
            blank_rows=BLANK_ROWS + 1,
            duration=_duration_text,
        )
    if program_id is not None:
        return _program_page(runtime, actor, ui, program_id)
    return render(
        "admin/programs.html",
        ui,
        "programs",
        programs=console.list_programs(runtime, actor),
    )


def _program_page(
    runtime: Runtime, actor: Actor, ui: PageUI, program_id: int
) -> Response:
    detail = console.program_detail(runtime, actor, program_id)
    memberships: list[console.MembershipChoice] = []
    coaches: list[console.CoachSummary] = []
    if actor.is_admin:
        memberships = console.list_memberships(runtime, actor)
        coaches = console.list_coaches(runtime, actor)
    return render(
        "admin/program.html",
        ui,
        "programs",
        program=detail,
        memberships=memberships,
        chosen={membership.id for membership in detail.memberships},
        coaches=coaches,
        blank_rows=BLANK_ROWS,
        duration=_duration_text,
    )


def _duration_text(amount: int | None, unit: str | None) -> str:
    if amount is None or unit is None:
        return ""
    return f"{amount} {unit.removesuffix('s') if amount == 1 else unit}"


@admin_pages_blueprint.get("/admin/coaches")
def coaches_page() -> Response:
    """Render the coaches list with the registration forms, or one coach."""
    runtime, actor = acting()
    console.require_console(actor)
    ui = page_ui(runtime, actor, request.args)
    coach_id = int_arg(request.args, "coach")
    if coach_id is not None:
        return _coach_page(runtime, actor, ui, coach_id)

    search = request.args.get("q", "").strip()
    found = console.search_users(runtime, actor, search) if actor.is_admin else []
    return render(
        "admin/coaches.html",
        ui,
        "coaches",
        coaches=console.list_coaches(runtime, actor),
        search=search,
        found=found,
    )


@admin_pages_blueprint.get("/coach")
def coach_home_page() -> Response:
    """Render the acting coach's own page: their cohorts and most active clients."""
    runtime, actor = acting()
    if actor.coach_id is None:
        raise NotFound("page not found: the user is not a registered coach")
    ui = page_ui(runtime, actor, request.args)
    return _coach_page(runtime, actor, ui, actor.coach_id, section="coach")


def _coach_page(
    runtime: Runtime,
    actor: Actor,
    ui: PageUI,
    coach_id: int,
    section: str = "coaches",
) -> Response:
    detail = console.coach_detail(runtime, actor, coach_id)
    other_cohorts: list[console.CohortInfo] = []
    if actor.is_admin:
        other_cohorts = [
            cohort
            for cohort in console.list_cohorts(runtime, actor)
            if cohort.coach_id != coach_id
        ]
    return render(
        "admin/coach.html",
        ui,
        section,
        detail=detail,
        other_cohorts=other_cohorts,
    )


@admin_pages_blueprint.get("/admin/clients")
def clients_page() -> Response:
    """Render the clients list with search, or one client."""
    runtime, actor = acting()
    console.require_console(actor)
    ui = page_ui(runtime, actor, request.args)
    client_id = int_arg(request.args, "client")
    if client_id is not None:
        return render(
            "admin/client.html",
            ui,
            "clients",
            client=console.client_detail(runtime, actor, client_id),
        )

    query = client_query(request.args, "paged")
    clients = console.list_clients(runtime, actor, query)
    listed = {row.wp_user_id for row in clients.items}
    others: list[console.UserChoice] = []
    if actor.is_admin and query.search.strip():
        others = [
            user
            for user in console.search_users(runtime, actor, query.search)
            if user.id not in listed
        ]
    return render(
        "admin/clients.html",
        ui,
        "clients",
        clients=clients,
        query=query,
        filters={"q": query.search.strip() or None, "program": query.program_id},
        programs=console.program_choices(runtime, actor),
        others=others,
    )


@admin_pages_blueprint.get("/admin/admin.css")
def stylesheet() -> Response:
    """Return the console's stylesheet, which the plugin adds to its pages."""
    response = Response(STYLESHEET.read_text(encoding="utf-8"), mimetype="text/css")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


# Forms


Fields = Mapping[str, "str | list[str]"]


@admin_pages_blueprint.post("/admin/forms/<form_name>")
def form_submission(form_name: str) -> Response:
    """Apply a console form that the plugin forwarded with its fields as strings.

    The response is JSON: a notice and the wp-admin page to return to, or
    the usual error body.
    """
    runtime, actor = acting()
    outcome = submit_form(runtime, actor, form_name, form_fields(request_json()))
    return jsonify(json_ready(outcome))


def form_fields(data: Any) -> dict[str, str | list[str]]:
    """Check that a forwarded form is an object of strings and lists of strings."""
    if not isinstance(data, dict):
        raise InvalidRequest("invalid form: expected a JSON object of fields")
    fields: dict[str, str | list[str]] = {}
    for name, value in data.items():
        if isinstance(value, str):
            fields[name] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            fields[name] = list(value)
        else:
            raise InvalidRequest(
                f"invalid form field {name!r}: expected a string or a list of strings"
            )
    return fields


@dataclass(frozen=True)
class FormOutcome:
    """The notice to show after a form and the page to return to."""

    message: str
    # wp-admin query of the page to show next, such as {"page": ..., "program": 3}.
    return_query: dict[str, str]


def submit_form(
    runtime: Runtime, actor: Actor, name: str, fields: Fields
) -> FormOutcome:
    """Apply one console form posted through the plugin.

    Raises NotFound for an unknown form, Forbidden for a coach, and the
    errors of the change itself (InvalidRequest, Conflict) with their messages.
    """
    handler = FORM_HANDLERS.get(name)
    if handler is None:
        raise NotFound(f"form {name!r} not found")
    console.require_change(actor, "submit console forms")
    return handler(runtime, actor, fields)


def _program_create(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    values = _program_values(fields)
    values["slug"] = _text(fields, "slug").strip()
    values["milestones"] = _milestone_rows(fields)
    values["habits"] = _habit_rows(fields)
    body = console.parse_body(console.ProgramInput, values)
    program_id = console.create_program(runtime, actor, body)
    return FormOutcome(
        f"Program {body.title!r} created.", _back("programs", program=program_id)
    )


def _program_update(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    program_id = _required_id(fields, "program_id")
    values = _program_values(fields)
    # A locked program's form shows its content read-only and sends no rows.
    if _text(fields, "content") == "1":
        values["milestones"] = _milestone_rows(fields)
        values["habits"] = _habit_rows(fields)
    changes = console.parse_body(console.ProgramChanges, values)
    console.update_program(runtime, actor, program_id, changes)
    return FormOutcome("Program saved.", _back("programs", program=program_id))


def _program_delete(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    program_id = _required_id(fields, "program_id")
    console.delete_program(runtime, actor, program_id)
    return FormOutcome(f"Program {program_id} deleted.", _back("programs"))


def _program_duplicate(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    program_id = _required_id(fields, "program_id")
    values: dict[str, Any] = {"slug": _text(fields, "slug").strip()}
    if _text(fields, "title").strip():
        values["title"] = _text(fields, "title").strip()
    body = console.parse_body(console.DuplicateInput, values)
    copy_id = console.duplicate_program(runtime, actor, program_id, body)
    return FormOutcome(
        f"Program copied as {body.slug!r}, without memberships and cohorts.",
        _back("programs", program=copy_id),
    )


def _cohort_create(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    program_id = _required_id(fields, "program_id")
    body = console.parse_body(console.CohortInput, _cohort_values(fields))
    console.add_cohort(runtime, actor, program_id, body)
    return FormOutcome(
        f"Cohort {body.name!r} added.", _back("programs", program=program_id)
    )


def _cohort_update(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    cohort_id = _required_id(fields, "cohort_id")
    changes = console.parse_body(console.CohortChanges, _cohort_values(fields))
    console.update_cohort(runtime, actor, cohort_id, changes)
    program_id = _optional_int(fields, "program_id")
    return FormOutcome("Cohort saved.", _back("programs", program=program_id))


def _cohort_coach(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    cohort_id = _required_id(fields, "cohort_id")
    coach_wp_user_id = _required_id(fields, "coach")
    changes = console.CohortChanges(coach=coach_wp_user_id)
    console.update_cohort(runtime, actor, cohort_id, changes)
    coach_id = _optional_int(fields, "coach_id")
    return FormOutcome("Cohort assigned.", _back("coaches", coach=coach_id))


def _coach_add(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    wp_user_id = _required_id(fields, "wp_user_id")
    coach, created = console.register_coach(runtime, actor, wp_user_id)
    verb = "registered as a coach" if created else "was already a coach"
    return FormOutcome(
        f"{coach.display_name or wp_user_id} {verb}.", _back("coaches", coach=coach.id)
    )


def _client_add(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    wp_user_id = _required_id(fields, "wp_user_id")
    cohort_id = _required_id(fields, "cohort_id")
    info = console.add_client(runtime, actor, wp_user_id, cohort_id)
    return FormOutcome(
        f"Added to {info.program_title}, cohort {info.cohort_name}.",
        _back("clients", client=wp_user_id),
    )


def _client_assign(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    enrollment_id = _required_id(fields, "enrollment_id")
    cohort_id = _required_id(fields, "cohort_id")
    info = console.assign_cohort(runtime, actor, enrollment_id, cohort_id)
    return FormOutcome(
        f"Moved to cohort {info.cohort_name} of {info.program_title}.",
        _back("clients", client=info.wp_user_id),
    )


def _client_unenroll(runtime: Runtime, actor: Actor, fields: Fields) -> FormOutcome:
    enrollment_id = _required_id(fields, "enrollment_id")
    result = console.unenroll(runtime, actor, enrollment_id)
    info = result.enrollment
    return FormOutcome(
        unenroll_message(info.program_title, result.granting_memberships),
        _back("clients", client=info.wp_user_id),
    )


def unenroll_message(program_title: str, granting: list[int] | None) -> str:
    """Say that a client was unenrolled, and whether a membership still grants it."""
    message = f"Unenrolled from {program_title}; their data is kept."
    if granting:
        listed = ", ".join(str(m) for m in granting)
        message += (
            f" Their MemberPress membership {listed} still grants this program: "
            "the sync will not enroll them again, but MemberPress may still bill "
            "them for it."
        )
    elif granting is None:
        message += (
            " WordPress could not be read to check whether a membership still "
            "grants the program."
        )
    return message


FORM_HANDLERS: dict[str, Callable[[Runtime, Actor, Fields], FormOutcome]] = {
    "program-create": _program_create,
    "program-update": _program_update,
    "program-delete": _program_delete,
    "program-duplicate": _program_duplicate,
    "cohort-create": _cohort_create,
    "cohort-update": _cohort_update,
    "cohort-coach": _cohort_coach,
    "coach-add": _coach_add,
    "client-add": _client_add,
    "client-assign": _client_assign,
    "client-unenroll": _client_unenroll,
}


def _back(section: str, **ids: int | None) -> dict[str, str]:
    query = {"page": ADMIN_SLUGS[section]}
    query.update({name: str(value) for name, value in ids.items() if value})
    return query


# Form fields arrive as strings, or lists of strings for names ending in [].


def _text(fields: Fields, name: str) -> str:
    value = fields.get(name, "")
    return value if isinstance(value, str) else ""


def _list(fields: Fields, name: str) -> list[str]:
    value = fields.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def _flag(fields: Fields, name: str) -> bool:
    return _text(fields, name).strip() in ("1", "on", "true")


def _optional_int(fields: Fields, name: str) -> int | None:
    return _whole_number(_text(fields, name), name)


def _whole_number(raw: str, label: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidRequest(f"invalid {label} {raw[:40]!r}: expected a whole number")
    return int(raw)


def _required_id(fields: Fields, name: str) -> int:
    value = _optional_int(fields, name)
    if value is None or value < 1:
        raise InvalidRequest(f"missing {name}: the form must send it")
    return value


def _program_values(fields: Fields) -> dict[str, Any]:
    memberships = [
        _whole_number(raw, "membership")
        for raw in _list(fields, "memberships")
        if raw.strip()
    ]
    return {
        "title": _text(fields, "title").strip(),
        "description": _text(fields, "description"),
        "messaging_enabled": _flag(fields, "messaging_enabled"),
        "memberships": memberships,
    }


def _milestone_rows(fields: Fields) -> list[dict[str, Any]]:
    titles = _list(fields, "milestone_title")
    descriptions = _list(fields, "milestone_description")
    dues = _list(fields, "milestone_due")
    rows = []
    for index, title in enumerate(titles):
        description = _item(descriptions, index)
        due = _item(dues, index)
        if not (title.strip() or description.strip() or due.strip()):
            continue
        amount, unit = _duration(due, f"due of milestone {len(rows) + 1}")
        rows.append(
            {
                "title": title.strip(),
                "description": description,
                "due_amount": amount,
                "due_unit": unit,
            }
        )
    return rows


def _habit_rows(fields: Fields) -> list[dict[str, Any]]:
    columns = {
        name: _list(fields, f"habit_{name}")
        for name in (
            "title",
            "description",
            "schedule",
            "weekdays",
            "every_days",
            "start_offset_days",
            "length",
        )
    }
    rows = []
    for index in range(len(columns["title"])):
        cell = {name: _item(values, index) for name, values in columns.items()}
        typed = ("title", "description", "weekdays", "every_days", "length")
        if not any(cell[name].strip() for name in typed):
            continue
        label = f"habit {len(rows) + 1}"
        length_amount, length_unit = _duration(cell["length"], f"length of {label}")
        rows.append(
            {
                "title": cell["title"].strip(),
                "description": cell["description"],
                "schedule": cell["schedule"] or "daily",
                "weekdays": re.findall(r"[A-Za-z]+", cell["weekdays"]),
                "every_days": _whole_number(cell["every_days"], f"{label} every_days"),
                "start_offset_days": _whole_number(
                    cell["start_offset_days"], f"{label} start_offset_days"
                )
                or 0,
                "length_amount": length_amount,
                "length_unit": length_unit,
            }
        )
    return rows


def _duration(text: str, label: str) -> tuple[int, str]:
    """Read "3 days", "2 weeks" or "1 month" into an amount and a unit."""
    if not text.strip():
        raise InvalidRequest(
            f"missing {label}: give a whole number and days, weeks or months, "
            'such as "6 weeks"'
        )
    match = DURATION_PATTERN.match(text)
    if match is None:
        raise InvalidRequest(
            f"invalid {label} {text[:40]!r}: expected a whole number and days, "
            'weeks or months, such as "6 weeks"'
        )
    return int(match.group(1)), match.group(2).lower() + "s"


def _item(values: list[str], index: int) -> str:
    return values[index] if index < len(values) else ""


def _form_date(fields: Fields, name: str) -> dt.date | None:
    raw = _text(fields, name).strip()
    return date_arg({name: raw}, name) if raw else None


def _cohort_values(fields: Fields) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": _text(fields, "name").strip(),
        "type": _text(fields, "type") or "rolling",
        "start_date": _form_date(fields, "start_date"),
        "capacity": _optional_int(fields, "capacity"),
        "open": _flag(fields, "open"),
        "appointments": _flag(fields, "appointments"),
        "booking_url": _text(fields, "booking_url").strip() or None,
    }
    # Left out rather than None, so that a missing coach reads "field required".
    coach = _optional_int(fields, "coach")
    if coach is not None:
        values["coach"] = coach
    return values
