"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a
real server with keys: signing in, a queue put through the API showing up, peeking,
purging after a confirmation, and a reader's view with no write buttons."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests import test_auth
from tests.servers import BurrowServer
from tests.test_auth import Tokens
from tests.waiting import PATIENCE

secured = test_auth.secured  # a server with --auth keys: a writer and a reader of "a", an admin

# The README's screenshot is taken anew with BURROW_SCREENSHOT=docs/dashboard.png; else
# into the test's own directory, so that a test run leaves the checkout as it was.
SCREENSHOT = os.environ.get("BURROW_SCREENSHOT")

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


def test_a_writer_sees_a_queue_peeks_and_purges_it(
    page: Page, secured: tuple[BurrowServer, Tokens], tmp_path: Path
) -> None:
    server, tokens = secured
    admin = {"X-Auth-Token": tokens.admin}
    markup = '<img src="x" onerror="document.title=1">'  # a body is shown, never parsed
    batch = [{"id": "order-1", "body": markup}, {"id": "order-2", "body": "ship it"}]
    assert httpx.put(f"{server.url}/v1.0/a/orders", json=batch, headers=admin).status_code == 201
    sign_in(page, tokens.admin)
    page.locator("#accounts tr[data-account=a] button").click()
    orders = page.locator("#queues tr[data-queue=orders]")
    expect(orders.locator("td").nth(1)).to_have_text("2")  # depth
    orders.locator("button").click()
    expect(page.locator("#queue-title")).to_have_text("orders")

    page.fill("#put-body", "from the page")
    page.click("#put")
    expect(page.locator("#status")).to_contain_text("Put message ")
    expect(orders.locator("td").nth(1)).to_have_text("3")
    expect(orders.locator("td").nth(6)).not_to_have_text("-")  # put/s, once two polls are in

    page.click("#peek")
    bodies = page.locator("#messages td.body")
    expect(bodies).to_have_text([markup, "ship it", "from the page"])
    assert page.locator("#messages img").count() == 0
    assert page.title() == "Burrow dashboard"
    visible = httpx.get(f"{server.url}/v1.0/a/orders?detail=all", headers=admin)
    assert len(visible.json()) == 3, "peeking claimed nothing"

    claim = httpx.post(f"{server.url}/v1.0/a/orders?limit=1&hide=60", headers=admin)
    assert claim.status_code == 204  # (detail=none, POST's default)
    chart = page.locator("#chart")
    drawn = int(chart.get_attribute("data-samples") or 0)
    expect(orders.locator("td").nth(3)).to_have_text("1")  # hidden
    expect(chart).to_have_attribute("data-samples", str(drawn + 2))  # the claim, and after
    page.click("#peek")  # the claimed message is still peeked at
    expect(bodies).to_have_count(3)
    shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "dashboard.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 0

    page.locator("#messages tr", has_text="ship it").get_by_role("button").click()
    expect(page.locator("#status")).to_have_text("Deleted message order-2.")
    expect(bodies).to_have_count(2)

    page.click("#purge")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-cancel")
    assert httpx.get(f"{server.url}/v1.0/a/orders", headers=admin).status_code == 200
    page.click("#purge")
    page.click("#confirm-ok")
    expect(page.locator("#status")).to_have_text("Purged queue orders.")
    assert httpx.get(f"{server.url}/v1.0/a/orders", headers=admin).status_code == 404
    expect(page.locator("#no-queues")).to_be_visible()


def test_a_reader_sees_no_write_buttons(page: Page, secured: tuple[BurrowServer, Tokens]) -> None:
    server, tokens = secured
    url = f"{server.url}/v1.0/a/mail"
    assert httpx.put(f"{url}/m1", content=b"hi", headers={"X-Auth-Token": tokens.admin}).is_success
    sign_in(page, tokens.reader_a)
    expect(page.locator("#who")).to_contain_text(": reader for a")
    page.locator("#queues tr[data-queue=mail] button").click()  # its one account opens
    page.click("#peek")
    expect(page.locator("#messages td.body")).to_have_text(["hi"])
    for control in ("#purge", "#put-form", "#open-queue", "#messages button"):
        expect(page.locator(control)).to_be_hidden()
    expect(page.locator("#accounts")).to_be_hidden()
    assert httpx.delete(url, headers={"X-Auth-Token": tokens.reader_a}).status_code == 403
