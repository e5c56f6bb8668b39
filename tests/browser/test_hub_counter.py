"""The guide's counter on two asgiws processes sharing Redis through the hub
(examples/hub_counter): two Chromium pages, one per process, see each
other's clicks and the users online over both."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_pages import UI_TIMEOUT, browser, open_page
from tests.conftest import RedisServer, StartServer

__all__ = ["browser"]  # the fixture, shared with test_pages.py

pytestmark = pytest.mark.browser

APP = "examples.hub_counter.app:app"


async def test_counter_is_shared_between_two_server_processes(
    browser: Browser, run_server: StartServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {"HUB_URL": redis_server.url}
    one, two = run_server(APP, env=env), run_server(APP, env=env)
    assert one.port != two.port

    first = await open_page(browser, one.url + "/")
    await expect(first.locator(".users")).to_have_text("1 user", timeout=UI_TIMEOUT)
    await expect(first.locator(".value")).to_have_text("0", timeout=UI_TIMEOUT)

    second = await open_page(browser, two.url + "/")
    for page in (first, second):
        await expect(page.locator(".users")).to_have_text("2 users", timeout=UI_TIMEOUT)
        await expect(page.locator(".value")).to_have_text("0", timeout=UI_TIMEOUT)

    await first.click(".plus")
    for page in (first, second):
        await expect(page.locator(".value")).to_have_text("1", timeout=UI_TIMEOUT)
    await second.click(".minus")
    await second.click(".minus")
    for page in (first, second):
        await expect(page.locator(".value")).to_have_text("-1", timeout=UI_TIMEOUT)
    await first.screenshot(path=tmp_path / "hub-counter-first.png")
    await second.screenshot(path=tmp_path / "hub-counter-second.png")

    # A page closing on process two is seen on process one.
    await second.context.close()
    await expect(first.locator(".users")).to_have_text("1 user", timeout=UI_TIMEOUT)
    await first.context.close()
