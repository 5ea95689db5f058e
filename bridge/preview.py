"""The demo's preview: bridge's pages in a browser, acting as any demo user.

``coachbridge demo`` registers this blueprint, and only when
``runtime.config.demo`` is true, which no configuration file can set. The demo
server listens on 127.0.0.1 only, and every preview request from another
address is rejected as well.

The preview plays the WordPress plugin's part. ``/preview`` lists the demo's
administrators, coaches and clients. Choosing one stores the user id in a
cookie, and ``/preview/pages/<page>`` then fetches bridge's page through a
request signed for that user, inside this process, and shows it in a
standalone layout. Plain forms post to ``/preview/action``, which sends the same
signed API requests as the plugin's form handler. ``/preview/proxy`` forwards the
same allowlisted requests as the plugin's REST proxy for the page script.
Acting as anyone is the point of the preview, so the cookie is a plain user id.
A random token per process stops other sites from posting forms to it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.test import Client, TestResponse

from bridge.app import get_runtime
from bridge.models import Coach, Enrollment, EnrollmentStatus, Program
from bridge.runtime import Runtime
from bridge.signing import sign_request

log = logging.getLogger(__name__)

ACTING_COOKIE = "coachbridge_preview_user"
TOKEN_EXTENSION = "coachbridge_preview_token"
TOKEN_HEADER = "X-Coachbridge-Preview-Token"
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")
CLIENTS_PER_PROGRAM = 12
MAX_TICK_CHANGES = 600
ID_PATTERN = re.compile(r"[1-9][0-9]{0,18}")
# WordPress user ids are stored in signed BIGINT columns.
MAX_USER_ID = 2**63 - 1
HABIT_DATE_PATTERN = re.compile(r"([1-9][0-9]{0,18})/([0-9]{4}-[0-9]{2}-[0-9]{2})")
RETURN_VIEWS = ("enrollments", "program", "messages")

# The client write routes, as in the plugin's Coachbridge_Proxy::allowed_routes().
_ID = "[1-9][0-9]{0,18}"
ALLOWED_ROUTES = (
    ("PUT", re.compile(rf"/api/v1/enrollments/{_ID}/milestones/{_ID}/tick")),
    ("DELETE", re.compile(rf"/api/v1/enrollments/{_ID}/milestones/{_ID}/tick")),
    (
        "PUT",
        re.compile(rf"/api/v1/enrollments/{_ID}/habits/{_ID}/ticks/\d{{4}}-\d\d-\d\d"),
    ),
    (
        "DELETE",
        re.compile(rf"/api/v1/enrollments/{_ID}/habits/{_ID}/ticks/\d{{4}}-\d\d-\d\d"),
    ),
    ("POST", re.compile(r"/api/v1/conversations")),
    ("POST", re.compile(rf"/api/v1/conversations/{_ID}/messages")),
)

NOTICES = {
    "saved": "Your changes were saved.",
    "sent": "Your message was sent.",
    "invalid": "Nothing was sent: the form was incomplete. Please try again.",
    "failed": "Your change was not saved. Please reload the page and try again.",
    "not_allowed": "You are not allowed to make this change.",
}

preview_blueprint = Blueprint("preview", __name__, url_prefix="/preview")


@dataclass(frozen=True)
class DemoUser:
    """A user the picker offers, with what makes them interesting."""

    wp_user_id: int
    name: str
    note: str


def register_preview(app: Flask) -> None:
    """Register the preview on the demo's app; raise unless the runtime is a demo."""
    if not get_runtime(app).config.demo:
        raise RuntimeError("the preview is only for 'coachbridge demo'")
    app.extensions[TOKEN_EXTENSION] = secrets.token_urlsafe(32)
    app.register_blueprint(preview_blueprint)


@preview_blueprint.before_request
def _demo_on_loopback_only() -> None:
    if not get_runtime(current_app).config.demo:
        abort(404)
    if request.remote_addr not in LOOPBACK_ADDRESSES:
        log.warning("preview request from %s rejected", request.remote_addr)
        abort(403)


@preview_blueprint.get("")
def picker() -> str:
    """Render the list of demo users to act as."""
    runtime = get_runtime(current_app)
    return render_template(
        "client/preview_picker.html",
        title="Choose a user",
        groups=demo_users(runtime),
        token=_token(),
        acting=_acting_user(runtime),
        pages=page_links(),
    )


@preview_blueprint.post("/act")
def act() -> Response:
    """Store the chosen user in the cookie and open the Coaching tab."""
    _require_token(request.form.get("token"))
    choice = request.form.get("user", "")
    if choice == "other":
        choice = request.form.get("other_user", "")
    if _user_id(choice) is None:
        abort(
            400,
            description=f"invalid user id {choice!r}: expected a number from 1 "
            f"to {MAX_USER_ID}",
        )

    response = redirect(url_for("preview.page", page="client"))
    response.set_cookie(
        ACTING_COOKIE, choice, httponly=True, samesite="Strict", path="/preview"
    )
    return response


@preview_blueprint.get("/pages/<path:page>")
def page(page: str) -> Response | str:
    """Fetch a bridge page signed for the acting user and show it standalone."""
    runtime = get_runtime(current_app)
    acting = _acting_user(runtime)
    if acting is None:
        return redirect(url_for("preview.picker"))

    query = [(key, value) for key, value in request.args.items(multi=True)]
    query = [(key, value) for key, value in query if key != "coachbridge_notice"]
    if page == "client" or page.startswith("client/"):
        # Only the Coaching tab's forms have a handler here. The console's
        # forms go to the plugin's admin-post.php handlers, so the preview
        # shows those pages read-only.
        query += [
            ("form_action", url_for("preview.action")),
            ("form_nonce", _token()),
        ]
    response = signed_call("GET", f"/pages/{page}", acting.wp_user_id, query)

    fragment = None
    error = None
    if response.status_code == 200:
        # bridge escaped this HTML itself when it rendered the page, as the
        # plugin relies on too; nothing here comes from a user unescaped.
        fragment = Markup(response.get_data(as_text=True))
    else:
        error = _error_text(response)
    return render_template(
        "client/preview_page.html",
        title=page,
        fragment=fragment,
        error=error,
        notice=NOTICES.get(request.args.get("coachbridge_notice", "")),
        acting=acting,
        pages=page_links(),
        settings=_script_settings(),
    )


@preview_blueprint.post("/action")
def action() -> Response:
    """Handle a plain form of the Coaching tab, as the plugin's handler does."""
    _require_token(request.form.get("_wpnonce"))
    runtime = get_runtime(current_app)
    acting = _acting_user(runtime)
    if acting is None:
        return redirect(url_for("preview.picker"))

    query = return_query(request.form.get("coachbridge_return", ""))
    operation = request.form.get("coachbridge_do", "")
    query["coachbridge_notice"] = run_form(operation, acting.wp_user_id, query)
    return redirect(url_for("preview.page", page="client") + "?" + urlencode(query))


@preview_blueprint.post("/proxy")
def proxy() -> Response:
    """Forward an allowlisted API request for the page script."""
    _require_token(request.headers.get(TOKEN_HEADER))
    runtime = get_runtime(current_app)
    acting = _acting_user(runtime)
    if acting is None:
        abort(401, description="choose a user at /preview first")

    payload = request.get_json(silent=True) or {}
    if not isinstance(payload, dict):
        abort(
            400,
            description="invalid proxy request: expected a JSON object with "
            "method, path and body",
        )
    method = str(payload.get("method", "")).upper()
    path = str(payload.get("path", ""))
    if not is_allowed(method, path):
        abort(400, description=f"the preview does not forward {method} {path[:200]}")
    body = payload.get("body")
    data = b"" if body in (None, {}) else json.dumps(body).encode("utf-8")

    response = signed_call(method, path, acting.wp_user_id, [], data)
    return Response(
        response.get_data(),
        status=response.status_code,
        mimetype=response.mimetype or "application/json",
    )


def is_allowed(method: str, path: str) -> bool:
    """Return whether the plugin's allowlist lets the proxy forward this request."""
    return any(
        method == allowed and pattern.fullmatch(path)
        for allowed, pattern in ALLOWED_ROUTES
    )


def signed_call(
    method: str,
    path: str,
    user_id: int,
    query: Iterable[tuple[str, str]],
    body: bytes = b"",
) -> TestResponse:
    """Send a request signed for ``user_id`` to this app, in a separate context.

    The request runs in an empty context, so that it gets its own Flask
    application context: a nested request would otherwise share ``flask.g``,
    and with it the verified user of an earlier call.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    runtime = get_runtime(app)
    secret = runtime.config.api.secrets[0].get_secret_value()
    query_string = urlencode(list(query), quote_via=quote)
    timestamp = int(runtime.now().timestamp())
    headers = sign_request(secret, method, path, query_string, body, user_id, timestamp)
    if body:
        headers["Content-Type"] = "application/json"

    def send() -> TestResponse:
        client = Client(app, response_wrapper=TestResponse)
        return client.open(
            path,
            method=method,
            query_string=query_string,
            data=body,
            headers=headers,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )

    return contextvars.Context().run(send)


def run_form(operation: str, user_id: int, query: dict[str, str]) -> str:
    """Run one form operation through the API and return the notice code."""
    form = request.form
    if operation == "save_ticks":
        requests = tick_requests(form.get("enrollment", ""), form)
        return _send_all(requests, user_id, "saved")
    if operation == "send_message":
        conversation = form.get("conversation", "")
        body = form.get("body", "")
        if not ID_PATTERN.fullmatch(conversation) or not body.strip():
            return "invalid"
        path = f"/api/v1/conversations/{conversation}/messages"
        return _send_all([("POST", path, {"body": body})], user_id, "sent")
    if operation == "start_conversation":
        return _start_conversation(form, user_id, query)
    return "invalid"


def tick_requests(
    enrollment: str, form: Any
) -> list[tuple[str, str, dict[str, Any] | None]] | None:
    """List PUT requests for new ticks and DELETE requests for removed ones.

    Returns None for an invalid form. The form posts the checked boxes and the
    ones that were checked when the page was drawn, as the plugin reads them.
    """
    if not ID_PATTERN.fullmatch(enrollment):
        return None
    prefix = f"/api/v1/enrollments/{enrollment}"
    requests: list[tuple[str, str, dict[str, Any] | None]] = []

    done = _valid(form.getlist("milestone_done[]"), ID_PATTERN)
    was = _valid(form.getlist("milestone_was[]"), ID_PATTERN)
    requests += [("PUT", f"{prefix}/milestones/{m}/tick", None) for m in done - was]
    requests += [("DELETE", f"{prefix}/milestones/{m}/tick", None) for m in was - done]

    done = _valid(form.getlist("habit_done[]"), HABIT_DATE_PATTERN)
    was = _valid(form.getlist("habit_was[]"), HABIT_DATE_PATTERN)
    for method, values in (("PUT", done - was), ("DELETE", was - done)):
        for value in sorted(values):
            habit, day = value.split("/")
            requests.append((method, f"{prefix}/habits/{habit}/ticks/{day}", None))

    if len(requests) > MAX_TICK_CHANGES:
        return None
    return requests


def _valid(values: list[str], pattern: re.Pattern[str]) -> set[str]:
    return {value for value in values if pattern.fullmatch(value)}


def _start_conversation(form: Any, user_id: int, query: dict[str, str]) -> str:
    partner = form.get("partner", "")
    body = form.get("body", "")
    if not ID_PATTERN.fullmatch(partner) or not body.strip():
        return "invalid"

    data = json.dumps({"partner_id": int(partner)}).encode("utf-8")
    response = signed_call("POST", "/api/v1/conversations", user_id, [], data)
    notice = _notice_for(response, "sent")
    if notice != "sent":
        return notice

    conversation = response.get_json()["id"]
    query["view"] = "messages"
    query["conversation"] = str(conversation)
    path = f"/api/v1/conversations/{conversation}/messages"
    return _send_all([("POST", path, {"body": body})], user_id, "sent")


def _send_all(
    requests: list[tuple[str, str, dict[str, Any] | None]] | None,
    user_id: int,
    success: str,
) -> str:
    if requests is None:
        return "invalid"
    for method, path, body in requests:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        notice = _notice_for(signed_call(method, path, user_id, [], data), success)
        if notice != success:
            return notice
    return success


def _notice_for(response: TestResponse, success: str) -> str:
    if 200 <= response.status_code < 300:
        return success
    log.info(
        "preview form request failed with HTTP %s: %s",
        response.status_code,
        _error_text(response),
    )
    return "not_allowed" if response.status_code == 403 else "failed"


def return_query(text: str) -> dict[str, str]:
    """Keep the known parameters of a form's ``coachbridge_return`` value."""
    fields = dict(parse_qsl(text))
    query = {"action": "coaching"}
    if fields.get("view") in RETURN_VIEWS:
        query["view"] = fields["view"]
    for name in ("enrollment", "conversation"):
        if ID_PATTERN.fullmatch(fields.get(name, "")):
            query[name] = fields[name]
    for name in ("from", "to"):
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fields.get(name, "")):
            query[name] = fields[name]
    return query


def demo_users(runtime: Runtime) -> list[tuple[str, list[DemoUser]]]:
    """List administrators, coaches and some active clients of each program."""
    admin_ids = runtime.wordpress.administrator_ids()
    coaches, clients = runtime.db.run(_coaches_and_clients, "list preview users")
    names = _names(runtime, admin_ids + [user for user, _ in clients])

    groups = [
        (
            "Administrators",
            [DemoUser(user, names[user], "administrator") for user in admin_ids],
        ),
        (
            "Coaches",
            [DemoUser(user, name, "coach") for user, name in coaches],
        ),
        (
            "Clients",
            [DemoUser(user, names[user], title) for user, title in clients],
        ),
    ]
    return [(label, users) for label, users in groups if users]


def _coaches_and_clients(
    session: sa.orm.Session,
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    coaches = session.execute(
        sa.select(Coach.wp_user_id, Coach.display_name).order_by(Coach.display_name)
    ).all()
    clients: list[tuple[int, str]] = []
    for program_id, title in session.execute(
        sa.select(Program.id, Program.title).order_by(Program.title)
    ):
        users = session.scalars(
            sa.select(Enrollment.wp_user_id)
            .where(
                Enrollment.program_id == program_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
            .order_by(Enrollment.wp_user_id)
            .limit(CLIENTS_PER_PROGRAM)
        )
        clients += [(user, f"client in {title}") for user in users]
    return [tuple(row) for row in coaches], clients


def _names(runtime: Runtime, user_ids: list[int]) -> dict[int, str]:
    users = runtime.wordpress.users(user_ids)
    return {
        user_id: users[user_id].display_name if user_id in users else f"User {user_id}"
        for user_id in user_ids
    }


def page_links() -> list[tuple[str, str]]:
    """List the bridge pages that take no path argument, as (label, preview URL)."""
    links = []
    for rule in current_app.url_map.iter_rules():
        path = rule.rule
        if (
            not path.startswith("/pages/")
            or rule.arguments
            or "GET" not in rule.methods
        ):
            continue
        name = path.removeprefix("/pages/")
        if "." in name:
            # A file such as a stylesheet, not a page.
            continue
        label = "Coaching tab" if name == "client" else name.replace("/", " › ")
        links.append((label, url_for("preview.page", page=name)))
    return sorted(links, key=lambda link: (link[0] != "Coaching tab", link[0]))


def _acting_user(runtime: Runtime) -> DemoUser | None:
    user_id = _user_id(request.cookies.get(ACTING_COOKIE, ""))
    if user_id is None:
        return None
    return DemoUser(user_id, _names(runtime, [user_id])[user_id], "")


def _user_id(text: str) -> int | None:
    """Parse a WordPress user id; None unless it fits a signed BIGINT column."""
    if not ID_PATTERN.fullmatch(text) or int(text) > MAX_USER_ID:
        return None
    return int(text)


def _token() -> str:
    return current_app.extensions[TOKEN_EXTENSION]


def _require_token(value: str | None) -> None:
    if not value or not secrets.compare_digest(value, _token()):
        abort(403, description="invalid preview token: reload the page and try again")


def _script_settings() -> dict[str, str]:
    return {
        "proxyUrl": url_for("preview.proxy"),
        "nonce": _token(),
        "nonceHeader": TOKEN_HEADER,
        "savedMessage": "Saved.",
        "failedMessage": "Your change was not saved. Please try again.",
    }


def _error_text(response: TestResponse) -> str:
    try:
        error = response.get_json(silent=True)["error"]
        return f"HTTP {response.status_code}: {error['message']}"
    except (TypeError, KeyError):
        return f"HTTP {response.status_code}"
