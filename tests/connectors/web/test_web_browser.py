"""End to end in a real headless Chromium (Debian's package, driven by Playwright).

The bot is the real one (echo backend, temporary SQLite) and its web connector listens on
a real port. The widget is loaded two ways: from the connector's own demo page (strict
CSP) and from a "shop" page on another origin with no CSP at all, where a rendering bug
would really execute script. Screenshots go to build/test-artifacts/web/.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, WSCloseCode, web
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright
from web_helpers import SITE_KEY, web_settings

from botkit.bot import Bot
from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "test-artifacts" / "web"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The widget's elements live in the shadow root of its <botkit-chat> element (Playwright's
# locators look inside it; page scripts start from here).
WIDGET = "document.querySelector('botkit-chat').shadowRoot"
# The element with the focus, inside the widget or on the page.
FOCUSED = "(document.activeElement.shadowRoot?.activeElement || document.activeElement)"
HOSTILE = (
    '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
    "[click](javascript:window.__pwned=3) [docs](https://example.com/a?b=1) **bold**"
)


@dataclass
class Servers:
    bot: Bot
    connector: WebConnector
    base: str  # the connector, serving the demo page
    shop: str  # a page on another origin embedding the widget with one script tag


def _shop_app(widget_base: list[str]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><html lang='en'><head><title>Shop</title>"
                "<link rel='icon' href='data:,'></head><body>"
                "<h1>A shop</h1><p>No CSP on this page.</p>"
                f'<script src="{widget_base[0]}/widget.js" async data-site-key="{SITE_KEY}"'
                ' data-title="Shop help" data-lang="en" data-theme-color="#0a7d32"></script>'
                "</body></html>"
            ),
        )

    app = web.Application()
    app.router.add_get("/", page)
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    widget_base: list[str] = [""]
    shop = TestServer(_shop_app(widget_base), host="localhost")
    await shop.start_server()
    shop_origin = f"http://localhost:{shop.port}"
    db = tmp_path_factory.mktemp("web-browser") / "bot.db"
    settings = web_settings(db, {"port": 0, "allowed_origins": [shop_origin]}, word_delay=0.04)
    async with Bot(settings) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()
        widget_base[0] = connector.url
        try:
            yield Servers(bot, connector, connector.url, shop_origin)
        finally:
            await connector.disconnect()
            await shop.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `apt-get install -y chromium`")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def watched_page(chromium: Any, width: int = 1024, height: int = 768) -> Any:
    """A page in a context of its own whose ``problems`` collect script errors and
    console errors (CSP violations among them); close its ``context`` when done."""
    context = await chromium.new_context(viewport={"width": width, "height": height})
    pg = await context.new_page()
    pg.problems = []
    pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))
    pg.on(
        "console",
        lambda msg: pg.problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return pg


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    pg = await watched_page(browser)
    yield pg
    await pg.context.close()


async def _open_and_send(pg: Any, text: str) -> None:
    if await pg.locator(".botkit-panel").is_hidden():
        await pg.get_by_role("button", name="Open chat").click()
    box = pg.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


async def _wait_reply(pg: Any, count: int) -> None:
    """Wait until ``count`` stored messages are shown (stored ones carry data-seq)."""
    await pg.wait_for_function(
        f"n => {WIDGET}?.querySelectorAll('.botkit-log [data-seq]').length >= n"
        f" && !{WIDGET}.querySelector('.botkit-streaming, .botkit-pending')",
        arg=count,
        timeout=10_000,
    )


async def _shown(pg: Any) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = await pg.eval_on_selector_all(
        ".botkit-log .botkit-msg",
        "els => els.map(e => [e.dataset.seq || '', e.querySelector('.botkit-text').textContent])",
    )
    return [tuple(i) for i in items]  # type: ignore[misc]


async def test_demo_page_streams_reply_and_survives_reload(servers: Servers, page: Any) -> None:
    await page.goto(servers.base + "/")
    await page.get_by_role("button", name="Open chat").click()
    log = page.get_by_role("log", name="Messages")
    assert await log.get_attribute("aria-live") == "polite"
    # Record what the streaming bubble shows as the reply comes in.
    await page.evaluate(
        """() => { window.__snapshots = [];
          const w = document.querySelector('botkit-chat').shadowRoot;
          new MutationObserver(() => {
            const s = w.querySelector('.botkit-streaming .botkit-text');
            if (s && s.textContent) window.__snapshots.push(s.textContent);
          }).observe(w.querySelector('.botkit-log'),
                     {subtree: true, childList: true, characterData: true}); }"""
    )
    await _open_and_send(page, "hello from a real browser")
    await _wait_reply(page, 2)
    shown = await _shown(page)
    assert shown == [("1", "hello from a real browser"), ("2", "echo: hello from a real browser")]
    snapshots: list[str] = await page.evaluate("window.__snapshots")
    partial = [s for s in dict.fromkeys(snapshots) if s != shown[1][1]]
    assert len(partial) >= 3, snapshots  # token by token, not all at once
    assert all(shown[1][1].startswith(s) for s in partial)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "demo-desktop.png"))

    await page.reload()
    await page.wait_for_selector(".botkit-log [data-seq='2']")
    assert await page.locator(".botkit-panel").is_visible()  # still open after reload
    assert await _shown(page) == shown  # history intact, nothing twice
    await _open_and_send(page, "and after the reload")
    await _wait_reply(page, 4)
    assert [seq for seq, _ in await _shown(page)] == ["1", "2", "3", "4"]
    assert not page.problems, page.problems  # CSP violations are console errors too


async def test_hostile_reply_is_shown_as_text_on_a_site_without_csp(
    servers: Servers, page: Any
) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(servers.shop + "/")
    await _open_and_send(page, HOSTILE)
    await _wait_reply(page, 2)
    await asyncio.sleep(0.3)  # give an injected onerror handler time to fire
    shown = await _shown(page)
    assert shown[0][1] == HOSTILE
    as_text = HOSTILE.replace("**bold**", "bold").replace(
        "[docs](https://example.com/a?b=1)", "docs"
    )
    assert shown[1][1] == "echo: " + as_text
    assert await page.evaluate("window.__pwned") is None
    counts = await page.evaluate(
        f"[...{WIDGET}.querySelectorAll('.botkit-root img, .botkit-root script, "
        ".botkit-root [onerror], .botkit-root iframe')].length"
    )
    assert counts == 0
    links = await page.eval_on_selector_all(
        ".botkit-root a", "els => els.map(a => [a.href, a.rel, a.target, a.textContent])"
    )
    assert links == [
        ["https://example.com/a?b=1", "noopener noreferrer nofollow", "_blank", "docs"]
    ]
    assert await page.locator(".botkit-out strong").all_text_contents() == ["bold"]
    assert not [u for u in requests if u.endswith("/x")]  # the <img> was never loaded
    assert not page.problems, page.problems


async def test_keyboard_only(servers: Servers, page: Any) -> None:
    await page.goto(servers.base + "/")
    await page.wait_for_selector(".botkit-launcher")
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"{FOCUSED}.className") == "botkit-launcher":
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    await page.keyboard.press("Enter")
    assert await page.evaluate(f"{FOCUSED}.id.endsWith('-input')")
    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    await page.keyboard.press("Enter")
    await _wait_reply(page, 2)
    assert (await _shown(page))[0][1] == "first line\nsecond line"
    # Tab and Shift+Tab move through the labelled controls of the panel, the paperclip
    # (files for an agent) before the message box, as it is shown.
    names = []
    for key in ("Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"):
        await page.keyboard.press(key)
        names.append(
            await page.evaluate(f"{FOCUSED}.getAttribute('aria-label') || {FOCUSED}.textContent")
        )
    assert names[0] == "Send" and names[2:] == [
        "Send a picture or a PDF to the support agent", "Messages", "Close chat"]
    await page.keyboard.press("Escape")
    assert await page.locator(".botkit-panel").is_hidden()
    assert await page.evaluate(f"{FOCUSED}.className") == "botkit-launcher"
    assert (
        await page.get_by_role("button", name="Open chat").get_attribute("aria-expanded") == "false"
    )


async def test_phone_width(servers: Servers, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True)
    try:
        pg = await context.new_page()
        await pg.goto(servers.base + "/")
        await _open_and_send(pg, "on a phone")
        await _wait_reply(pg, 2)
        box = await pg.locator(".botkit-panel").bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
        for sel in (".botkit-input", ".botkit-send", ".botkit-close"):
            b = await pg.locator(sel).bounding_box()
            assert b["x"] >= 0 and b["x"] + b["width"] <= 375, sel
            assert b["y"] >= 0 and b["y"] + b["height"] <= 667, sel
            assert b["height"] >= 44, sel  # touch-sized targets
        assert await pg.evaluate("document.documentElement.scrollWidth") <= 375
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await pg.screenshot(path=str(ARTIFACTS / "demo-phone.png"))
    finally:
        await context.close()


async def test_reconnects_and_catches_up_after_a_drop(servers: Servers, page: Any) -> None:
    await page.goto(servers.base + "/")
    await _open_and_send(page, "before the drop")
    await _wait_reply(page, 2)
    token = await page.evaluate(
        "JSON.parse(localStorage.getItem(Object.keys(localStorage)"
        ".find(k => k.startsWith('botkit:')))).token"
    )
    # The server drops every socket; while the widget is away, a message arrives for it
    # (another tab / the HTTP API) and is answered.
    sockets = list(servers.connector.service.sockets)
    await asyncio.gather(*(ws.close(code=WSCloseCode.SERVICE_RESTART) for ws in sockets))
    async with ClientSession() as http:
        resp = await http.post(
            servers.base + "/api/messages",
            json={"client_id": "from-elsewhere", "text": "while you were away"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 201
    await _wait_reply(page, 4)
    shown = await _shown(page)
    assert shown == [
        ("1", "before the drop"),
        ("2", "echo: before the drop"),
        ("3", "while you were away"),
        ("4", "echo: while you were away"),
    ]
    assert not page.problems, page.problems


async def test_an_agents_message_shows_their_name_as_plain_text(
    servers: Servers, page: Any
) -> None:
    await page.goto(servers.base + "/")
    await _open_and_send(page, "I would like to talk to a person")
    await _wait_reply(page, 2)
    (conversation, *_) = await servers.bot.store.conversations_with_status(["bot"])
    text = "**Ana** here <img src=x onerror=alert(1)>"
    await servers.bot.agent_replies.send(conversation.id, text, agent="Ana", take_over=True)
    await _wait_reply(page, 3)

    async def agent_bubble() -> list[str]:
        got: list[str] = await page.eval_on_selector(
            ".botkit-log [data-seq='3']",
            "e => [e.querySelector('.botkit-agent')?.textContent ?? '',"
            " e.querySelector('.botkit-sr').textContent,"
            " e.querySelector('.botkit-text').textContent,"
            " String(e.querySelectorAll('strong, img').length)]",
        )
        return got

    # The name above the text, read out by screen readers; the text exactly as written.
    assert await agent_bubble() == ["Ana", "Ana: ", text, "0"]
    labels = await page.locator(".botkit-log [data-seq='2'] .botkit-agent").count()
    assert labels == 0  # the bot's replies carry no agent label
    await page.reload()
    await page.wait_for_selector(".botkit-log [data-seq='3']")
    assert await agent_bubble() == ["Ana", "Ana: ", text, "0"]  # from the saved history
    assert not page.problems, page.problems


async def test_instant_reply_sent_as_one_stream_frame(browser: Any, tmp_path: Path) -> None:
    """A reply generated at once reaches the widget as a ``stream`` frame that already
    holds the whole text (merged server-side), then the stored message: shown once, no
    bubble left streaming, no typing indicator left on."""
    settings = web_settings(tmp_path / "fast.db", {"port": 0}, word_delay=0.0)
    async with Bot(settings) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()
        context = await browser.new_context(viewport={"width": 1024, "height": 768})
        try:
            pg = await context.new_page()
            frames: list[str] = []

            def watch(ws: Any) -> None:
                ws.on("framereceived", lambda payload: frames.append(str(payload)))

            pg.on("websocket", watch)
            await pg.goto(connector.url + "/")
            text = "one two three four five six seven eight"
            await _open_and_send(pg, text)
            await _wait_reply(pg, 2)
            assert await _shown(pg) == [("1", text), ("2", f"echo: {text}")]
            assert await pg.locator(".botkit-typing").is_hidden()
            streams = [f for f in frames if '"type":"stream"' in f]
            assert len(streams) == 1 and f'"text":"echo: {text}"' in streams[0], frames
            assert not [f for f in frames if '"type":"delta"' in f], frames
        finally:
            await context.close()
            await connector.disconnect()
