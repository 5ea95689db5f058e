"""A refund ends the member's access: the program leaves the Coaching tab."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin

from tests.e2e.harness import PROGRAM_TITLE, Site, expect, log_in, save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_refund_removes_program(page: Page, site: Site) -> None:
    transaction = site.buy("eli")
    log_in(page, site, "eli", then=site.coaching_url())
    programs = page.locator(".coachbridge-program").filter(has_text=PROGRAM_TITLE)
    expect(programs).to_have_count(1)
    program_link = programs.get_by_role("link", name=PROGRAM_TITLE)
    program_url = urljoin(page.url, program_link.get_attribute("href"))

    site.refund(transaction)
    page.goto(site.coaching_url())
    content = page.locator(".coachbridge-client")
    expect(content).to_contain_text("You are not enrolled in a coaching program yet")
    expect(programs).to_have_count(0)
    save_screenshot(
        page, "coaching-after-refund", scroll_to=page.locator(".mp_wrapper")
    )

    page.goto(program_url)
    expect(page.get_by_text("This coaching page was not found.")).to_be_visible()
