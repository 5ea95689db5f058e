"""The account page and wp-admin keep working while bridge is stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.e2e.harness import Site, expect, log_in, save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

UNAVAILABLE = "Coaching is unavailable right now. Please try again in a few minutes."


def test_tab_shows_unavailable_message(page: Page, site: Site) -> None:
    log_in(page, site, "ben", then=site.account_url)
    with site.bridge_stopped():
        page.goto(site.coaching_url())
        notice = page.locator(".coachbridge-tab .coachbridge-notice")
        expect(notice).to_have_text(UNAVAILABLE)
        save_screenshot(
            page, "coaching-unavailable", scroll_to=page.locator(".mp_wrapper")
        )


def test_wordpress_works_without_bridge(page: Page, site: Site) -> None:
    log_in(page, site, "ben", then=site.account_url)
    with site.bridge_stopped():
        page.goto(site.account_url)
        expect(page.locator("#mepr-account-content")).to_have_text(
            "Welcome, Ben Okafor."
        )
        page.goto("/wp-admin/profile.php")
        expect(page.locator("#your-profile")).to_be_visible()
        expect(page.locator("#display_name")).to_contain_text("Ben Okafor")
