"""The plugin's Coaching tab on the MemberPress account page."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.e2e.harness import Site, expect, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_account_nav_links_coaching_tab(page: Page, site: Site) -> None:
    log_in(page, site, "ben", then=site.account_url)
    link = page.locator("#mepr-account-nav #coachbridge-account-coaching")
    expect(link).to_have_text("Coaching")
    link.click()
    page.wait_for_url("**/account/?action=coaching")
    item = page.locator("#mepr-account-nav .coachbridge-nav-item")
    expect(item).to_have_class(re.compile(r"\bmepr-active-nav-tab\b"))
    expect(page.locator("#mepr-account-content .coachbridge-tab")).to_be_attached()
