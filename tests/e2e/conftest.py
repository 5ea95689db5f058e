"""Fixtures for the browser tests: a real WordPress site, bridge and Chromium.

The ``site`` fixture builds one WordPress site per test session with
``tests/e2e/site.sh`` (PHP's built-in server, a fresh ``cbe2e_*`` MariaDB
database, the coachbridge plugin and the MemberPress stand-in), starts
``coachbridge serve`` beside it and tears both down at the end, failures
included. Tests marked ``e2e`` are skipped with the reason shown when a
prerequisite is missing, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    Site,
    missing_prerequisites,
    save_screenshot,
    start_site,
    tail,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "e2e: drives Chromium against a real WordPress site and bridge; needs "
        "tests/e2e/site.sh install",
    )


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    e2e_dir = Path(__file__).parent
    for item in items:
        if e2e_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def prerequisites() -> None:
    """Skip, or fail under CI, when something the browser tests need is missing."""
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "missing prerequisites of the browser tests: " + ", ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI must run them: see tests/e2e/site.sh install)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def site(
    prerequisites: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A running WordPress site with the plugin, and bridge behind it."""
    workdir = tmp_path_factory.mktemp("e2e-site")
    with start_site(workdir) as running:
        yield running


@pytest.fixture(scope="session")
def browser(prerequisites: None) -> Iterator[Browser]:
    from playwright.sync_api import expect, sync_playwright

    # Generous, because the two cores are shared with the rest of the suite.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=list(CHROMIUM_FLAGS),
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(
    browser: Browser, site: Site, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Page]]:
    """A factory of pages, each in a fresh browser context with no login.

    When the test fails, screenshots of the pages and the servers' logs are
    added to the report.
    """
    contexts: list[BrowserContext] = []

    def new_page() -> Page:
        context = browser.new_context(
            base_url=site.url, viewport={"width": 1100, "height": 800}
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield new_page
    if request.node.stash.get(CALL_FAILED, False):
        pages = [page for context in contexts for page in context.pages]
        _report_failure(request.node, pages, site)
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[[], Page]) -> Page:
    """A page in a fresh browser context, so no test inherits another's login."""
    return open_page()


def _report_failure(item: pytest.Item, pages: list[Page], site: Site) -> None:
    for number, page in enumerate(pages, start=1):
        screenshot = save_screenshot(page, f"failed-{item.name}-{number}")
        item.add_report_section("teardown", f"screenshot {number}", str(screenshot))
    logs = (
        site.bridge_server.log_path,
        site.wordpress_server.log_path,
        site.workdir / "php-errors.log",
    )
    for log in logs:
        item.add_report_section("teardown", log.name, tail(log))
