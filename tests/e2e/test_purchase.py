"""A purchase on the site reaches bridge through MemberPress's webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.e2e.harness import COHORT_NAME, Site, expect, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_buying_enrolls_member(page: Page, site: Site) -> None:
    log_in(page, site, "ana", then=site.membership_url)
    expect(page.locator("h1.entry-title")).to_have_text("Strength coaching")
    page.click("#cbe2e-buy")
    page.wait_for_url(site.account_url)
    site.wait_for_inbox()

    rows = [row for row in site.enrollments() if row["wp_user_id"] == site.users["ana"]]
    assert len(rows) == 1
    assert rows[0]["program"] == "strength"
    assert rows[0]["cohort"] == COHORT_NAME
    assert rows[0]["status"] == "active"
