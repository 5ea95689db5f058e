"""Tests of the Coaching tab page: views, escaping, labels and forms."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest

from bridge.models import Enrollment, Program
from tests.test_api_client import TODAY, add_ticks, build_client_site

FORM_ACTION = (
    "https://site.example/wp-admin/admin-post.php?action=coachbridge_client_action"
)
FORM_NONCE = "a1b2c3d4e5"


class PageParser(HTMLParser):
    """Collect the tags of a page, with attributes, and the label targets."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.label_targets: set[str] = set()

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label" and attributes.get("for"):
            self.label_targets.add(attributes["for"])

    def find(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        """Return the attributes of the tags with these attribute values."""
        return [
            attributes
            for name, attributes in self.tags
            if name == tag
            and all(attributes.get(key) == value for key, value in wanted.items())
        ]


def _parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


@pytest.fixture
def site(make_runtime, tmp_path):
    return build_client_site(make_runtime, tmp_path)


def _page(site, user: int, **query: str):
    return site.call("GET", "/pages/client", user, query=query)


def _html(site, user: int, **query: str) -> str:
    response = _page(site, user, **query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _program_query(site, **extra: str) -> dict[str, str]:
    return {"view": "program", "enrollment": str(site.cleo_strength), **extra}


def _with_form(**query: str) -> dict[str, str]:
    return {**query, "form_action": FORM_ACTION, "form_nonce": FORM_NONCE}


def _checkboxes(parser: PageParser) -> list[dict[str, str | None]]:
    return parser.find("input", type="checkbox")


# The enrollments view.


def test_enrollments_view_is_fragment(site):
    response = _page(site, site.cleo)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "<body" not in html
    assert html.lstrip().startswith('<div class="coachbridge coachbridge-client"')


def test_enrollments_view_rows(site):
    add_ticks(site, site.cleo_strength, milestones=[site.milestone_first])
    html = _html(site, site.cleo)
    parser = _parse(html)
    assert "Strength" in html
    assert "Sleep better" in html
    assert "Monday 2 March 2026" in html
    assert "Ana Coach" in html
    assert parser.find("progress", value="25")
    assert "Milestones: 1 of 2 done" in html
    assert "First push-up" in html
    assert "First pull-up, due" in html
    assert parser.find(
        "a", href=f"?action=coaching&view=program&enrollment={site.cleo_strength}"
    )


def test_future_start_says_starts(site):
    with site.runtime.db.session() as session:
        enrollment = session.get_one(Enrollment, site.cleo_strength)
        enrollment.start_date = TODAY + dt.timedelta(days=5)

    listing = _html(site, site.cleo)
    program = _html(site, site.cleo, **_program_query(site))

    assert "<dt>Starts</dt>" in listing
    assert "<dt>Started</dt>" in listing
    assert "This program starts on" in program
    assert 'datetime="2026-03-21"' in program


def test_booking_link_opens_new_tab(site):
    parser = _parse(_html(site, site.cleo))
    links = parser.find("a", **{"class": "coachbridge-book"})
    assert len(links) == 1
    assert links[0]["target"] == "_blank"
    assert links[0]["rel"] == "noopener"
    assert links[0]["href"].startswith("https://calendly.com/ana-coach/30min?")


def test_no_booking_link_without_appointments(site):
    parser = _parse(_html(site, site.eve))
    assert parser.find("a", **{"class": "coachbridge-book"}) == []


def test_enrollments_view_empty(site):
    html = _html(site, site.outsider)
    assert "not enrolled in a coaching program yet" in html


def test_off_track_badge(site):
    html = _html(site, site.cleo)
    assert "coachbridge-badge-off-track" in html


# Escaping.


def test_names_escaped(site):
    conversation = site.call(
        "POST", "/api/v1/conversations", site.coach_ana, {"partner_id": site.cleo}
    ).get_json()["id"]
    html = _html(site, site.coach_ana, view="messages", conversation=str(conversation))
    assert "<script>alert(1)</script>" not in html
    assert "Cleo &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_message_body_escaped(site):
    conversation = site.call(
        "POST", "/api/v1/conversations", site.cleo, {"partner_id": site.dan}
    ).get_json()["id"]
    body = '<img src=x onerror="alert(1)">\nsecond line'
    site.call(
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        site.cleo,
        {"body": body},
    )
    for view in ({}, {"conversation": str(conversation)}):
        html = _html(site, site.dan, view="messages", **view)
        assert "<img" not in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_program_title_escaped(site):
    with site.runtime.db.session() as session:
        session.get(Program, site.strength).title = "<b>Strong</b> & fast"
    for query in ({}, _program_query(site)):
        html = _html(site, site.cleo, **query)
        assert "<b>Strong</b>" not in html
        assert "&lt;b&gt;Strong&lt;/b&gt; &amp; fast" in html


def test_form_action_escaped(site):
    query = _program_query(
        site,
        form_action='https://site.example/?a="><script>x</script>',
        form_nonce=FORM_NONCE,
    )
    html = _html(site, site.cleo, **query)
    assert "<script>" not in html
    assert (
        'action="https://site.example/?a=&#34;&gt;&lt;script&gt;x&lt;/script&gt;"'
        in html
    )


# The program view.


def test_every_checkbox_labelled(site):
    for query in (_program_query(site), _with_form(**_program_query(site))):
        parser = _parse(_html(site, site.cleo, **query))
        boxes = _checkboxes(parser)
        assert len(boxes) == 2 + 14 + 6
        for box in boxes:
            assert box["id"] in parser.label_targets, box["id"]


def test_habit_labels_name_date(site):
    html = _html(site, site.cleo, **_program_query(site))
    box = f"coachbridge-habit-{site.habit_walk}-2026-03-16"
    label = f'<label for="{box}" class="screen-reader-text">'
    assert f"{label}Walk, Monday 16 March 2026</label>" in html
    milestone = f"coachbridge-milestone-{site.milestone_first}"
    assert f'<label for="{milestone}">First push-up</label>' in html


def test_program_view_status_region(site):
    parser = _parse(_html(site, site.cleo, **_with_form(**_program_query(site))))
    regions = [tags for tags in parser.find("p") if tags.get("aria-live") == "polite"]
    assert len(regions) == 2


def test_program_view_ticks_shown(site):
    add_ticks(
        site,
        site.cleo_strength,
        milestones=[site.milestone_first],
        habits=[(site.habit_walk, site.runtime.today())],
    )
    parser = _parse(_html(site, site.cleo, **_program_query(site)))
    milestone = parser.find("input", id=f"coachbridge-milestone-{site.milestone_first}")
    assert "checked" in milestone[0]
    today = parser.find("input", id=f"coachbridge-habit-{site.habit_walk}-2026-03-16")
    assert "checked" in today[0]
    assert today[0]["data-coachbridge-path"] == (
        f"/api/v1/enrollments/{site.cleo_strength}/habits/{site.habit_walk}"
        "/ticks/2026-03-16"
    )


def test_future_dates_disabled(site):
    query = _program_query(site, **{"from": "2026-03-10", "to": "2026-03-23"})
    parser = _parse(_html(site, site.cleo, **query))
    future = parser.find("input", id=f"coachbridge-habit-{site.habit_walk}-2026-03-17")
    assert "disabled" in future[0]
    assert "data-coachbridge-path" not in future[0]
    past = parser.find("input", id=f"coachbridge-habit-{site.habit_walk}-2026-03-10")
    assert "disabled" not in past[0]


def test_window_links(site):
    parser = _parse(_html(site, site.cleo, **_program_query(site)))
    enrollment = site.cleo_strength
    assert parser.find(
        "a",
        href=f"?action=coaching&view=program&enrollment={enrollment}"
        "&from=2026-02-17&to=2026-03-02",
    )
    assert parser.find(
        "a",
        href=f"?action=coaching&view=program&enrollment={enrollment}"
        "&from=2026-03-17&to=2026-03-30",
    )


def test_bad_window_falls_back(site):
    html = _html(site, site.cleo, **_program_query(site, **{"from": "soon"}))
    assert "Tuesday 3 March 2026 to Monday 16 March 2026" in html


def test_plain_form_fields(site):
    add_ticks(
        site,
        site.cleo_strength,
        milestones=[site.milestone_first],
        habits=[(site.habit_walk, site.runtime.today())],
    )
    parser = _parse(_html(site, site.cleo, **_with_form(**_program_query(site))))
    forms = parser.find("form", method="post")
    assert [form["action"] for form in forms] == [FORM_ACTION]
    assert parser.find("input", type="hidden", name="_wpnonce", value=FORM_NONCE)
    assert parser.find(
        "input", type="hidden", name="coachbridge_do", value="save_ticks"
    )
    assert parser.find(
        "input",
        type="hidden",
        name="coachbridge_return",
        value=f"view=program&enrollment={site.cleo_strength}",
    )
    assert parser.find(
        "input", type="hidden", name="milestone_was[]", value=str(site.milestone_first)
    )
    assert parser.find(
        "input",
        type="hidden",
        name="habit_was[]",
        value=f"{site.habit_walk}/2026-03-16",
    )
    assert parser.find("button", type="submit")


def test_no_form_without_action(site):
    for query in (
        _program_query(site),
        _program_query(site, form_action="javascript:alert(1)", form_nonce=FORM_NONCE),
        _program_query(site, form_action=FORM_ACTION, form_nonce="bad nonce!"),
    ):
        parser = _parse(_html(site, site.cleo, **query))
        assert parser.find("form") == []
        assert all(box.get("data-coachbridge-path") for box in _checkboxes(parser))


def test_program_view_by_program_id(site):
    html = _html(site, site.cleo, view="program", program=str(site.sleep))
    assert "Bed by ten" in html


def test_other_clients_program_not_found(site):
    response = _page(site, site.cleo, view="program", enrollment=str(site.dan_strength))
    assert response.status_code == 404
    response = _page(site, site.eve, view="program", program=str(site.strength))
    assert response.status_code == 404
    for program in ("9999999999999999999", "x", "0"):
        response = _page(site, site.cleo, view="program", program=program)
        assert response.status_code == 404, program


def test_coach_sees_read_only_program(site):
    query = _with_form(view="program", enrollment=str(site.dan_strength))
    parser = _parse(_html(site, site.coach_ana, **query))
    assert parser.find("form") == []
    boxes = _checkboxes(parser)
    assert boxes
    assert all("disabled" in box for box in boxes)
    assert not any(box.get("data-coachbridge-path") for box in boxes)


def test_moved_client_hidden_from_old_coach(site):
    site.move(site.dan_strength, site.cohort_ben)
    query = {"view": "program", "enrollment": str(site.dan_strength)}
    assert _page(site, site.coach_ana, **query).status_code == 404


def test_inactive_program_hidden_from_client(site):
    link = f"enrollment={site.cleo_strength}"
    assert link in _html(site, site.cleo, view="enrollments")
    site.deactivate(site.cleo_strength)
    response = _page(site, site.cleo, **_with_form(**_program_query(site)))
    assert response.status_code == 404
    assert link not in _html(site, site.cleo, view="enrollments")


# The messages view.


def test_messages_view_forms(site):
    conversation = site.call(
        "POST", "/api/v1/conversations", site.cleo, {"partner_id": site.coach_ana}
    ).get_json()["id"]
    query = _with_form(view="messages", conversation=str(conversation))
    parser = _parse(_html(site, site.cleo, **query))

    reply = parser.find("form", **{"class": "coachbridge-reply"})[0]
    assert (
        reply["data-coachbridge-path"]
        == f"/api/v1/conversations/{conversation}/messages"
    )
    assert reply["data-coachbridge-fields"] == "body"
    assert parser.find("input", name="coachbridge_do", value="send_message")
    assert parser.find("input", name="coachbridge_do", value="start_conversation")
    assert parser.find("textarea", id="coachbridge-reply-body", maxlength="5000")
    options = [tag.get("value") for tag in parser.find("option")]
    assert options == ["", str(site.coach_ana), str(site.dan), str(site.fay)]
    for field in (
        "coachbridge-reply-body",
        "coachbridge-partner",
        "coachbridge-new-body",
    ):
        assert field in parser.label_targets


def test_messages_view_marks_read(site):
    conversation = site.call(
        "POST", "/api/v1/conversations", site.cleo, {"partner_id": site.coach_ana}
    ).get_json()["id"]
    site.call(
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        site.cleo,
        {"body": "hi"},
    )
    assert "1 unread" in _html(site, site.coach_ana, view="messages")
    html = _html(site, site.coach_ana, view="messages", conversation=str(conversation))
    assert "unread" not in html


def test_messages_view_without_partners(site):
    html = _html(site, site.eve, view="messages")
    assert "There is nobody you can message yet" in html
    assert "No conversations yet." in html


def test_other_conversation_not_found(site):
    conversation = site.call(
        "POST", "/api/v1/conversations", site.cleo, {"partner_id": site.coach_ana}
    ).get_json()["id"]
    response = _page(site, site.dan, view="messages", conversation=str(conversation))
    assert response.status_code == 404
    response = _page(site, site.dan, view="messages", conversation="x")
    assert response.status_code == 404


# Requests.


def test_unknown_view_not_found(site):
    assert _page(site, site.cleo, view="calendar").status_code == 404


def test_page_needs_signature(site):
    assert site.client.get("/pages/client").status_code == 401
