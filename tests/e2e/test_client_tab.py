"""Ticking progress in a member's Coaching tab."""

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
    tick,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_ticks_survive_reload(page: Page, site: Site) -> None:
    site.buy("dan")
    # Read before the page loads: if midnight passes meanwhile, this date is
    # still on the grid, as the day before, and may still be ticked.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    log_in(page, site, "dan", then=site.coaching_url())
    page.get_by_role("link", name=PROGRAM_TITLE).click()
    expect(page.get_by_role("heading", name=PROGRAM_TITLE)).to_be_visible()

    milestone = page.get_by_role("checkbox", name=MILESTONE_TITLE)
    habit = page.get_by_role("checkbox", name=f"{HABIT_TITLE}, {format_date(today)}")
    for box in (milestone, habit):
        expect(box).not_to_be_checked()
        tick(page, box)

    page.reload()
    expect(milestone).to_be_checked()
    expect(habit).to_be_checked()
    save_screenshot(page, "coaching-program", scroll_to=page.locator(".mp_wrapper"))
