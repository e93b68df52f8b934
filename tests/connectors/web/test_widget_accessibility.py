"""The widget for a customer on a phone or with a screen reader: a message not sent yet
says so in words, the full-screen panel is a modal dialog that keeps clear of the notch,
the home indicator and the on-screen keyboard, the message box grows with what is typed,
the list opens at the newest message and leaves a reader who scrolled back alone, icons
are drawn (not emoji) and have names, and a connection that comes up at once is not
announced. Real headless Chromium (see test_web_browser.py) against the real bot of
test_widget_embedding.py's shop: a page on another origin embedding the widget with one
script tag. What no headless browser has (an iPhone's safe areas, an on-screen keyboard)
is emulated: the insets through Chromium's DevTools protocol, the keyboard by moving a
stand-in visual viewport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession, WSCloseCode
from test_web_browser import (  # noqa: F401 (browser: a fixture)
    WIDGET,
    _open_and_send,
    _wait_reply,
    browser,
    watched_page,
)
from test_widget_embedding import Shop, shop  # noqa: F401 (shop: a fixture)

from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

PHONE = {"width": 375, "height": 667}
# Everything the widget shows that is not a message's own text.
OWN_TEXT = f"""() => {{
  const root = {WIDGET}.querySelector('.botkit-root').cloneNode(true);
  root.querySelectorAll('.botkit-text').forEach(t => t.remove());
  return root.textContent;
}}"""
INSIDE_PANEL = f"{WIDGET}.querySelector('.botkit-panel').contains({WIDGET}.activeElement)"
# The page's own elements (not the widget's, not scripts) that are inert.
INERT = """() => [...document.querySelectorAll('body *:not(script):not(botkit-chat)')]
                    .filter(e => e.inert).map(e => e.id || e.tagName.toLowerCase())"""


def _connector(shop: Shop) -> WebConnector:  # noqa: F811
    connector = shop.bot.connectors["web"]
    assert isinstance(connector, WebConnector)
    return connector


async def _drop_sockets(shop: Shop) -> None:  # noqa: F811
    sockets = list(_connector(shop).service.sockets)
    await asyncio.gather(*(ws.close(code=WSCloseCode.SERVICE_RESTART) for ws in sockets))


@asynccontextmanager
async def _phone(browser: Any) -> AsyncIterator[Any]:  # noqa: F811
    ctx = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        pg = await ctx.new_page()
        pg.problems = []
        pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))
        yield pg
    finally:
        await ctx.close()


async def _box(pg: Any, selector: str) -> dict[str, float]:
    box: dict[str, float] = await pg.locator(selector).bounding_box()
    return box


# -- a message not sent yet ---------------------------------------------------------------


async def test_a_message_not_sent_yet_says_so_in_words(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: only `opacity: 0.7`, nothing a screen reader reads and little to see.
    The outbox is sent again by itself on every connect, so the words say that (there
    is nothing to tap to retry); "Sending..." only for an ack that is late."""
    mode = ["through"]  # through: the real server; down: refused; mute: frames never arrive

    async def network(route: Any) -> None:
        if mode[0] == "down":
            await route.close(code=1013, reason="down")
            return
        server = route.connect_to_server()
        if mode[0] == "mute":
            route.on_message(lambda m: None if '"type":"message"' in str(m) else server.send(m))

    pg = await watched_page(browser)
    try:
        await pg.route_web_socket("**/ws", network)
        await pg.goto(shop.origin + "/")
        await pg.get_by_role("button", name="Open chat").click()
        await pg.evaluate(
            f"""() => {{ window.__notes = [];
              new MutationObserver(() => {{
                for (const n of {WIDGET}.querySelectorAll('.botkit-state'))
                  window.__notes.push(n.textContent);
              }}).observe({WIDGET}.querySelector('.botkit-log'),
                          {{subtree: true, childList: true, characterData: true}}); }}"""
        )
        await _open_and_send(pg, "one")
        await _wait_reply(pg, 2)
        # Acknowledged at once: no state is shown (nor announced), not even for a moment.
        assert await pg.evaluate("window.__notes") == []

        mode[0] = "down"
        await _drop_sockets(shop)
        await _open_and_send(pg, "two")
        unsent = pg.locator(".botkit-log .botkit-in").last
        note = unsent.locator(".botkit-state")
        waiting = "Not sent yet: waiting for the connection"
        await pg.wait_for_function(
            f"t => {WIDGET}.querySelector('.botkit-state')?.textContent === t", arg=waiting
        )
        assert await note.is_visible()
        # Read out with the message: it is in the message's accessible text.
        assert await unsent.aria_snapshot() == f'- listitem: "You: two {waiting}"'
        # Not faded: the text keeps its contrast; the words (and a dashed edge) say it.
        assert await unsent.evaluate("e => getComputedStyle(e).opacity") == "1"

        mode[0] = "mute"  # connected again, but the server never gets the message
        await pg.wait_for_function(
            f"() => {WIDGET}.querySelector('.botkit-state')?.textContent === 'Sending\u2026'",
            timeout=15_000,
        )
        mode[0] = "through"
        await _drop_sockets(shop)
        await _wait_reply(pg, 4)
        assert await pg.locator(".botkit-state").count() == 0
        assert await pg.locator(".botkit-log [data-seq='3'] .botkit-text").text_content() == "two"
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


# -- the full-screen panel ----------------------------------------------------------------


async def _focus_stays_in_panel(pg: Any, key: str, presses: int = 12) -> list[str]:
    where = []
    for _ in range(presses):
        await pg.keyboard.press(key)
        where.append(
            await pg.evaluate(
                f"{INSIDE_PANEL} ? 'panel' : (document.activeElement.id || "
                f"document.activeElement.tagName)"
            )
        )
    return where


async def test_the_full_screen_panel_is_a_modal_dialog(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: the page behind the full-screen panel stayed in the Tab order and in the
    screen reader's reading order, and the launcher (under the panel) took focus."""
    async with _phone(browser) as pg:
        await pg.goto(shop.origin + "/")
        await pg.evaluate("document.querySelector('h1').inert = true")  # the page's own
        await pg.get_by_role("button", name="Open chat").click()
        panel = pg.locator(".botkit-panel")
        assert await panel.get_attribute("role") == "dialog"
        assert await panel.get_attribute("aria-modal") == "true"
        assert await pg.evaluate(INERT) == ["h1", "first"]
        assert await pg.evaluate("document.querySelector('botkit-chat').inert") is False
        assert await _focus_stays_in_panel(pg, "Tab") == ["panel"] * 12
        assert await _focus_stays_in_panel(pg, "Shift+Tab") == ["panel"] * 12

        # Escape: closed, the focus on the launcher, the page as it was (its own h1 inert).
        await pg.keyboard.press("Escape")
        assert await panel.is_hidden()
        assert await pg.evaluate(f"{WIDGET}.activeElement.className") == "botkit-launcher"
        assert await panel.get_attribute("aria-modal") is None
        assert await pg.evaluate(INERT) == ["h1"]

        # Turned sideways (wider than a phone): a floating panel, beside a usable page.
        await pg.get_by_role("button", name="Open chat").click()
        assert await pg.evaluate(INERT) == ["h1", "first"]
        await pg.set_viewport_size({"width": 800, "height": 600})
        await pg.wait_for_function(f"!{WIDGET}.querySelector('[aria-modal]')")
        assert await pg.evaluate(INERT) == ["h1"]
        await pg.set_viewport_size(PHONE)
        await pg.wait_for_function(f"{WIDGET}.querySelector('[aria-modal=true]')")
        assert await pg.evaluate(INERT) == ["h1", "first"]

        # Left open, the next page is not covered by a panel the visitor did not open.
        await _open_and_send(pg, "I will look around")
        await _wait_reply(pg, 2)
        await pg.goto(shop.origin + "/?page=2")
        await pg.wait_for_selector(".botkit-log [data-seq='2']", state="attached")
        assert await panel.is_hidden()
        assert await pg.evaluate(INERT) == []
        assert not pg.problems, pg.problems


async def test_the_floating_panel_is_not_modal(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    pg = await watched_page(browser)
    try:
        await pg.goto(shop.origin + "/")
        await pg.get_by_role("button", name="Open chat").click()
        assert await pg.locator(".botkit-panel").get_attribute("aria-modal") is None
        assert await pg.evaluate(INERT) == []
        assert "first" in await _focus_stays_in_panel(pg, "Tab")  # Tab reaches the page
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


# A visual viewport the test moves, as an on-screen keyboard does (there is none in a
# headless browser); until then it is the real one's size.
FAKE_KEYBOARD = """(() => {
  const vv = new EventTarget();
  let keyboard = 0, top = 0;
  Object.defineProperties(vv, {
    width: {get: () => innerWidth}, height: {get: () => innerHeight - keyboard},
    offsetTop: {get: () => top}, offsetLeft: {value: 0}, pageTop: {get: () => scrollY + top},
    pageLeft: {get: () => scrollX}, scale: {value: 1},
  });
  Object.defineProperty(window, 'visualViewport', {value: vv, configurable: true});
  window.__keyboard = (px, offsetTop) => {
    keyboard = px; top = offsetTop; vv.dispatchEvent(new Event('resize'));
  };
})()"""


async def test_the_full_screen_panel_keeps_clear_of_the_notch_home_bar_and_keyboard(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """An iPhone's safe areas (47 px notch, 34 px home indicator) on a page that goes
    edge to edge (viewport-fit=cover). Before: the title sat under the notch and the
    message box under the home indicator; the keyboard covered the message box."""
    async with _phone(browser) as pg:
        await pg.add_init_script(FAKE_KEYBOARD)
        cdp = await pg.context.new_cdp_session(pg)
        insets = {"top": 47, "bottom": 34, "left": 0, "right": 0}
        await cdp.send("Emulation.setSafeAreaInsetsOverride", {"insets": insets})
        await pg.goto(shop.origin + "/?cover=1")
        launcher = await _box(pg, ".botkit-launcher")
        assert launcher["y"] + launcher["height"] <= 667 - 34
        await _open_and_send(pg, "on a phone with a notch")
        await _wait_reply(pg, 2)
        assert await _box(pg, ".botkit-panel") == {"x": 0, "y": 0, "width": 375, "height": 667}
        assert (await _box(pg, ".botkit-header"))["y"] == 0  # its colour goes under the notch
        assert (await _box(pg, ".botkit-title"))["y"] >= 47
        assert (await _box(pg, ".botkit-close"))["y"] >= 47
        for part in (".botkit-input", ".botkit-send", ".botkit-attach"):
            box = await _box(pg, part)
            assert box["y"] + box["height"] <= 667 - 34, part

        # The keyboard takes 300 px; the visual viewport scrolled down by 100 px (iOS).
        await pg.evaluate("window.__keyboard(300, 100)")
        assert await _box(pg, ".botkit-panel") == {"x": 0, "y": 100, "width": 375, "height": 367}
        box = await _box(pg, ".botkit-input")
        assert 100 <= box["y"] and box["y"] + box["height"] <= 467
        await pg.evaluate("window.__keyboard(0, 0)")  # and it goes away
        assert await _box(pg, ".botkit-panel") == {"x": 0, "y": 0, "width": 375, "height": 667}
        assert not pg.problems, pg.problems


async def test_the_message_box_grows_with_what_is_typed(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: one 44 px line, so a message of several lines (Shift+Enter) could not be
    read over before sending. Now up to about five lines, then it scrolls."""
    async with _phone(browser) as pg:
        await pg.goto(shop.origin + "/")
        await pg.get_by_role("button", name="Open chat").click()
        box = pg.get_by_label("Your message")
        assert (await box.bounding_box())["height"] == 44
        await box.fill("Order 1234:\nthe box was open\nand one cup is broken")
        grown = await box.bounding_box()
        assert grown["height"] >= 3 * 20
        await box.fill("\n".join(f"line {i}" for i in range(20)))
        full = await box.bounding_box()
        assert grown["height"] < full["height"] <= 8.5 * 16 + 2
        send = await _box(pg, ".botkit-send")  # stays a 44 px button beside the last line
        assert send["height"] == 44 and send["y"] + 44 == full["y"] + full["height"]


AT_END = f"""() => {{ const l = {WIDGET}.querySelector('.botkit-log');
  return l.scrollHeight > l.clientHeight && l.scrollHeight - l.scrollTop - l.clientHeight < 2; }}"""


async def test_the_list_opens_at_the_newest_message_and_lets_a_reader_scroll_back(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: a panel opened on the next page showed the oldest cached messages (a
    hidden list does not scroll), and every new message pulled a visitor who had
    scrolled up to read back down to the end."""
    pg = await watched_page(browser)
    try:
        await pg.goto(shop.origin + "/")
        for n in range(1, 7):
            await _open_and_send(pg, f"question {n}: " + "where is my parcel? " * 8)
            await _wait_reply(pg, 2 * n)
        assert await pg.evaluate(AT_END)
        for left_open in (False, True):  # opened by the visitor / reopened on the next page
            if not left_open:
                await pg.get_by_role("button", name="Close chat", exact=True).click()
            await pg.reload()
            await pg.wait_for_selector(".botkit-launcher")
            if not left_open:
                await pg.get_by_role("button", name="Open chat").click()
            await pg.wait_for_selector(".botkit-log [data-seq='12']")
            await pg.wait_for_function(AT_END)

        # Reading back while a message comes (from another tab, here the HTTP API).
        log = pg.locator(".botkit-log")
        await log.evaluate("l => { l.scrollTop = 0; }")
        # The scroll event is dispatched before the next frames are drawn: two frames
        # later the widget has seen it, however slow the machine (not a 0.2 s sleep).
        await pg.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        state = next(
            json.loads(v)
            for k, v in (await pg.evaluate("Object.entries(localStorage)"))
            if k.startswith("botkit:")
        )
        async with ClientSession() as http:
            resp = await http.post(
                _connector(shop).url + "/api/messages",
                json={"client_id": "other-tab", "text": "from my other tab"},
                headers={"Authorization": f"Bearer {state['token']}"},
            )
            assert resp.status == 201
        await _wait_reply(pg, 14)
        assert await log.evaluate("l => l.scrollTop") == 0  # still reading
        await _open_and_send(pg, "and one more")  # their own message: to the end
        await _wait_reply(pg, 16)
        assert await pg.evaluate(AT_END)
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


# -- icons --------------------------------------------------------------------------------


async def test_icons_are_drawn_and_named_not_emoji(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: the paperclip was the 📎 emoji, an empty box where no emoji font is."""
    pg = await watched_page(browser)
    try:
        await pg.goto(shop.origin + "/")
        await _open_and_send(pg, "hello")
        await _wait_reply(pg, 2)
        attach = pg.get_by_role("button", name="Send a picture or a PDF to the support agent")
        assert await attach.is_visible()
        assert (await attach.text_content() or "").strip() == ""
        assert await attach.locator("svg[aria-hidden=true]").count() == 1
        # A file sent with the first message, as the widget keeps it in the conversation
        # it saved (test_web_inbox_browser.py sends real ones to a real agent).
        await pg.evaluate(
            """() => { const k = Object.keys(localStorage).find(k => k.startsWith('botkit:'));
              const s = JSON.parse(localStorage.getItem(k));
              s.cache[0].files = [{name: 'receipt.pdf', size: 12345}];
              localStorage.setItem(k, JSON.stringify(s)); }"""
        )
        await pg.reload()
        chip = pg.locator(".botkit-log [data-seq='1'] .botkit-file")
        await chip.wait_for()
        assert await chip.text_content() == "File: receipt.pdf (12 KB)"
        assert await chip.locator("svg[aria-hidden=true]").count() == 1
        own = await pg.evaluate(OWN_TEXT)
        assert not [c for c in own if ord(c) >= 0x1F000], own  # no emoji of the widget's
        assert not pg.problems, pg.problems
    finally:
        await pg.context.close()


# -- the connection's status --------------------------------------------------------------


async def test_connecting_is_said_only_when_it_takes_a_while(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: every open of the panel set the status (a live region) to "Connecting..."
    and back, so screen readers said it each time for a connection up in milliseconds."""
    delay_s = [0.0]  # how long the welcome takes

    async def network(route: Any) -> None:
        server = route.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if delay_s[0] and json.loads(message).get("type") == "welcome":
                asyncio.get_running_loop().call_later(delay_s[0], route.send, message)
            else:
                route.send(message)

        server.on_message(from_server)

    for delay, said in ((0.0, []), (2.5, ["Connecting\u2026", ""])):
        delay_s[0] = delay
        pg = await watched_page(browser)
        try:
            await pg.route_web_socket("**/ws", network)
            await pg.goto(shop.origin + "/")
            await pg.wait_for_selector(".botkit-launcher")
            await pg.evaluate(
                f"""() => {{ const s = {WIDGET}.querySelector('.botkit-status');
                  window.__said = [];
                  new MutationObserver(() => window.__said.push(s.textContent))
                    .observe(s, {{subtree: true, childList: true, characterData: true}}); }}"""
            )
            await _open_and_send(pg, "hello")
            await _wait_reply(pg, 2)
            await asyncio.sleep(1.2)
            # Up at once: nothing said. Up after 2.5 s: said after a second, then cleared.
            assert await pg.evaluate("window.__said") == said
            assert not pg.problems, pg.problems
        finally:
            await pg.context.close()
