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

NEW_PROGRAM_TITLE = "Eat well in 8 weeks"
NEW_MILESTONE_TITLE = "Plan a week of meals"
NEW_COHORT_NAME = "Rolling nutrition"

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


def test_admin_creates_program_with_cohort(
    open_page: Callable[[], Page], site: Site
) -> None:
    admin = open_page()
    log_in(admin, site, "admin", then=f"{site.url}/wp-admin/")
    admin.locator("#toplevel_page_coachbridge > a").click()
    admin.locator("#toplevel_page_coachbridge").get_by_role(
        "link", name="Programs"
    ).click()
    create_program(admin, site.unassigned_membership["title"])
    add_cohort(admin)

    site.buy("gus", site.unassigned_membership["id"])
    member = open_page()
    log_in(member, site, "gus", then=site.coaching_url())
    member.get_by_role("link", name=NEW_PROGRAM_TITLE).click()
    tick(member, member.get_by_role("checkbox", name=NEW_MILESTONE_TITLE))

    admin.locator("#toplevel_page_coachbridge > a").click()
    admin.get_by_label("Program").select_option(label=NEW_PROGRAM_TITLE)
    admin.get_by_role("button", name="Filter").click()
    row = admin.locator("table.coachbridge-progress tbody tr").filter(
        has_text="Gus Moreau"
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text(NEW_PROGRAM_TITLE)
    expect(row).to_contain_text(NEW_COHORT_NAME)
    expect(row.locator(".coachbridge-percent")).not_to_have_text("0%")


def create_program(admin: Page, membership_title: str) -> None:
    admin.get_by_role("link", name="Add a program").click()
    admin.fill("#coachbridge-slug", "eat-well")
    admin.fill("#coachbridge-title", NEW_PROGRAM_TITLE)
    admin.locator(".coachbridge-memberships label").filter(
        has_text=membership_title
    ).locator("input").check()
    admin.locator("input[name='milestone_title[]']").first.fill(NEW_MILESTONE_TITLE)
    admin.locator("input[name='milestone_due[]']").first.fill("1 week")
    save_screenshot(admin, "admin-new-program")
    admin.get_by_role("button", name="Create program").click()
    expect(admin.locator(".wrap.coachbridge-admin")).to_contain_text(NEW_PROGRAM_TITLE)


def add_cohort(admin: Page) -> None:
    admin.fill("#coachbridge-new-cohort-name", NEW_COHORT_NAME)
    admin.select_option("#coachbridge-new-cohort-coach", label=COACH_NAME)
    admin.get_by_role("button", name="Add cohort").click()
    expect(admin.locator(".notice")).to_contain_text(
        f"Cohort '{NEW_COHORT_NAME}' added."
    )
    cohort = admin.locator(".coachbridge-cohort h3").filter(has_text=NEW_COHORT_NAME)
    expect(cohort).to_have_count(1)
