"""The agents' inbox in a real headless Chromium whose clock is hours off the server's
(an agent's laptop with a wrong time or zone setting): how long a customer has waited
is counted on the server's clock, which every answer's Date header gives."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from core_helpers import TOKEN, ApiBot
from playwright.async_api import async_playwright

from botkit.events import Contact, InboundMessage

pytestmark = pytest.mark.slow


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `apt-get install -y chromium`")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        await browser.close()


async def test_waiting_time_is_counted_on_the_servers_clock(api_bot: ApiBot, chromium: Any) -> None:
    async with api_bot() as api:
        contact = Contact("test", "u1", "Carla")
        await api.bot.submit(InboundMessage("test", "c1", contact, "My parcel is late.", "k1"))
        await api.bot.submit(InboundMessage("test", "c1", contact, "/human", "k2"))
        assert await api.bot.drain(30)
        cid = await api.conversation_id()
        page = await (await chromium.new_context()).new_page()
        # The browser's clock 3 h ahead of the server's, and running on from there.
        await page.clock.install(time=datetime.now(UTC) + timedelta(hours=3))
        await page.goto(f"{api.base}/inbox/")
        await page.get_by_label("Your agent token").fill(TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_label("Your name, as customers will see it").fill("Zed")
        await page.get_by_role("button", name="Sign in").click()
        sub = page.locator(f"#waiting li[data-id='{cid}'] .sub")
        await sub.wait_for()
        # Not "waiting 3 h 0 min": the customer asked for a human a moment ago.
        assert "waiting under a minute" in (await sub.text_content() or "")
