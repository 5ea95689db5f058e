"""A purchase on the site reaches bridge and shows in the member's Coaching tab."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from tests.e2e.harness import (
    COACH_NAME,
    COHORT_NAME,
    PROGRAM_TITLE,
    Site,
    expect,
    log_in,
    save_screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_purchase_shows_enrollment_in_tab(page: Page, site: Site) -> None:
    log_in(page, site, "ana", then=site.membership_url)
    expect(page.locator("h1.entry-title")).to_have_text("Strength coaching")
    before = dt.datetime.now(dt.UTC).date().isoformat()
    page.click("#cbe2e-buy")
    page.wait_for_url(site.account_url)
    site.wait_for_inbox()
    after = dt.datetime.now(dt.UTC).date().isoformat()

    page.click("#coachbridge-account-coaching")
    program = page.locator(".coachbridge-program").filter(has_text=PROGRAM_TITLE)
    expect(program).to_have_count(1)
    facts = program.locator(".coachbridge-facts")
    expect(facts).to_contain_text(COACH_NAME)
    # The start date is the day of the purchase, which a midnight between
    # the two readings leaves open.
    start_day = re.compile(f"^({before}|{after})$")
    expect(facts.locator("time")).to_have_attribute("datetime", start_day)
    save_screenshot(page, "coaching-enrollments", scroll_to=page.locator(".mp_wrapper"))


def test_purchase_enrolls_member_in_bridge(page: Page, site: Site) -> None:
    log_in(page, site, "cara", then=site.membership_url)
    page.click("#cbe2e-buy")
    page.wait_for_url(site.account_url)
    site.wait_for_inbox()

    rows = [
        row for row in site.enrollments() if row["wp_user_id"] == site.users["cara"]
    ]
    assert len(rows) == 1
    assert rows[0]["program"] == "strength"
    assert rows[0]["cohort"] == COHORT_NAME
    assert rows[0]["status"] == "active"
