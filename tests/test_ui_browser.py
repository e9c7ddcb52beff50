"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a
real server with keys: signing in, a queue put through the API showing up, peeking,
purging after a confirmation, and a reader's view with no write buttons."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import test_auth
from tests.servers import BurrowServer
from tests.test_auth import Tokens
from tests.waiting import PATIENCE

secured = test_auth.secured  # a server with --auth keys: a writer and a reader of "a", an admin

# The page's CSP violations, gathered from before its own script runs (an init script is
# the browser's, not the page's: the policy does not apply to it).
WATCH_POLICY = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.violations.push(e.violatedDirective);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: `make system-deps` installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, secured: tuple[BurrowServer, Tokens]) -> Iterator[Page]:
    """A fresh page (its own sessionStorage) on the dashboard, not signed in yet."""
    server, _ = secured
    expect.set_options(timeout=PATIENCE * 1000)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(PATIENCE * 1000)
    opened.add_init_script(WATCH_POLICY)
    opened.goto(server.url + "/ui")
    yield opened
    assert opened.evaluate("window.violations") == []
    context.close()


def sign_in(page: Page, token: str) -> None:
    expect(page.locator("#status")).to_have_text("Enter a token to sign in.")
    page.fill("#token", token)
    page.click("#sign-in")


def test_the_page_signs_in_with_a_token(page: Page, secured: tuple[BurrowServer, Tokens]) -> None:
    _, tokens = secured
    sign_in(page, tokens.admin)
    expect(page.locator("#who")).to_have_text(f"Key {tokens.admin.partition('.')[0]}: admin")
    expect(page.locator("#sign-out")).to_be_visible()
    page.reload()  # the token is kept for the tab's session
    expect(page.locator("#who")).to_contain_text(": admin")
    page.click("#sign-out")
    expect(page.locator("#status")).to_have_text("Signed out.")
    page.reload()
    expect(page.locator("#status")).to_have_text("Enter a token to sign in.")
