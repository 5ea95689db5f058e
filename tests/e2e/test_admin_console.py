"""The Coaching menu in wp-admin, seen by an administrator."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.e2e.harness import (
    COACH_NAME,
    COHORT_NAME,
    MILESTONE_TITLE,
    PROGRAM_TITLE,
    Site,
    expect,
    log_in,
    save_screenshot,
    tick,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page


def test_activity_shows_client_progress(
    open_page: Callable[[], Page], site: Site
) -> None:
    site.buy("fay")
    member = open_page()
    log_in(member, site, "fay", then=site.coaching_url())
    member.get_by_role("link", name=PROGRAM_TITLE).click()
    tick(member, member.get_by_role("checkbox", name=MILESTONE_TITLE))

    admin = open_page()
    log_in(admin, site, "admin", then=f"{site.url}/wp-admin/")
    # The Coaching menu opens its first page, Activity.
    admin.locator("#toplevel_page_coachbridge > a").click()
    expect(admin.locator(".wrap.coachbridge-admin h1")).to_have_text("Activity")

    row = admin.locator("table.coachbridge-progress tbody tr").filter(
        has_text="Fay Lund"
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text(PROGRAM_TITLE)
    expect(row).to_contain_text(COHORT_NAME)
    expect(row).to_contain_text(COACH_NAME)
    expect(row.locator(".coachbridge-percent")).to_have_text(re.compile(r"^[1-9]\d*%$"))
    save_screenshot(admin, "admin-activity")
