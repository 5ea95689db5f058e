"""A member's Coaching tab: the enrollment after a purchase, and ticking progress."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bridge.pages_client import format_date
from tests.e2e.harness import (
    HABIT_TITLE,
    MILESTONE_TITLE,
    PROGRAM_TITLE,
    Site,
    expect,
    log_in,
    save_screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

COACH_NAME = "Zoë Martin"


def test_tab_shows_enrollment_after_purchase(page: Page, site: Site) -> None:
    site.buy("cara")
    log_in(page, site, "cara", then=site.account_url)
    page.click("#coachbridge-account-coaching")

    program = page.locator(".coachbridge-program").filter(has_text=PROGRAM_TITLE)
    expect(program).to_have_count(1)
    facts = program.locator(".coachbridge-facts")
    expect(facts).to_contain_text(COACH_NAME)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    expect(facts.locator("time")).to_have_attribute("datetime", today)
    save_screenshot(page.locator(".mp_wrapper"), "coaching-enrollments")


def test_ticks_survive_reload(page: Page, site: Site) -> None:
    site.buy("dan")
    log_in(page, site, "dan", then=site.coaching_url())
    page.get_by_role("link", name=PROGRAM_TITLE).click()
    expect(page.get_by_role("heading", name=PROGRAM_TITLE)).to_be_visible()

    today = dt.datetime.now(dt.UTC).date().isoformat()
    milestone = page.get_by_role("checkbox", name=MILESTONE_TITLE)
    habit = page.get_by_role("checkbox", name=f"{HABIT_TITLE}, {format_date(today)}")
    for box in (milestone, habit):
        expect(box).not_to_be_checked()
        with page.expect_response("**/wp-json/coachbridge/v1/proxy") as response:
            box.check()
        assert response.value.status == 200, response.value.text()
        expect(box).to_be_enabled()

    page.reload()
    expect(milestone).to_be_checked()
    expect(habit).to_be_checked()
    save_screenshot(page.locator(".mp_wrapper"), "coaching-program")
