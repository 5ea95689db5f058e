"""The admin and coach JSON API under ``/api/v1/admin/``.

Every request is signed by the WordPress plugin (see docs/signing.md). The
acting user's roles come from WordPress and bridge's tables, never from the
request: administrators may read and change everything, coaches may read what
concerns the cohorts they lead, and everyone else gets 404. The routes are
documented in ``bridge/openapi/admin.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from bridge import console
from bridge.app import get_runtime
from bridge.auth import Actor, current_actor
from bridge.errors import InvalidRequest, NotFound
from bridge.runtime import Runtime
from bridge.signing import require_signed_requests, signed_user_id

log = logging.getLogger(__name__)

DIGITS = re.compile(r"[0-9]+")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

admin_api_blueprint = require_signed_requests(
    Blueprint("admin_api", __name__, url_prefix="/api/v1/admin")
)


def acting() -> tuple[Runtime, Actor]:
    """Return the runtime and the actor of the current signed request.

    Raises NotFound for an id in the path above the largest stored id, which
    the databases could not compare.
    """
    runtime = get_runtime(current_app)
    actor = current_actor(runtime, signed_user_id())
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > console.MAX_ID:
            raise NotFound(f"{name} {value} not found")
    return runtime, actor


# Client progress and activity


@admin_api_blueprint.get("/progress")
def get_progress() -> Response:
    """List client progress, filtered, searched, sorted and paginated."""
    runtime, actor = acting()
    page = console.list_progress(runtime, actor, progress_query(request.args))
    return jsonify(json_ready(page))


@admin_api_blueprint.get("/progress.csv")
def get_progress_csv() -> Response:
    """Export the whole filtered client progress list as CSV."""
    runtime, actor = acting()
    query = progress_query(request.args)
    rows = console.export_progress(runtime, actor, query)
    text = console.progress_csv(rows, runtime.site_zone())
    filename = f"coaching-progress-{runtime.today().isoformat()}.csv"
    log.info("user %s exported %d progress rows", actor.wp_user_id, len(rows))
    return Response(
        text.encode("utf-8"),
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@admin_api_blueprint.get("/activity")
def get_activity() -> Response:
    """List activity entries, newest first, filtered by type and date range."""
    runtime, actor = acting()
    page = console.list_activity(runtime, actor, feed_query(request.args))
    return jsonify(json_ready(page))


# Programs and cohorts


@admin_api_blueprint.get("/programs")
def get_programs() -> Response:
    """List the programs the actor may see."""
    runtime, actor = acting()
    return jsonify({"items": json_ready(console.list_programs(runtime, actor))})


@admin_api_blueprint.post("/programs")
def post_program() -> tuple[Response, int, dict[str, str]]:
    """Create a program with its milestones, habits and memberships."""
    runtime, actor = acting()
    body = console.parse_body(console.ProgramInput, request_json())
    program_id = console.create_program(runtime, actor, body)
    detail = console.program_detail(runtime, actor, program_id)
    return created(detail, "admin_api.get_program", program_id=program_id)


@admin_api_blueprint.get("/programs/<int:program_id>")
def get_program(program_id: int) -> Response:
    """Return a program with its content, memberships and cohorts."""
    runtime, actor = acting()
    return jsonify(json_ready(console.program_detail(runtime, actor, program_id)))


@admin_api_blueprint.patch("/programs/<int:program_id>")
def patch_program(program_id: int) -> Response:
    """Change a program; milestones and habits are locked once it has enrollments."""
    runtime, actor = acting()
    changes = console.parse_body(console.ProgramChanges, request_json())
    console.update_program(runtime, actor, program_id, changes)
    return jsonify(json_ready(console.program_detail(runtime, actor, program_id)))


@admin_api_blueprint.delete("/programs/<int:program_id>")
def delete_program(program_id: int) -> tuple[str, int]:
    """Delete a program that has no enrollments."""
    runtime, actor = acting()
    console.delete_program(runtime, actor, program_id)
    return "", 204


@admin_api_blueprint.post("/programs/<int:program_id>/duplicate")
def post_duplicate(program_id: int) -> tuple[Response, int, dict[str, str]]:
    """Copy a program's settings and content under a new slug."""
    runtime, actor = acting()
    body = console.parse_body(console.DuplicateInput, request_json())
    copy_id = console.duplicate_program(runtime, actor, program_id, body)
    detail = console.program_detail(runtime, actor, copy_id)
    return created(detail, "admin_api.get_program", program_id=copy_id)


@admin_api_blueprint.post("/programs/<int:program_id>/cohorts")
def post_cohort(program_id: int) -> tuple[Response, int, dict[str, str]]:
    """Add a cohort to a program."""
    runtime, actor = acting()
    body = console.parse_body(console.CohortInput, request_json())
    cohort_id = console.add_cohort(runtime, actor, program_id, body)
    cohort = load_cohort(runtime, actor, cohort_id)
    return created(cohort, "admin_api.get_cohort", cohort_id=cohort_id)


@admin_api_blueprint.get("/cohorts")
def get_cohorts() -> Response:
    """List the cohorts the actor may see, with active client counts."""
    runtime, actor = acting()
    return jsonify({"items": json_ready(console.list_cohorts(runtime, actor))})


@admin_api_blueprint.get("/cohorts/<int:cohort_id>")
def get_cohort(cohort_id: int) -> Response:
    """Return one cohort."""
    runtime, actor = acting()
    return jsonify(json_ready(load_cohort(runtime, actor, cohort_id)))


@admin_api_blueprint.patch("/cohorts/<int:cohort_id>")
def patch_cohort(cohort_id: int) -> Response:
    """Change a cohort: type, dates, coach, capacity, open, appointments."""
    runtime, actor = acting()
    changes = console.parse_body(console.CohortChanges, request_json())
    console.update_cohort(runtime, actor, cohort_id, changes)
    return jsonify(json_ready(load_cohort(runtime, actor, cohort_id)))


def load_cohort(runtime: Runtime, actor: Actor, cohort_id: int) -> console.CohortInfo:
    """Return a cohort from the actor's cohort list, or raise NotFound."""
    for cohort in console.list_cohorts(runtime, actor):
        if cohort.id == cohort_id:
            return cohort
    raise NotFound(f"cohort {cohort_id} not found")


@admin_api_blueprint.get("/memberships")
def get_memberships() -> Response:
    """List MemberPress memberships for the program form's picker."""
    runtime, actor = acting()
    return jsonify({"items": json_ready(console.list_memberships(runtime, actor))})


# Coaches and WordPress users


@admin_api_blueprint.get("/users")
def get_users() -> Response:
    """Search WordPress users by login, email or display name."""
    runtime, actor = acting()
    users = console.search_users(runtime, actor, request.args.get("q", ""))
    return jsonify({"items": json_ready(users)})


@admin_api_blueprint.get("/coaches")
def get_coaches() -> Response:
    """List the registered coaches."""
    runtime, actor = acting()
    return jsonify({"items": json_ready(console.list_coaches(runtime, actor))})


@admin_api_blueprint.post("/coaches")
def post_coach() -> tuple[Response, int, dict[str, str]]:
    """Register an existing WordPress user as a coach; 200 if already registered."""
    runtime, actor = acting()
    body = console.parse_body(console.CoachInput, request_json())
    coach, was_created = console.register_coach(runtime, actor, body.wp_user_id)
    status = 201 if was_created else 200
    location = url_for("admin_api.get_coach", coach_id=coach.id)
    return jsonify(json_ready(coach)), status, {"Location": location}


@admin_api_blueprint.get("/coaches/<int:coach_id>")
def get_coach(coach_id: int) -> Response:
    """Return a coach's cohorts and most active clients."""
    runtime, actor = acting()
    return jsonify(json_ready(console.coach_detail(runtime, actor, coach_id)))


# Clients and enrollments


@admin_api_blueprint.get("/clients")
def get_clients() -> Response:
    """List clients, most recently active first, searched by name or email."""
    runtime, actor = acting()
    page = console.list_clients(runtime, actor, client_query(request.args))
    return jsonify(json_ready(page))


@admin_api_blueprint.get("/clients/<int:wp_user_id>")
def get_client(wp_user_id: int) -> Response:
    """Return a client's enrollments, progress and recent activity."""
    runtime, actor = acting()
    detail = console.client_detail(runtime, actor, wp_user_id)
    payload = json_ready(detail)
    payload["wordpress_user_edit"] = f"user-edit.php?user_id={wp_user_id}"
    return jsonify(payload)


@admin_api_blueprint.post("/clients/<int:wp_user_id>/enrollments")
def post_client_enrollment(wp_user_id: int) -> tuple[Response, int, dict[str, str]]:
    """Enroll a WordPress user by hand in a cohort."""
    runtime, actor = acting()
    body = console.parse_body(console.CohortChoice, request_json())
    info = console.add_client(runtime, actor, wp_user_id, body.cohort_id)
    return created(info, "admin_api.get_enrollment", enrollment_id=info.id)


@admin_api_blueprint.get("/enrollments/<int:enrollment_id>")
def get_enrollment(enrollment_id: int) -> Response:
    """Return one enrollment with its progress figures."""
    runtime, actor = acting()
    info = console.load_console_enrollment(runtime, actor, enrollment_id)
    return jsonify(json_ready(info))


@admin_api_blueprint.put("/enrollments/<int:enrollment_id>/cohort")
def put_enrollment_cohort(enrollment_id: int) -> Response:
    """Move an enrollment to another cohort of its program."""
    runtime, actor = acting()
    body = console.parse_body(console.CohortChoice, request_json())
    info = console.assign_cohort(runtime, actor, enrollment_id, body.cohort_id)
    return jsonify(json_ready(info))


@admin_api_blueprint.post("/enrollments/<int:enrollment_id>/unenroll")
def post_unenroll(enrollment_id: int) -> Response:
    """Make an enrollment inactive, keeping its data."""
    runtime, actor = acting()
    result = console.unenroll(runtime, actor, enrollment_id)
    return jsonify(json_ready(result))


# Requests and responses


def request_json() -> Any:
    """Return the request's JSON body, raising InvalidRequest when it is not JSON."""
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidRequest(
            "invalid request body: expected JSON with Content-Type application/json"
        )
    return data


def created(
    value: Any, endpoint: str, **values: int
) -> tuple[Response, int, dict[str, str]]:
    """Build a 201 response with the new object and its Location."""
    return jsonify(json_ready(value)), 201, {"Location": url_for(endpoint, **values)}


def json_ready(value: Any) -> Any:
    """Convert dataclasses, dates and times into JSON values.

    A dataclass becomes an object of its fields and properties. A naive
    datetime is UTC, as stored, and is written with a Z.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {
            f.name: json_ready(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
        for name, member in vars(type(value)).items():
            if isinstance(member, property):
                data[name] = json_ready(getattr(value, name))
        return data
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="seconds") + "Z"
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


# Query parameters, shared with the pages


def int_arg(args: Mapping[str, str], name: str) -> int | None:
    """Return a positive integer parameter, or None when it is absent."""
    raw = args.get(name)
    if raw is None:
        return None
    if not DIGITS.fullmatch(raw) or not 1 <= int(raw) <= console.MAX_ID:
        raise InvalidRequest(
            f"invalid {name} {raw[:40]!r}: expected a positive whole number"
        )
    return int(raw)


def date_arg(args: Mapping[str, str], name: str) -> dt.date | None:
    """Return a YYYY-MM-DD parameter as a date, or None when it is absent."""
    raw = args.get(name)
    if raw is None:
        return None
    try:
        if not DATE_PATTERN.fullmatch(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            f"invalid {name} {raw[:40]!r}: expected a date such as 2026-03-02"
        ) from None


def flag_arg(args: Mapping[str, str], name: str) -> bool | None:
    """Return a 1/0, true/false or yes/no parameter, or None when it is absent."""
    raw = args.get(name)
    if raw is None:
        return None
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise InvalidRequest(f"invalid {name} {raw[:40]!r}: expected 1 or 0")


def page_args(args: Mapping[str, str], page_name: str) -> dict[str, int]:
    """Return the page number and size; the pages call the number ``paged``."""
    page = int_arg(args, page_name) or 1
    per_page = int_arg(args, "per_page") or console.DEFAULT_PAGE_SIZE
    return {"page": page, "per_page": per_page}


def progress_query(args: Any, page_name: str = "page") -> console.ProgressQuery:
    """Build the client progress query from request parameters."""
    return console.ProgressQuery(
        program_id=int_arg(args, "program"),
        coach_id=int_arg(args, "coach"),
        cohort_id=int_arg(args, "cohort"),
        status=args.get("status", "active"),
        off_track=flag_arg(args, "off_track"),
        search=args.get("q", ""),
        sort=args.get("sort", "last_activity"),
        order=args.get("order"),
        **page_args(args, page_name),
    )


def feed_query(args: Any, page_name: str = "page") -> console.FeedQuery:
    """Build the activity feed query; ``type`` may repeat."""
    return console.FeedQuery(
        types=tuple(args.getlist("type")),
        date_from=date_arg(args, "from"),
        date_to=date_arg(args, "to"),
        program_id=int_arg(args, "program"),
        coach_id=int_arg(args, "coach"),
        wp_user_id=int_arg(args, "client"),
        **page_args(args, page_name),
    )


def client_query(args: Any, page_name: str = "page") -> console.ClientQuery:
    """Build the clients list query from request parameters."""
    return console.ClientQuery(
        search=args.get("q", ""),
        program_id=int_arg(args, "program"),
        **page_args(args, page_name),
    )
