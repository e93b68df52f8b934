"""The widget embedded on a site as a web team would: the site's own stylesheet, a
right-to-left page or a right-to-left visitor, and a visitor who left the chat open and
goes on to the next page. Real headless Chromium (see test_web_browser.py), real bot
(echo backend, temporary SQLite), the shop on another origin with one script tag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from test_web_browser import WIDGET, _open_and_send, _wait_reply, browser, watched_page  # noqa: F401
from web_helpers import SITE_KEY, shop_site, web_settings

from botkit.bot import Bot
from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

# What a real site's stylesheet says about bare elements: every rule matches something
# the widget is built from.
SITE_CSS = """
h1, h2, h3 { color: #222; font-family: Georgia, serif; text-transform: uppercase;
             font-size: 32px; margin: 0 0 1em; }
header { position: fixed; top: 0; left: 0; right: 0; height: 80px; background: #fff; }
section { padding: 64px 0; }
textarea { width: 100%; min-height: 150px; }
button { padding: 14px 28px; text-transform: uppercase; background: #eee; color: #111; }
button:hover, textarea:focus { letter-spacing: 2px; }
ol li { list-style: decimal; margin-left: 2em; }
li::before { content: "\\00bb  "; }
form { margin: 2em 0; }
body { letter-spacing: 1px; line-height: 2; text-align: center; }
"""


@dataclass
class Shop:
    bot: Bot
    origin: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    db = tmp_path_factory.mktemp("web-embedding") / "bot.db"
    async with Bot(web_settings(db, {"port": 0})) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()

        async def page(request: web.Request) -> web.Response:
            """``?css=1``: with the site's stylesheet; ``?lang=he``: a Hebrew page;
            ``?cover=1``: edge to edge on a phone (``viewport-fit=cover``)."""
            lang = request.query.get("lang", "en")
            cover = ", viewport-fit=cover" if request.query.get("cover") else ""
            rtl = " dir='rtl'" if lang in ("ar", "he") else ""
            css = f"<style>{SITE_CSS}</style>" if request.query.get("css") else ""
            color = request.query.get("color", "")
            theme = f' data-theme-color="#{color}"' if color.isalnum() else ""
            return web.Response(
                content_type="text/html",
                text=(
                    f"<!doctype html><html lang='{lang}'{rtl}><head><title>Shop</title>"
                    "<meta name='viewport' content='width=device-width,"
                    f" initial-scale=1{cover}'>"
                    f"<link rel='icon' href='data:,'>{css}</head><body><h1>Shop</h1>"
                    "<a id='first' href='#'>Skip to products</a>"
                    f'<script src="{connector.url}/widget.js" async data-site-key="{SITE_KEY}"'
                    f' data-title="Shop help"{theme}></script></body></html>'
                ),
            )

        async with shop_site(connector, page) as origin:
            yield Shop(bot, origin)


LOOK = f"""() => {{
  const w = {WIDGET};
  const box = s => {{ const r = w.querySelector(s).getBoundingClientRect();
                      return [r.x, r.y, r.width, r.height].map(Math.round); }};
  const style = (s, p, pseudo) => getComputedStyle(w.querySelector(s), pseudo)[p];
  return {{
    panel: box('.botkit-panel'), header: box('.botkit-header'), input: box('.botkit-input'),
    send: box('.botkit-send'), icon: box('.botkit-launcher svg'), log: box('.botkit-log'),
    title: [style('.botkit-title', 'color'), style('.botkit-title', 'textTransform'),
            style('.botkit-title', 'fontFamily')],
    bubble: [style('.botkit-msg', 'listStyleType'), style('.botkit-msg', 'content', '::before'),
             style('.botkit-msg', 'letterSpacing'), style('.botkit-msg', 'lineHeight'),
             style('.botkit-msg', 'textAlign')],
  }};
}}"""


async def test_the_sites_stylesheet_does_not_reach_the_widget(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    looks = []
    for css in ("", "1"):
        pg = await watched_page(browser)
        try:
            await pg.goto(f"{shop.origin}/?css={css}")
            await _open_and_send(pg, "does the site restyle me?")
            await _wait_reply(pg, 2)
            await pg.mouse.move(0, 0)  # nothing hovered
            looks.append(await pg.evaluate(LOOK))
            assert not pg.problems, pg.problems
        finally:
            await pg.context.close()
    plain, styled = looks
    # Before: the widget's <header> became the site's fixed 80 px bar across the whole
    # page, the title turned dark on the accent colour, the message box 150 px tall, the
    # launcher's icon was squeezed to nothing and every bubble got a list number and "»".
    assert styled == plain


async def _direction(pg: Any, selector: str) -> list[str]:
    got: list[str] = await pg.evaluate(
        f"s => [...{WIDGET}.querySelectorAll(s)].map(e => e.matches(':dir(rtl)') ? 'rtl' : 'ltr')",
        selector,
    )
    return got


async def test_each_message_has_the_direction_of_its_own_language(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    arabic = "مرحبا! أين طلبي؟"
    pg = await watched_page(browser)
    try:
        # An English page, an Arabic-speaking visitor and an Arabic answer from a person.
        await pg.goto(shop.origin + "/")
        await pg.get_by_role("button", name="Open chat").click()
        await pg.get_by_label("Your message").fill(arabic)
        assert await _direction(pg, ".botkit-input") == ["rtl"]  # as they type it
        await pg.get_by_label("Your message").press("Enter")
        await _wait_reply(pg, 2)
        (conversation, *_) = await shop.bot.store.conversations_with_status(["bot"])
        await shop.bot.agent_replies.send(conversation.id, "طلبك في الطريق.", agent="سارة",
                                          take_over=True)  # fmt: skip
        await _wait_reply(pg, 3)
        # Before: all "ltr", so "!" and "؟" were drawn at the wrong end of the sentence.
        # The echo reply starts with "echo:", so it is left-to-right.
        assert await _direction(pg, ".botkit-text") == ["rtl", "ltr", "rtl"]
        assert await _direction(pg, ".botkit-agent") == ["rtl"]
        await pg.context.close()

        # A Hebrew page: the widget is right-to-left, an English message in it is not.
        pg = await watched_page(browser)
        await pg.goto(shop.origin + "/?lang=he")
        await _open_and_send(pg, "Where is my order?")
        await _wait_reply(pg, 2)
        assert await _direction(pg, ".botkit-panel") == ["rtl"]
        assert await _direction(pg, ".botkit-text") == ["ltr", "ltr"]
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


async def test_a_chat_left_open_does_not_take_the_focus_of_the_next_page(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    pg = await watched_page(browser)
    try:
        await pg.goto(shop.origin + "/")
        await _open_and_send(pg, "I will look around")
        await _wait_reply(pg, 2)
        await pg.goto(shop.origin + "/?page=2")  # the visitor goes on, the chat stays open
        await pg.wait_for_function(f"{WIDGET}.querySelector('.botkit-log [data-seq=\"2\"]')")
        assert await pg.locator(".botkit-panel").is_visible()
        # Before: the message box had the focus, so a screen reader started in the chat
        # (and a phone's keyboard popped up) instead of at the page's top.
        assert await pg.evaluate("document.activeElement === document.body")
        await pg.keyboard.press("Tab")
        assert await pg.evaluate("document.activeElement.id") == "first"
        # Opening it on purpose still puts the visitor in the message box.
        await pg.get_by_role("button", name="Close chat", exact=True).click()
        await pg.get_by_role("button", name="Open chat").click()
        assert await pg.evaluate(f"{WIDGET}.activeElement?.id.endsWith('-input')")
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


async def test_a_light_theme_colour_gets_dark_text_and_links_leave_out_the_full_stop(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    colour = f"s => getComputedStyle({WIDGET}.querySelector(s)).color"
    pg = await watched_page(browser)
    try:
        # Before: white on yellow (about 1.3:1) on the header, the send button and the
        # visitor's own messages; now the darker text, as on the default blue: white.
        await pg.goto(shop.origin + "/?color=fde047")
        await _open_and_send(pg, "I read https://shop.example/returns. Thanks!")
        await _wait_reply(pg, 2)
        assert await pg.evaluate(colour, ".botkit-header") == "rgb(17, 24, 39)"
        assert await pg.evaluate(colour, ".botkit-in") == "rgb(17, 24, 39)"
        # The bot's reply (the echo) is rendered with links. Before: the link went to
        # ".../returns." (the sentence's full stop).
        hrefs = await pg.evaluate(
            f"[...{WIDGET}.querySelectorAll('.botkit-out .botkit-text a')].map(a => a.href)"
        )
        assert hrefs == ["https://shop.example/returns"]
        texts = await pg.evaluate(
            f"[...{WIDGET}.querySelectorAll('.botkit-text')].map(t => t.textContent)"
        )
        assert texts[-1] == "echo: I read https://shop.example/returns. Thanks!"
        await pg.context.close()
        pg = await watched_page(browser)
        await pg.goto(shop.origin + "/")
        await pg.get_by_role("button", name="Open chat").click()
        assert await pg.evaluate(colour, ".botkit-header") == "rgb(255, 255, 255)"
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()
