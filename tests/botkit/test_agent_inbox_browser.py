"""The agents' inbox in a real headless Chromium (Debian's package, driven by
Playwright), on the real bot's agent API (echo backend, SQLite, a recording channel):
who has a conversation, giving another agent's customer back, names that cannot turn
the text around them, and the names the shared token signs in with. The widget and a
customer in a browser are in tests/connectors/web/test_web_inbox_browser.py."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from core_helpers import TOKEN, Api, ApiBot
from playwright.async_api import async_playwright

from botkit.events import Contact, InboundMessage
from botkit.handoff.api import AgentApi

pytestmark = pytest.mark.slow

ANA = "ana-own-token-0123456789abcdef"
BOB = "bob-own-token-0123456789abcdef"
AGENTS = {"Ana": ANA, "Bob": BOB}
EVIL = "\u202eevil"  # shows as "live", and turns what follows it around


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `apt-get install -y chromium`")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        await browser.close()


def _inbox(api: Api) -> str:
    plugin = api.bot.plugins.get("handoff")
    assert plugin is not None and isinstance(plugin.api, AgentApi)  # type: ignore[attr-defined]
    return f"{api.base}/inbox/"


async def _waiting(api: Api, name: str | None = "Carla") -> int:
    contact = Contact("test", "u1", name)
    await api.bot.submit(InboundMessage("test", "c1", contact, "My parcel is late.", "k1"))
    await api.bot.submit(InboundMessage("test", "c1", contact, "/human", "k2"))
    assert await api.bot.drain(30)
    return await api.conversation_id()


async def _signed_in(chromium: Any, api: Api, token: str, name: str | None = None) -> Any:
    page = await (await chromium.new_context()).new_page()
    await page.goto(_inbox(api))
    await page.get_by_label("Your agent token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    if name is not None:
        await page.get_by_label("Your name, as customers will see it").fill(name)
        await page.get_by_role("button", name="Sign in").click()
    return page


async def _open(page: Any, cid: int) -> None:
    await page.locator(f"#waiting li[data-id='{cid}'], #handled li[data-id='{cid}']").click()
    await page.locator("#messages .message").first.wait_for()


async def test_the_shared_token_takes_another_agents_conversation_explicitly(
    api_bot: ApiBot, chromium: Any
) -> None:
    async with api_bot(agents=AGENTS) as api:
        cid = await _waiting(api)
        assert (await api.send(cid, text="Ana here.", agent="Ana"))[0] == 201
        page = await _signed_in(chromium, api, TOKEN, "Zed")
        await page.get_by_text("Signed in as Zed").wait_for()
        await _open(page, cid)
        send = page.get_by_role("button", name="Take over and send")
        await send.wait_for()
        assert "has this conversation" in (await page.locator("#notice").text_content() or "")
        await page.get_by_label("Your answer").fill("Zed here, I'll take it.")
        await send.click()
        await page.get_by_role("button", name="Send", exact=True).wait_for()
        assert await api.bot.store.conversation_agent(cid) == "Zed"
        # Their own conversation now: plain Send, plain give back.
        assert await page.get_by_role("button", name="Give back to the bot").is_visible()


async def test_another_agents_customer_is_given_back_only_on_purpose(
    api_bot: ApiBot, chromium: Any
) -> None:
    async with api_bot(agents=AGENTS) as api:
        cid = await _waiting(api)
        path = f"/v1/conversations/{cid}/messages"
        assert (await api.call("POST", path, token=ANA, json={"text": "Ana."}))[0] == 201
        page = await _signed_in(chromium, api, BOB)
        await _open(page, cid)
        await page.get_by_role("button", name="Take over and give back to the bot").click()
        await page.get_by_text("The bot is answering this conversation").wait_for()
        conversation = await api.bot.store.conversation_by_id(cid)
        assert conversation.status == "bot"


async def test_customer_names_are_isolated_from_the_text_around_them(
    api_bot: ApiBot, chromium: Any
) -> None:
    async with api_bot(agents=AGENTS) as api:
        cid = await _waiting(api, EVIL)
        page = await _signed_in(chromium, api, ANA)
        await _open(page, cid)
        isolated = """e => getComputedStyle(e).unicodeBidi === 'isolate'
                            && e.textContent === '\\u202eevil'"""
        author = page.locator("#messages .message.customer .author .name").first
        assert await author.evaluate(isolated)
        assert await page.locator(f"#waiting li[data-id='{cid}'] .name").evaluate(isolated)
        assert await page.locator("#title").evaluate(isolated)
        # The time is its own text after the name, not part of a reversed run.
        time = page.locator("#messages .message.customer .author time").first
        assert await time.is_visible()


async def test_the_shared_token_refuses_a_name_the_api_would(
    api_bot: ApiBot, chromium: Any
) -> None:
    async with api_bot(agents=AGENTS) as api:
        page = await _signed_in(chromium, api, TOKEN, EVIL)
        await page.get_by_text("invisible or control character").wait_for()
        assert await page.locator("#app").is_hidden()
        assert await page.evaluate("sessionStorage.length") == 0
        # A name the API takes signs in.
        await page.get_by_label("Your name, as customers will see it").fill("  Zoë   Ng ")
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("Signed in as Zoë Ng").wait_for()
