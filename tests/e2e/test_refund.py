"""A refund ends the member's access to the program."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.e2e.harness import PROGRAM_TITLE, Site, expect, log_in, save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_refund_ends_program_access(page: Page, site: Site) -> None:
    transaction = site.buy("eli")
    site.refund(transaction)
    log_in(page, site, "eli", then=site.coaching_url())

    program = page.locator(".coachbridge-program").filter(has_text=PROGRAM_TITLE)
    expect(program.locator(".coachbridge-badge")).to_have_text("Access ended")
    program.get_by_role("link", name=PROGRAM_TITLE).click()

    content = page.locator(".coachbridge-client")
    expect(content.locator(".coachbridge-notice")).to_contain_text(
        "Your access to this program has ended."
    )
    boxes = content.locator("input[type=checkbox]")
    expect(boxes.first).to_be_visible()
    for index in range(boxes.count()):
        expect(boxes.nth(index)).to_be_disabled()
    save_screenshot(
        page, "coaching-access-ended", scroll_to=page.locator(".mp_wrapper")
    )
