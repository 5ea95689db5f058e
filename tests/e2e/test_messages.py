"""Messages between a member and their coach, both in the Coaching tab."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.e2e.harness import COACH_NAME, Site, expect, log_in, save_screenshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page

QUESTION = "Hello Zoë, when is our kickoff call?"
ANSWER = "Tomorrow at 10, see you then."


def test_member_and_coach_exchange_messages(
    open_page: Callable[[], Page], site: Site
) -> None:
    site.buy("hal")
    member = open_page()
    log_in(member, site, "hal", then=site.coaching_url(view="messages"))
    member.select_option("#coachbridge-partner", label=f"{COACH_NAME} (your coach)")
    member.fill("#coachbridge-new-body", QUESTION)
    member.locator(".coachbridge-new-message").get_by_role(
        "button", name="Send"
    ).click()
    expect(member.locator(".coachbridge-message-list")).to_contain_text(QUESTION)

    coach = open_page()
    log_in(coach, site, "zoe", then=site.coaching_url(view="messages"))
    conversations = coach.locator(".coachbridge-conversations")
    expect(conversations).to_contain_text("1 unread")
    conversations.get_by_role("link", name="Hal Berg").click()
    expect(coach.locator(".coachbridge-message-list")).to_contain_text(QUESTION)
    coach.fill("#coachbridge-reply-body", ANSWER)
    coach.locator(".coachbridge-reply").get_by_role("button", name="Send").click()
    expect(coach.locator(".coachbridge-message-mine")).to_contain_text(ANSWER)

    member.reload()
    expect(member.locator(".coachbridge-message-list")).to_contain_text(ANSWER)
    save_screenshot(
        member, "coaching-messages", scroll_to=member.locator(".mp_wrapper")
    )
