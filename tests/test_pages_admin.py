"""Tests of the console pages under /pages/admin/ and /pages/coach.

The pages are fetched with signed requests as the plugin does. Form tests read
a rendered form and decode its fields the way PHP fills $_POST: names ending in
[] become lists, a repeated name keeps its last value, and unchecked boxes are
not sent. Then they post the fields to the forms endpoint, as the plugin's
handler does.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from markupsafe import escape

from bridge.app import create_app
from bridge.models import Cohort, Enrollment, EnrollmentStatus, Program
from tests.test_api_admin import SignedClient
from tests.test_console import (
    SCRIPT_NAME,
    TRICKY_NAME,
    ConsoleSite,
    build_console_site,
)

FORMS = "/pages/admin/forms"
FORM_QUERY = {
    "form_action": "https://site.example/wp-admin/admin-post.php",
    "form_nonce": "0123abcdef",
}


@pytest.fixture
def site(make_runtime, tmp_path) -> ConsoleSite:
    return build_console_site(make_runtime, tmp_path)


@pytest.fixture
def client(site) -> SignedClient:
    return SignedClient(create_app(runtime=site.runtime))


def page(http: SignedClient, path: str, user: int, **query) -> str:
    response = http.get(path, user, **query)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


class FormReader(HTMLParser):
    """Collect the fields of every POST form, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and attributes.get("method") == "post":
            self._form = {"action": attributes.get("action"), "fields": []}
        if self._form is None:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = attributes.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in attributes:
                return
            self._form["fields"].append((name, attributes.get("value", "")))
        elif tag == "select":
            self._select = name
            self._options = []
        elif tag == "option" and self._select:
            self._options.append(
                (attributes.get("value", ""), "selected" in attributes)
            )
        elif tag == "textarea":
            self._textarea = name
            self._text = []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._form is None:
            return
        if tag == "select" and self._select:
            chosen = [value for value, selected in self._options if selected]
            if chosen or self._options:
                value = chosen[-1] if chosen else self._options[0][0]
                self._form["fields"].append((self._select, value))
            self._select = None
        elif tag == "textarea" and self._textarea:
            self._form["fields"].append((self._textarea, "".join(self._text)))
            self._textarea = None
        elif tag == "form":
            self.forms.append(self._form)
            self._form = None


def read_forms(text: str) -> list[dict]:
    reader = FormReader()
    reader.feed(text)
    return reader.forms


def php_post(fields: list[tuple[str, str]]) -> dict:
    """Decode form fields as PHP fills $_POST."""
    decoded: dict = {}
    for name, value in fields:
        if name.endswith("[]"):
            decoded.setdefault(name[:-2], []).append(value)
        else:
            decoded[name] = value
    return decoded


def form_named(text: str, name: str, index: int = 0) -> dict:
    matches = [
        form
        for form in read_forms(text)
        if php_post(form["fields"]).get("coachbridge_form") == name
    ]
    assert len(matches) > index, f"no form {name} in the page"
    return php_post(matches[index]["fields"])


def submit(client: SignedClient, user: int, fields: dict):
    """Forward a form as the plugin does: without WordPress's own fields."""
    name = fields["coachbridge_form"]
    body = {
        key: value
        for key, value in fields.items()
        if key not in ("action", "_wpnonce", "coachbridge_form")
    }
    return client.call("POST", f"{FORMS}/{name}", user, body=body)


# Every page renders


@pytest.mark.parametrize(
    "path, query",
    [
        ("/pages/admin/activity", {}),
        ("/pages/admin/activity", {"view": "feed"}),
        ("/pages/admin/programs", {}),
        ("/pages/admin/programs", {"view": "new"}),
        ("/pages/admin/programs", {"program": "1"}),
        ("/pages/admin/coaches", {}),
        ("/pages/admin/coaches", {"q": "example"}),
        ("/pages/admin/coaches", {"coach": "1"}),
        ("/pages/admin/clients", {}),
        ("/pages/admin/clients", {"q": "o"}),
    ],
)
def test_admin_pages_render(site, client, path, query):
    text = page(client, path, site.admin, **query, **FORM_QUERY)
    assert text.startswith('<div class="coachbridge-console"')
    assert "<script" not in text


def test_client_page_renders(site, client):
    text = page(client, "/pages/admin/clients", site.admin, client=site.cleo)
    assert "Cleo Client" in text
    assert "Ana&#39;s, coach Ana Coach" in text
    assert "80%" in text
    assert "Milestone completed" in text


def test_stylesheet(site, client):
    response = client.get("/pages/admin/admin.css", site.admin)
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert "<" not in response.get_data(as_text=True)


def test_unknown_view_not_found(site, client):
    response = client.get("/pages/admin/activity", site.admin, view="secret")
    assert response.status_code == 404


def test_invalid_filter_rejected(site, client):
    response = client.get("/pages/admin/activity", site.admin, per_page="500")
    assert response.status_code == 400
    assert "per_page 500" in response.json["error"]["message"]


# Escaping


def test_names_escaped_in_progress(site, client):
    text = page(client, "/pages/admin/activity", site.admin, status="all")
    assert SCRIPT_NAME not in text
    assert str(escape(SCRIPT_NAME)) in text
    assert str(escape(TRICKY_NAME)) in text


def test_names_escaped_in_feed_and_clients(site, client):
    feed = page(client, "/pages/admin/activity", site.admin, view="feed")
    clients = page(client, "/pages/admin/clients", site.admin)
    detail = page(client, "/pages/admin/clients", site.admin, client=site.mallory)
    coach = page(client, "/pages/admin/coaches", site.admin, coach=site.coach_ben_id)
    for text in (feed, clients, detail, coach):
        assert "<script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Mallory" in text


def test_program_title_escaped(site, client):
    with site.runtime.db.session() as session:
        session.get(Program, site.sleep).title = '<img src=x onerror="alert(1)">'
    text = page(client, "/pages/admin/programs", site.admin)
    assert "<img" not in text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text


def test_search_text_escaped(site, client):
    text = page(client, "/pages/admin/clients", site.admin, q='"><b>x')
    assert '"><b>x' not in text
    assert "&#34;&gt;&lt;b&gt;x" in text


# Client progress and feed


def test_progress_filters_and_sort(site, client):
    text = page(
        client,
        "/pages/admin/activity",
        site.admin,
        coach=site.coach_ben_id,
        sort="name",
    )
    assert "Ben&#39;s" in text
    assert "Cleo Client" not in text
    assert text.index("&lt;script&gt;") < text.index("Zoë")
    assert '<option value="name" selected>' in text


def test_progress_pagination_links(site, client):
    text = page(
        client, "/pages/admin/activity", site.admin, per_page="2", program=site.strength
    )
    assert "Page 1 of 2" in text
    assert (
        f"?page=coachbridge&amp;paged=2&amp;program={site.strength}&amp;per_page=2"
        in text
    )
    second = page(client, "/pages/admin/activity", site.admin, per_page="2", paged="2")
    assert "Page 2 of 2" in second
    assert "‹ Previous" in second


def test_feed_filters(site, client):
    text = page(
        client,
        "/pages/admin/activity",
        site.admin,
        view="feed",
        type="off_track",
        **{"from": "2026-02-01", "to": "2026-02-28"},
    )
    assert text.count('<tr class="coachbridge-activity-') == 1
    assert "coachbridge-activity-off_track" in text
    assert '<option value="off_track" selected>' in text
    assert 'value="2026-02-01"' in text


def test_feed_pagination_links(site, client):
    text = page(client, "/pages/admin/activity", site.admin, view="feed", per_page="4")
    assert "?page=coachbridge&amp;paged=2&amp;view=feed&amp;per_page=4" in text


def test_export_form_carries_filters(site, client):
    text = page(
        client,
        "/pages/admin/activity",
        site.admin,
        program=site.strength,
        q="cleo",
        **FORM_QUERY,
    )
    fields = form_named(text, "export-progress")
    assert fields["program"] == str(site.strength)
    assert fields["q"] == "cleo"
    assert fields["_wpnonce"] == "0123abcdef"
    assert fields["action"] == "coachbridge_admin_action"


# Forms


def test_forms_need_plugin_target(site, client):
    without = page(client, "/pages/admin/programs", site.admin, program=site.sleep)
    assert read_forms(without) == []
    bad = page(
        client,
        "/pages/admin/programs",
        site.admin,
        program=site.sleep,
        form_action="javascript:alert(1)",
        form_nonce="0123abcdef",
    )
    assert read_forms(bad) == []
    forms = read_forms(
        page(
            client,
            "/pages/admin/programs",
            site.admin,
            program=site.sleep,
            **FORM_QUERY,
        )
    )
    assert forms
    assert {form["action"] for form in forms} == {FORM_QUERY["form_action"]}


def test_locked_program_page_says_so(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.strength, **FORM_QUERY
    )
    assert "coachbridge-locked" in text
    assert "are locked because it has 5 enrollments" in text
    fields = form_named(text, "program-update")
    assert "content" not in fields
    assert "milestone_title" not in fields
    assert "cannot be deleted" in text
    assert not any(
        php_post(form["fields"]).get("coachbridge_form") == "program-delete"
        for form in read_forms(text)
    )


def test_program_form_round_trip(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.sleep, **FORM_QUERY
    )
    assert "coachbridge-locked" not in text
    fields = form_named(text, "program-update")
    assert fields["content"] == "1"
    fields["title"] = "Sleep better"
    fields["milestone_title"][0] = "Bed by ten"
    fields["milestone_due"][0] = "1 week"
    fields["habit_title"][0] = "No screens"
    fields["habit_schedule"][0] = "interval"
    fields["habit_every_days"][0] = "2"
    fields["habit_length"][0] = "3 weeks"
    fields["memberships"].append(str(site.membership))

    response = submit(client, site.admin, fields)
    assert response.status_code == 200, response.json
    with site.runtime.db.session() as session:
        program = session.get(Program, site.sleep)
        assert program.title == "Sleep better"
        assert [m.title for m in program.milestones] == ["Bed by ten"]
        assert program.habits[0].interval_days == 2
        assert [m.membership_id for m in program.memberships] == [site.membership]

    again = page(
        client, "/pages/admin/programs", site.admin, program=site.sleep, **FORM_QUERY
    )
    saved = form_named(again, "program-update")
    assert saved["milestone_title"][0] == "Bed by ten"
    assert saved["milestone_due"][0] == "1 week"
    assert saved["habit_length"][0] == "3 weeks"
    # Saving the page unchanged keeps everything.
    assert submit(client, site.admin, saved).status_code == 200


def test_locked_program_form_saves_settings(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.strength, **FORM_QUERY
    )
    fields = form_named(text, "program-update")
    fields["title"] = "Strength, renewed"
    response = submit(client, site.admin, fields)
    assert response.status_code == 200
    with site.runtime.db.session() as session:
        assert session.get(Program, site.strength).title == "Strength, renewed"


def test_new_program_form_round_trip(site, client):
    text = page(client, "/pages/admin/programs", site.admin, view="new", **FORM_QUERY)
    fields = form_named(text, "program-create")
    fields["slug"] = "focus"
    fields["title"] = "Focus"
    fields["milestone_title"][0] = "One deep hour"
    fields["milestone_due"][0] = "2 days"
    response = submit(client, site.admin, fields)
    assert response.status_code == 200, response.json
    assert response.json["return_query"]["page"] == "coachbridge-programs"


def test_cohort_form_round_trip(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.strength, **FORM_QUERY
    )
    fields = form_named(text, "cohort-update")
    assert fields["cohort_id"] == str(site.cohort_ana)
    assert fields["coach"] == str(site.coach_ana)
    assert fields["open"] == "1"
    fields["capacity"] = "7"
    fields["appointments"] = "1"
    fields["booking_url"] = "https://calendar.example.org/ana"
    assert submit(client, site.admin, fields).status_code == 200
    with site.runtime.db.session() as session:
        cohort = session.get(Cohort, site.cohort_ana)
        assert cohort.capacity == 7
        assert cohort.appointments_enabled is True
        assert cohort.booking_url == "https://calendar.example.org/ana"


def test_cohort_form_rejects_bad_url(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.strength, **FORM_QUERY
    )
    fields = form_named(text, "cohort-update")
    fields["appointments"] = "1"
    fields["booking_url"] = "javascript:alert(1)"
    response = submit(client, site.admin, fields)
    assert response.status_code == 400
    assert "booking_url" in response.json["error"]["message"]


def test_new_cohort_form(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.sleep, **FORM_QUERY
    )
    fields = form_named(text, "cohort-create")
    fields["name"] = "Larks"
    fields["coach"] = str(site.coach_ben)
    response = submit(client, site.admin, fields)
    assert response.status_code == 200
    assert response.json["message"] == "Cohort 'Larks' added."


def test_client_forms(site, client):
    text = page(
        client, "/pages/admin/clients", site.admin, client=site.dan, **FORM_QUERY
    )
    move = form_named(text, "client-assign")
    options = [value for value in (move["cohort_id"],)]
    assert options == [str(site.cohort_ben)]
    response = submit(client, site.admin, move)
    assert response.status_code == 200
    assert response.json["message"] == "Moved to cohort Ben's of Strength 💪."

    again = page(
        client, "/pages/admin/clients", site.admin, client=site.dan, **FORM_QUERY
    )
    unenroll = form_named(again, "client-unenroll")
    assert submit(client, site.admin, unenroll).status_code == 200
    with site.runtime.db.session() as session:
        enrollment = session.get(Enrollment, site.enrollment_dan)
        assert enrollment.status is EnrollmentStatus.INACTIVE
        assert enrollment.cohort_id == site.cohort_ben


def test_add_client_form(site, client):
    text = page(
        client, "/pages/admin/clients", site.admin, client=site.nobody, **FORM_QUERY
    )
    assert "Not enrolled in any program." in text
    assert '<optgroup label="Sleep">' in text
    fields = form_named(text, "client-add")
    fields["cohort_id"] = str(site.sleep_cohort)
    response = submit(client, site.admin, fields)
    assert response.status_code == 200
    assert response.json["message"] == "Added to Sleep, cohort Sleepers."


def test_add_client_form_full_cohort(site, client):
    with site.runtime.db.session() as session:
        session.get(Cohort, site.cohort_ana).capacity = 2
    text = page(
        client, "/pages/admin/clients", site.admin, client=site.nobody, **FORM_QUERY
    )
    assert "Ana&#39;s (Ana Coach, 2 of 2, full)" in text
    fields = form_named(text, "client-add")
    fields["cohort_id"] = str(site.cohort_ana)
    response = submit(client, site.admin, fields)
    assert response.status_code == 409


def test_coach_forms(site, client):
    text = page(client, "/pages/admin/coaches", site.admin, q="sam", **FORM_QUERY)
    fields = form_named(text, "coach-add")
    assert fields["wp_user_id"] == str(site.stranger)
    response = submit(client, site.admin, fields)
    assert response.status_code == 200
    assert response.json["message"] == "Sam Stranger registered as a coach."
    assert form_named(text, "coach-new-user")["user_login"] == ""

    coach_page = page(
        client,
        "/pages/admin/coaches",
        site.admin,
        coach=site.coach_ana_id,
        **FORM_QUERY,
    )
    assign = form_named(coach_page, "cohort-coach")
    assert assign["coach"] == str(site.coach_ana)
    assert submit(client, site.admin, assign).status_code == 200
    with site.runtime.db.session() as session:
        cohort = session.get(Cohort, int(assign["cohort_id"]))
        assert cohort.coach_id == site.coach_ana_id


def test_duplicate_and_delete_forms(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.strength, **FORM_QUERY
    )
    duplicate = form_named(text, "program-duplicate")
    duplicate["slug"] = "strength-copy"
    response = submit(client, site.admin, duplicate)
    assert response.status_code == 200
    copy_id = int(response.json["return_query"]["program"])

    copy = page(
        client, "/pages/admin/programs", site.admin, program=copy_id, **FORM_QUERY
    )
    delete = form_named(copy, "program-delete")
    assert submit(client, site.admin, delete).status_code == 200
    with site.runtime.db.session() as session:
        assert (
            session.scalar(sa.select(Program).where(Program.slug == "strength-copy"))
            is None
        )


def test_user_edit_link(site, client):
    default = page(client, "/pages/admin/clients", site.admin, client=site.cleo)
    assert f'href="user-edit.php?user_id={site.cleo}"' in default
    given = page(
        client,
        "/pages/admin/clients",
        site.admin,
        client=site.cleo,
        user_edit_url="https://site.example/wp-admin/user-edit.php",
    )
    assert (
        f'href="https://site.example/wp-admin/user-edit.php?user_id={site.cleo}"'
        in given
    )
    rejected = page(
        client,
        "/pages/admin/clients",
        site.admin,
        client=site.cleo,
        user_edit_url="javascript:alert(1)",
    )
    assert "javascript:" not in rejected


# Coaches' view


def test_coach_home(site, client):
    text = page(client, "/pages/coach", site.coach_ana, **FORM_QUERY)
    assert "Ana Coach" in text
    assert "Cleo Client" in text
    assert "?page=coachbridge-coach&amp;section=clients" in text
    assert read_forms(text) == []


def test_coach_home_not_a_coach(site, client):
    assert client.get("/pages/coach", site.admin).status_code == 404
    assert client.get("/pages/coach", site.cleo).status_code == 404


def test_coach_sees_own_clients_only(site, client):
    text = page(
        client, "/pages/admin/activity", site.coach_ana, status="all", **FORM_QUERY
    )
    assert "Cleo Client" in text
    assert "dan lowercase" in text
    assert "Mallory" not in text
    assert "Zoë" not in text
    assert read_forms(text) == []
    assert "?page=coachbridge-coach&amp;section=clients&amp;client=" in text
    assert 'name="section" value="activity"' in text


def test_coach_other_clients_not_found(site, client):
    response = client.get("/pages/admin/clients", site.coach_ana, client=site.zoe)
    assert response.status_code == 404
    own = page(
        client, "/pages/admin/clients", site.coach_ana, client=site.cleo, **FORM_QUERY
    )
    assert read_forms(own) == []
    assert "Edit in WordPress" not in own


def test_coach_program_pages(site, client):
    new = client.get("/pages/admin/programs", site.coach_ana, view="new", **FORM_QUERY)
    assert new.status_code == 403
    hidden = client.get("/pages/admin/programs", site.coach_ben, program=site.sleep)
    assert hidden.status_code == 404
    text = page(
        client,
        "/pages/admin/programs",
        site.coach_ana,
        program=site.strength,
        **FORM_QUERY,
    )
    assert read_forms(text) == []
    assert "Ana&#39;s" in text
    assert "Ben&#39;s" not in text


def test_coach_forms_forbidden(site, client):
    text = page(
        client, "/pages/admin/programs", site.admin, program=site.sleep, **FORM_QUERY
    )
    fields = form_named(text, "program-update")
    response = submit(client, site.coach_ana, fields)
    assert response.status_code == 403


def test_coach_other_coach_page_not_found(site, client):
    response = client.get(
        "/pages/admin/coaches", site.coach_ana, coach=site.coach_ben_id
    )
    assert response.status_code == 404
    listed = page(client, "/pages/admin/coaches", site.coach_ana)
    assert "Ben Coach" not in listed


def test_client_user_gets_not_found(site, client):
    for path in (
        "/pages/admin/activity",
        "/pages/admin/programs",
        "/pages/admin/clients",
    ):
        assert client.get(path, site.cleo).status_code == 404


# Forms posted directly, as the plugin forwards them


def test_form_creates_program(site, client):
    fields = {
        "slug": "breathing",
        "title": "Breathing",
        "description": "Slow down",
        "messaging_enabled": "1",
        "memberships": ["", str(site.membership)],
        "milestone_title": ["Box breathing", ""],
        "milestone_description": ["", ""],
        "milestone_due": ["3 days", ""],
        "habit_title": ["Breathe", ""],
        "habit_description": ["", ""],
        "habit_schedule": ["weekdays", "daily"],
        "habit_weekdays": ["mon, fri", ""],
        "habit_every_days": ["", ""],
        "habit_start_offset_days": ["0", "0"],
        "habit_length": ["4 weeks", ""],
    }
    response = client.call("POST", f"{FORMS}/program-create", site.admin, body=fields)
    assert response.status_code == 200
    assert response.json["message"] == "Program 'Breathing' created."
    with site.runtime.db.session() as session:
        program = session.scalar(sa.select(Program).where(Program.slug == "breathing"))
        assert [m.title for m in program.milestones] == ["Box breathing"]
        assert program.habits[0].weekdays == 0b10001
        assert [m.membership_id for m in program.memberships] == [site.membership]
    assert response.json["return_query"] == {
        "page": "coachbridge-programs",
        "program": str(program.id),
    }


def test_form_errors(site, client):
    unknown = client.call("POST", f"{FORMS}/launch-rocket", site.admin, body={})
    assert unknown.status_code == 404
    coach = client.call(
        "POST",
        f"{FORMS}/client-unenroll",
        site.coach_ana,
        body={"enrollment_id": str(site.enrollment_cleo)},
    )
    assert coach.status_code == 403
    typed = client.call(
        "POST", f"{FORMS}/client-unenroll", site.admin, body={"enrollment_id": 5}
    )
    assert typed.status_code == 400
    bad_number = client.call(
        "POST",
        f"{FORMS}/cohort-update",
        site.admin,
        body={"cohort_id": str(site.cohort_ana), "capacity": "ten", "name": "A"},
    )
    assert bad_number.status_code == 400
    assert "invalid capacity 'ten'" in bad_number.json["error"]["message"]


def test_form_locked_program_409(site, client):
    fields = {
        "program_id": str(site.strength),
        "title": "Strength",
        "messaging_enabled": "1",
        "content": "1",
        "milestone_title": ["Only one"],
        "milestone_due": ["1 week"],
    }
    response = client.call("POST", f"{FORMS}/program-update", site.admin, body=fields)
    assert response.status_code == 409
    assert "locked" in response.json["error"]["message"]


def test_form_unenroll_reports_membership(site, client):
    site.wordpress.add_transaction(site.cleo, site.membership)
    response = client.call(
        "POST",
        f"{FORMS}/client-unenroll",
        site.admin,
        body={"enrollment_id": str(site.enrollment_cleo)},
    )
    assert response.status_code == 200
    assert "still grants this program" in response.json["message"]
    assert response.json["return_query"] == {
        "page": "coachbridge-clients",
        "client": str(site.cleo),
    }


def test_form_cohort_create_and_assign(site, client):
    created = client.call(
        "POST",
        f"{FORMS}/cohort-create",
        site.admin,
        body={
            "program_id": str(site.sleep),
            "name": "Night owls",
            "type": "rolling",
            "start_date": "",
            "coach": str(site.coach_ben),
            "capacity": "",
            "open": "1",
            "appointments": "0",
            "booking_url": "",
        },
    )
    assert created.status_code == 200
    with site.runtime.db.session() as session:
        cohort = session.scalar(sa.select(Cohort).where(Cohort.name == "Night owls"))
        assert cohort.capacity is None
        assert cohort.is_open is True
    moved = client.call(
        "POST",
        f"{FORMS}/cohort-coach",
        site.admin,
        body={
            "cohort_id": str(cohort.id),
            "coach": str(site.coach_ana),
            "coach_id": str(site.coach_ana_id),
        },
    )
    assert moved.status_code == 200
    assert moved.json["return_query"] == {
        "page": "coachbridge-coaches",
        "coach": str(site.coach_ana_id),
    }
