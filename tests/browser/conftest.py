"""Playwright driving Debian's Chromium (Playwright's own browser download cannot work here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import CHROMIUM


# Per module, not per session: Playwright's sync API runs an asyncio loop in the main thread
# while it is started, and under xdist the same worker then runs other modules' tests, where
# asyncio.run() and async_to_sync refuse to start ("cannot be called from a running event
# loop"). Stopping it at the end of each browser module costs one Chromium launch per module.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()
    page = context.new_page()
    # Generous: CI runs two xdist workers, a live server and Chromium on two cores, where an admin
    # page's load can pass 10 s. A passing test never waits for it; only a hang does.
    page.set_default_timeout(30_000)
    yield page
    context.close()


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
