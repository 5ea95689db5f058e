"""Tests of the demo preview: registration, acting as a user, forms and proxy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge import demo, scheduler
from bridge.app import create_app
from bridge.cli import cli
from bridge.models import HabitTick, Message, MilestoneTick
from bridge.preview import (
    ACTING_COOKIE,
    TOKEN_EXTENSION,
    TOKEN_HEADER,
    is_allowed,
    register_preview,
)
from tests.test_api_client import build_client_site

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(make_runtime, tmp_path):
    site = build_client_site(make_runtime, tmp_path)
    site.runtime.config = site.runtime.config.model_copy(update={"demo": True})
    site.app = create_app(runtime=site.runtime)
    register_preview(site.app)
    return site


@pytest.fixture
def browser(site):
    return site.app.test_client()


def _token(site) -> str:
    return site.app.extensions[TOKEN_EXTENSION]


def _act_as(site, browser, user: int) -> None:
    response = browser.post("/preview/act", data={"token": _token(site), "user": user})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/preview/pages/client")


def _count(site, model) -> int:
    with site.runtime.db.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


# Registration.


def test_not_registered_outside_demo(make_runtime):
    app = create_app(runtime=make_runtime())
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/preview")]
    assert app.test_client().get("/preview").status_code == 404


def test_register_needs_demo(make_runtime):
    app = create_app(runtime=make_runtime())
    with pytest.raises(RuntimeError, match="coachbridge demo"):
        register_preview(app)


def test_demo_once_promises_no_server(tmp_path):
    result = CliRunner().invoke(
        cli, ["demo", "--once", "--port", "0", "--dir", str(tmp_path / "demo")]
    )
    assert result.exit_code == 0, result.output
    assert "serving on" not in result.output
    assert "preview:" not in result.output


def test_demo_server_prints_preview_url(make_runtime, monkeypatch, capsys):
    class Scheduler:
        stopped = False

        def shutdown(self) -> None:
            Scheduler.stopped = True

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(scheduler, "start_scheduler", lambda runtime: Scheduler())
    monkeypatch.setattr(demo.time, "sleep", interrupt)
    demo.serve_until_stopped(make_runtime(), "http://127.0.0.1:8765")

    output = capsys.readouterr().out
    assert "serving on http://127.0.0.1:8765 " in output
    assert re.search(r"preview: http://127\.0\.0\.1:8765/preview ", output)
    assert Scheduler.stopped


def test_loopback_only(site):
    browser = site.app.test_client()
    response = browser.get("/preview", environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert response.status_code == 403


# Picking a user and showing pages.


def test_picker_lists_users(site, browser):
    html = browser.get("/preview").get_data(as_text=True)
    assert "Administrators" in html
    assert "Site Admin" in html
    assert "Ana Coach" in html
    assert "client in Strength" in html
    assert "Cleo &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_page_without_user_redirects(browser):
    response = browser.get("/preview/pages/client")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/preview")


def test_act_rejects_bad_token(site, browser):
    response = browser.post("/preview/act", data={"token": "x", "user": site.cleo})
    assert response.status_code == 403


@pytest.mark.parametrize("user", ["-1", "9223372036854775808", "9999999999999999999"])
def test_act_rejects_bad_user(site, browser, user):
    response = browser.post(
        "/preview/act",
        data={"token": _token(site), "user": "other", "other_user": user},
    )
    assert response.status_code == 400
    assert b"expected a number from 1 to 9223372036854775807" in response.data


def test_act_accepts_largest_user_id(site, browser):
    response = browser.post(
        "/preview/act",
        data={"token": _token(site), "user": "other", "other_user": str(2**63 - 1)},
    )
    assert response.status_code == 302
    page = browser.get("/preview/pages/client")
    assert page.status_code == 200


def test_client_page_standalone(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.get("/preview/pages/client")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert "acting as Cleo &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "My coaching programs" in html
    assert "/static/coachbridge.css" in html
    assert "/static/coachbridge.js" in html
    settings = re.search(r"data-coachbridge-settings='([^']*)'", html)
    assert settings is not None
    assert '"proxyUrl": "/preview/proxy"' in settings.group(1)
    assert f'"nonceHeader": "{TOKEN_HEADER}"' in settings.group(1)


def test_program_page_forms_post_to_preview(site, browser):
    _act_as(site, browser, site.cleo)
    html = browser.get(
        f"/preview/pages/client?view=program&enrollment={site.cleo_strength}"
    ).get_data(as_text=True)
    assert 'action="/preview/action"' in html
    assert f'name="_wpnonce" value="{_token(site)}"' in html


def test_console_page_read_only_without_warning(site, browser, caplog):
    _act_as(site, browser, site.admin)
    response = browser.get("/preview/pages/admin/programs")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "bridge did not return this page" not in html
    assert "Strength" in html
    assert 'method="post"' not in html
    assert "invalid form_action" not in caplog.text


def test_other_users_page_shows_error(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.get(
        f"/preview/pages/client?view=program&enrollment={site.dan_strength}"
    )
    assert response.status_code == 200
    assert "bridge did not return this page: HTTP 404" in response.get_data(
        as_text=True
    )


def test_act_as_any_user_id(site, browser):
    response = browser.post(
        "/preview/act",
        data={"token": _token(site), "user": "other", "other_user": str(site.dan)},
    )
    assert response.status_code == 302
    assert browser.get_cookie(ACTING_COOKIE, path="/preview").value == str(site.dan)


# Forms and the proxy.


def test_form_saves_ticks(site, browser):
    _act_as(site, browser, site.cleo)
    today = site.runtime.today().isoformat()
    response = browser.post(
        "/preview/action",
        data={
            "_wpnonce": _token(site),
            "coachbridge_do": "save_ticks",
            "coachbridge_return": f"view=program&enrollment={site.cleo_strength}",
            "enrollment": str(site.cleo_strength),
            "milestone_done[]": [str(site.milestone_first)],
            "habit_done[]": [f"{site.habit_walk}/{today}"],
        },
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "coachbridge_notice=saved" in location
    assert f"enrollment={site.cleo_strength}" in location
    assert _count(site, MilestoneTick) == 1
    assert _count(site, HabitTick) == 1

    html = browser.get(location).get_data(as_text=True)
    assert "Your changes were saved." in html


def test_form_unticks(site, browser):
    _act_as(site, browser, site.cleo)
    site.call(
        "PUT",
        f"/api/v1/enrollments/{site.cleo_strength}/milestones/{site.milestone_first}/tick",
        site.cleo,
    )
    response = browser.post(
        "/preview/action",
        data={
            "_wpnonce": _token(site),
            "coachbridge_do": "save_ticks",
            "enrollment": str(site.cleo_strength),
            "milestone_was[]": [str(site.milestone_first)],
        },
    )
    assert "coachbridge_notice=saved" in response.headers["Location"]
    assert _count(site, MilestoneTick) == 0


def test_form_for_another_client_not_saved(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/action",
        data={
            "_wpnonce": _token(site),
            "coachbridge_do": "save_ticks",
            "enrollment": str(site.dan_strength),
            "milestone_done[]": [str(site.milestone_first)],
        },
    )
    assert "coachbridge_notice=failed" in response.headers["Location"]
    assert _count(site, MilestoneTick) == 0


def test_form_starts_conversation(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/action",
        data={
            "_wpnonce": _token(site),
            "coachbridge_do": "start_conversation",
            "coachbridge_return": "view=messages",
            "partner": str(site.coach_ana),
            "body": "Hello <coach>",
        },
    )
    location = response.headers["Location"]
    assert "coachbridge_notice=sent" in location
    assert "view=messages" in location
    assert "conversation=" in location
    html = browser.get(location).get_data(as_text=True)
    assert "Hello &lt;coach&gt;" in html
    assert _count(site, Message) == 1


def test_form_rejects_bad_token(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/action", data={"_wpnonce": "x", "coachbridge_do": "save_ticks"}
    )
    assert response.status_code == 403


def test_proxy_ticks(site, browser):
    _act_as(site, browser, site.cleo)
    enrollment, milestone = site.cleo_strength, site.milestone_first
    path = f"/api/v1/enrollments/{enrollment}/milestones/{milestone}/tick"
    response = browser.post(
        "/preview/proxy",
        json={"method": "PUT", "path": path, "body": None},
        headers={TOKEN_HEADER: _token(site)},
    )
    assert response.status_code == 200
    assert response.get_json()["done"] is True
    assert _count(site, MilestoneTick) == 1


def test_proxy_sends_message(site, browser):
    _act_as(site, browser, site.cleo)
    headers = {TOKEN_HEADER: _token(site)}
    conversation = browser.post(
        "/preview/proxy",
        json={
            "method": "POST",
            "path": "/api/v1/conversations",
            "body": {"partner_id": site.dan},
        },
        headers=headers,
    ).get_json()["id"]
    response = browser.post(
        "/preview/proxy",
        json={
            "method": "POST",
            "path": f"/api/v1/conversations/{conversation}/messages",
            "body": {"body": "hi"},
        },
        headers=headers,
    )
    assert response.status_code == 201


def test_proxy_rejects_other_paths(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/proxy",
        json={"method": "GET", "path": "/api/v1/me/enrollments"},
        headers={TOKEN_HEADER: _token(site)},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("payload", [[1, 2], "x", 5])
def test_proxy_rejects_body_not_an_object(site, browser, payload):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/proxy", json=payload, headers={TOKEN_HEADER: _token(site)}
    )
    assert response.status_code == 400
    assert "expected a JSON object" in response.get_json()["error"]["message"]


def test_proxy_needs_token(site, browser):
    _act_as(site, browser, site.cleo)
    response = browser.post(
        "/preview/proxy", json={"method": "PUT", "path": "/api/v1/conversations"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/enrollments/5/milestones/12/tick", True),
        ("DELETE", "/api/v1/enrollments/5/milestones/12/tick", True),
        ("PUT", "/api/v1/enrollments/5/habits/3/ticks/2026-03-02", True),
        ("DELETE", "/api/v1/enrollments/5/habits/3/ticks/2026-03-02", True),
        ("POST", "/api/v1/conversations", True),
        ("POST", "/api/v1/conversations/5/messages", True),
        ("GET", "/api/v1/conversations/5/messages", False),
        ("POST", "/api/v1/enrollments/5/messages", False),
        ("POST", "/api/v1/conversations/05/messages", False),
        ("POST", "/api/v1/conversations/5/messages\n", False),
        ("PUT", "/api/v1/conversations", False),
    ],
)
def test_preview_allowlist_matches_plugin(method, path, allowed):
    assert is_allowed(method, path) is allowed


def test_script_copies_identical():
    plugin = ROOT / "wp_plugin_stub" / "assets" / "coachbridge.js"
    preview = ROOT / "bridge" / "static" / "coachbridge.js"
    assert preview.read_bytes() == plugin.read_bytes()


def test_tab_stylesheet_copies_identical():
    plugin = ROOT / "wp_plugin_stub" / "assets" / "coachbridge.css"
    preview = ROOT / "bridge" / "static" / "coachbridge-tab.css"
    assert preview.read_bytes() == plugin.read_bytes()
