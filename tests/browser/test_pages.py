"""The guide's browser demos in headless Chromium, driven by Playwright.

The counter and show_time pages run against both servers that serve them:
the Starlette example app (through the asgiws CLI) and the handler-API
example scripts.  Screenshots go to each test's tmp_path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import StartServer
from tests.integration.test_examples import ExampleServer

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT = 10_000  # ms: a WebSocket round trip on loopback takes far less
# show_time pushes every 1-5 s (random): the second update is due within 10 s.
SHOW_TIME_TIMEOUT = 12_000

STARLETTE_APP = "examples.starlette_app.app:app"
PageUrl = Callable[[str], str]


@pytest.fixture
async def browser(require_tool: Callable[[str], str]) -> AsyncIterator[Browser]:
    executable = require_tool("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def handler_examples() -> Iterator[Callable[[str], ExampleServer]]:
    started: list[ExampleServer] = []

    def start(script: str) -> ExampleServer:
        server = ExampleServer(script)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.interrupt()


@pytest.fixture(params=["starlette", "handler"])
def page_url(
    request: pytest.FixtureRequest,
    run_server: StartServer,
    handler_examples: Callable[[str], ExampleServer],
) -> PageUrl:
    """`page_url("counter")`: where that demo page is served, by either kind of server."""
    if request.param == "starlette":
        base = run_server(STARLETTE_APP).url
        return lambda demo: f"{base}/{demo}"

    def handler_page(demo: str) -> str:
        # Each handler-API example serves its own page at / on its own port.
        return handler_examples(f"examples/{demo}/server.py").http_url + "/"

    return handler_page


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 900, "height": 600})
    page = await context.new_page()
    await page.goto(url)
    return page


async def test_counter_is_shared_between_two_browsers(
    browser: Browser, page_url: PageUrl, tmp_path: Path
) -> None:
    url = page_url("counter")
    first = await open_page(browser, url)
    await expect(first.locator(".users")).to_have_text("1 user", timeout=UI_TIMEOUT)
    await expect(first.locator(".value")).not_to_have_text("?", timeout=UI_TIMEOUT)
    start = int(await first.locator(".value").inner_text())

    second = await open_page(browser, url)
    for page in (first, second):
        await expect(page.locator(".users")).to_have_text("2 users", timeout=UI_TIMEOUT)
        await expect(page.locator(".value")).to_have_text(str(start), timeout=UI_TIMEOUT)

    await first.click(".plus")
    for page in (first, second):
        await expect(page.locator(".value")).to_have_text(str(start + 1), timeout=UI_TIMEOUT)
    await second.click(".minus")
    await second.click(".minus")
    for page in (first, second):
        await expect(page.locator(".value")).to_have_text(str(start - 1), timeout=UI_TIMEOUT)

    await first.screenshot(path=tmp_path / "counter-first.png")
    await second.screenshot(path=tmp_path / "counter-second.png")

    # Closing the second browser context unregisters its user on the server.
    await second.context.close()
    await expect(first.locator(".users")).to_have_text("1 user", timeout=UI_TIMEOUT)
    await first.context.close()


async def test_show_time_page_updates_the_time(
    browser: Browser, page_url: PageUrl, tmp_path: Path
) -> None:
    page = await open_page(browser, page_url("show_time"))
    count = page.locator("#count")
    await expect(count).to_have_text("1", timeout=UI_TIMEOUT)
    first_time = await page.locator("#time").inner_text()

    # Two more pushes: the page updated its time at least twice.
    await page.wait_for_function(
        "Number(document.getElementById('count').textContent) >= 3", timeout=SHOW_TIME_TIMEOUT
    )
    last_time = await page.locator("#time").inner_text()
    assert first_time.endswith("Z") and last_time.endswith("Z")
    assert last_time > first_time  # ISO 8601 UTC times sort as text
    await expect(page.locator("#messages li")).to_have_count(3)
    await expect(page.locator("#status")).to_have_text("connected")

    await page.screenshot(path=tmp_path / "show_time.png")
    await page.context.close()
