"""The Coaching tab: ``GET /pages/client``, an HTML fragment for the plugin.

The WordPress plugin fetches this page signed for the logged-in member and
prints it inside the MemberPress account page, so the page has no ``<html>``
wrapper. Query parameters:

- ``view``: ``enrollments`` (the default), ``program`` or ``messages``;
- ``enrollment`` (or ``program``, a program id) for the program view, and
  ``from`` and ``to`` for its habit window;
- ``conversation`` for the messages view;
- ``form_action`` and ``form_nonce``: where plain forms post and the nonce they
  carry. The plugin signs them with the rest of the query. Without them the
  page still renders, and only the instant ticks of assets/coachbridge.js work.

Templates autoescape, and user data is never marked safe. Links are relative
query strings starting with ``?action=coaching``, so they work on any account
page URL.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request

from bridge import messages
from bridge.api_client import (
    Window,
    acting_actor,
    enrollment_detail,
    enrollment_summaries,
    parse_window,
    unread_total,
)
from bridge.app import get_runtime
from bridge.auth import Actor
from bridge.errors import InvalidRequest, NotFound
from bridge.messages import MAX_ID
from bridge.models import Enrollment
from bridge.runtime import Runtime
from bridge.signing import require_signed_requests, signed_user_id

log = logging.getLogger(__name__)

TAB_ACTION = "coaching"
VIEWS = ("enrollments", "program", "messages")
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
ID_PATTERN = re.compile(r"[1-9][0-9]{0,18}")
# Query parameters that a form's ``return`` field keeps, so that the plugin
# redirects back to the same view after handling the form.
RETURN_PARAMETERS = ("view", "enrollment", "from", "to", "conversation")

pages_client_blueprint = Blueprint("pages_client", __name__, url_prefix="/pages")
require_signed_requests(pages_client_blueprint)


@dataclass(frozen=True)
class FormTarget:
    """Target of plain forms: the URL they post to and the hidden fields it checks."""

    action: str
    hidden: tuple[tuple[str, str], ...]


@pages_client_blueprint.get("/client")
def client_page() -> Response:
    """Render the Coaching tab for the signed user."""
    runtime = get_runtime(current_app)
    actor = acting_actor(runtime, signed_user_id())
    html = render_client_page(runtime, actor, request.args)
    return Response(html, mimetype="text/html")


def render_client_page(runtime: Runtime, actor: Actor, args: Mapping[str, str]) -> str:
    """Render one view of the Coaching tab as an HTML fragment.

    Raises NotFound for an unknown view or an object the actor may not see.
    """
    view = args.get("view") or "enrollments"
    if view not in VIEWS:
        raise NotFound(f"page view {view!r} not found")

    context = {
        "view": view,
        "link": page_link,
        "format_date": format_date,
        "max_body_length": messages.MAX_BODY_LENGTH,
        "form": form_target(args),
        "return_query": return_query(args),
        "unread": unread_total(runtime, actor),
        "actor": actor,
    }
    if view == "program":
        return _render_program(runtime, actor, args, context)
    if view == "messages":
        return _render_messages(runtime, actor, args, context)
    return _render_enrollments(runtime, actor, context)


def page_link(window: Window | None = None, **params: object) -> str:
    """Build a relative link to a view of the tab, such as ``?action=coaching&...``.

    A ``window`` becomes the ``from`` and ``to`` parameters.
    """
    values = {"action": TAB_ACTION}
    for key, value in params.items():
        if value is not None:
            values[key] = str(value)
    if window is not None:
        values["from"] = window.start.isoformat()
        values["to"] = window.end.isoformat()
    return "?" + urlencode(values, quote_via=quote)


def format_date(text: str, short: bool = False) -> str:
    """Format an ISO date as "Monday 16 March 2026", or "Mon 16 Mar" when short."""
    day = dt.date.fromisoformat(text)
    if short:
        return f"{day:%a} {day.day} {day:%b}"
    return f"{day:%A} {day.day} {day:%B %Y}"


def form_target(args: Mapping[str, str]) -> FormTarget | None:
    """Read where forms post from ``form_action`` and ``form_nonce``.

    Returns None, so that the page renders without plain forms, when either is
    missing or malformed: the action must be an http(s) URL or an absolute path.
    """
    action = args.get("form_action") or ""
    nonce = args.get("form_nonce") or ""
    absolute = action.startswith(("https://", "http://"))
    path = action.startswith("/") and not action.startswith("//")
    if not (absolute or path) or not NONCE_PATTERN.fullmatch(nonce):
        if action or nonce:
            log.warning(
                "client page rendered without forms: invalid form_action or form_nonce"
            )
        return None
    return FormTarget(action=action, hidden=(("_wpnonce", nonce),))


def return_query(args: Mapping[str, str]) -> str:
    """Return the query string of the current view, for a form's ``return`` field."""
    kept = [(name, args[name]) for name in RETURN_PARAMETERS if args.get(name)]
    return urlencode(kept, quote_via=quote)


def _render_enrollments(runtime: Runtime, actor: Actor, context: dict[str, Any]) -> str:
    summaries = enrollment_summaries(runtime, actor, include_milestones=True)
    return render_template(
        "client/enrollments.html",
        enrollments=summaries,
        today=runtime.today().isoformat(),
        **context,
    )


def _render_program(
    runtime: Runtime, actor: Actor, args: Mapping[str, str], context: dict[str, Any]
) -> str:
    enrollment_id = _enrollment_id(runtime, actor, args)
    today = runtime.today()
    try:
        window = parse_window(args.get("from"), args.get("to"), today)
    except InvalidRequest as error:
        # A hand-edited link should still show the page, with the default dates.
        log.info("client page shows the default window: %s", error.message)
        window = parse_window(None, None, today)
    detail = enrollment_detail(runtime, actor, enrollment_id, window)
    return render_template(
        "client/program.html",
        detail=detail,
        grid=habit_grid(detail, window),
        previous_window=window.shifted(-window.days),
        next_window=window.shifted(window.days),
        today=today,
        **context,
    )


def _enrollment_id(runtime: Runtime, actor: Actor, args: Mapping[str, str]) -> int:
    """Read the enrollment of the program view: ``enrollment``, else ``program``."""
    enrollment = args.get("enrollment")
    if enrollment is not None:
        if not ID_PATTERN.fullmatch(enrollment):
            raise NotFound(f"enrollment {enrollment!r} not found")
        return int(enrollment)

    program = args.get("program") or ""
    if not ID_PATTERN.fullmatch(program) or int(program) > MAX_ID:
        raise NotFound("program view without an enrollment or program id")
    found = runtime.db.run(
        lambda session: session.scalar(
            sa.select(Enrollment.id).where(
                Enrollment.wp_user_id == actor.wp_user_id,
                Enrollment.program_id == int(program),
            )
        ),
        "find an enrollment by program",
    )
    if found is None:
        raise NotFound(f"no enrollment in program {program}")
    return found


def habit_grid(detail: Mapping[str, Any], window: Window) -> dict[str, Any]:
    """Lay out the habits' due dates as rows of cells, one column per window date.

    A cell is None on dates the habit is not due.
    """
    dates = window.dates()
    rows = []
    for habit in detail["habits"]:
        due = {item["date"]: item for item in habit["due_dates"]}
        cells = [due.get(day.isoformat()) for day in dates]
        rows.append({"habit": habit, "cells": cells})
    return {"dates": dates, "rows": rows}


def _render_messages(
    runtime: Runtime, actor: Actor, args: Mapping[str, str], context: dict[str, Any]
) -> str:
    conversations = messages.list_conversations(runtime, actor)
    selected = None
    conversation = args.get("conversation")
    if conversation is not None:
        if not ID_PATTERN.fullmatch(conversation) or int(conversation) > MAX_ID:
            raise NotFound(f"conversation {conversation!r} not found")
        selected = messages.read_messages(runtime, actor, int(conversation))
        # The list was read before the conversation was marked read.
        context["unread"] = unread_total(runtime, actor)
        for item in conversations:
            if item["id"] == selected["conversation"]["id"]:
                item["unread_count"] = 0

    return render_template(
        "client/messages.html",
        conversations=conversations,
        selected=selected,
        partners=messages.list_partners(runtime, actor),
        messaging_enabled=messages.messaging_enabled(runtime),
        zone=runtime.site_zone(),
        format_instant=format_instant,
        **context,
    )


def format_instant(text: str, zone: dt.tzinfo) -> str:
    """Format an API timestamp (ISO 8601 UTC) in the site's time zone."""
    instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)
    return f"{instant:%a} {instant.day} {instant:%b %Y, %H:%M}"
