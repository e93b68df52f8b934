"""The widget keeps up with a page that changes under it (a single-page app).

* While the full-screen panel covers a phone's page, what the page adds beside the
  widget is made inert too, and given back with the rest when the panel closes; the
  page's own inert elements stay as the page left them.
* A page that switches its language (``<html lang>``, the script's ``data-lang``) gets
  the widget's own words in the new one, ``data-texts`` still winning; the conversation
  is left as it is.

Real headless Chromium against the real bot (echo backend, temporary SQLite), on the
shop page of ``test_widget_languages``.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_web_browser import WIDGET, _wait_reply, browser  # noqa: F401 (a fixture)
from test_widget_embedding import Shop
from test_widget_languages import WORDS, _visit, shop  # noqa: F401 (shop: a fixture)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

# The page's own elements (not the widget's, not scripts) that are inert.
INERT = """() => [...document.querySelectorAll('body *:not(script):not(botkit-chat)')]
                    .filter(e => e.inert).map(e => e.id || e.tagName.toLowerCase())"""


async def test_what_the_page_adds_behind_the_full_screen_panel_is_inert(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: a button the page rendered while the panel was open took the focus and
    was in the screen reader's reading order, behind a modal dialog."""
    async with _visit(browser, shop, width=375) as pg:
        # The page's own inert elements, before the panel opens.
        await pg.evaluate("Object.assign(document.querySelector('h1'), {id: 'title', inert: true})")
        await pg.evaluate(
            "document.body.append(Object.assign(document.createElement('p'),"
            " {id: 'hidden', inert: true, textContent: 'not now'}))"
        )
        await pg.locator(".botkit-launcher").click()
        assert await pg.locator(".botkit-panel").get_attribute("aria-modal") == "true"
        assert await pg.evaluate(INERT) == ["title", "hidden"]

        # The page renders a button, and a banner already inert of its own, while open.
        await pg.evaluate(
            """() => {
              const late = Object.assign(document.createElement('button'),
                                         {id: 'late', textContent: 'Accept cookies'});
              const wrap = document.createElement('div');
              wrap.id = 'wrap';
              wrap.append(late);
              document.body.append(wrap);
              document.body.append(Object.assign(document.createElement('div'),
                                                 {id: 'banner', inert: true}));
            }"""
        )
        await pg.wait_for_function("document.getElementById('wrap').inert")
        focused = await pg.evaluate(
            "document.getElementById('late').focus(); document.activeElement.id"
        )
        assert focused != "late"
        # The page gives one of its own back while the panel still covers it (its own
        # dialog closing): inert until the panel closes, then as the page left it.
        await pg.evaluate("document.getElementById('hidden').inert = false")
        await pg.wait_for_function("document.getElementById('hidden').inert")
        assert await pg.evaluate(INERT) == ["title", "hidden", "wrap", "banner"]

        await pg.keyboard.press("Escape")
        assert await pg.locator(".botkit-panel").is_hidden()
        # Exactly what the page chose: its title (untouched) and banner inert, the rest
        # given back.
        assert await pg.evaluate(INERT) == ["title", "banner"]
        assert (
            await pg.evaluate("document.getElementById('late').focus(); document.activeElement.id")
            == "late"
        )
        # Closed, the widget leaves the page's changes alone.
        await pg.evaluate(
            "document.body.append(Object.assign(document.createElement('i'), {id: 'after'}))"
        )
        await pg.wait_for_timeout(50)
        assert await pg.evaluate(INERT) == ["title", "banner"]
        assert not pg.problems, pg.problems


SCRIPT = "document.querySelector('script[data-site-key]')"
GERMAN = {
    "launcher": "Chat schließen: Chat",
    "title": "Chat",
    "close": "Chat schließen",
    "log": "Nachrichten",
    "label": "Ihre Nachricht",
    "placeholder": "Nachricht eingeben…",
    "send": "Los",  # the site's own word for German (data-texts) wins
    "lang": "de",
    "dir": "ltr",
}


async def _launcher_says(pg: Any, name: str) -> None:
    await pg.wait_for_function(
        f"name => {WIDGET}.querySelector('.botkit-launcher').getAttribute('aria-label') === name",
        arg=name,
        timeout=5_000,
    )


async def test_the_widgets_words_follow_the_pages_language(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Before: a single-page app that switched to German kept an English widget."""
    texts = '{"de": {"send": "Los"}}'
    async with _visit(browser, shop, html_lang="en", texts=texts) as pg:
        box = pg.get_by_label("Your message")
        await pg.locator(".botkit-launcher").click()
        await box.fill("Where is my order? It has not arrived yet.")
        await box.press("Enter")
        await _wait_reply(pg, 2)
        await pg.wait_for_function(f"{WIDGET}.querySelector('.botkit-in .botkit-text[lang]')")
        conversation = await pg.evaluate(f"{WIDGET}.querySelector('.botkit-log').innerHTML")

        await pg.evaluate("document.documentElement.lang = 'de'")
        await _launcher_says(pg, GERMAN["launcher"])
        assert await pg.evaluate(WORDS) == GERMAN
        # The conversation is as it was: its messages, their languages, their "You:".
        assert await pg.evaluate(f"{WIDGET}.querySelector('.botkit-log').innerHTML") == (
            conversation
        )

        # data-lang comes first, as at the start; Arabic turns the widget around.
        await pg.evaluate(f"{SCRIPT}.dataset.lang = 'ar'")
        await _launcher_says(pg, "إغلاق الدردشة: الدردشة")
        assert (await pg.evaluate(WORDS))["dir"] == "rtl"
        await pg.evaluate(f"{SCRIPT}.dataset.lang = 'fr'")
        await _launcher_says(pg, "Fermer la discussion\u00a0: Discussion")
        assert (await pg.evaluate(WORDS))["dir"] == "ltr"

        # Hostile or empty values are passed over like at the start: <html lang> then.
        for junk in ('"><img src=x onerror=alert(1)>', "x" * 5000, "", "ko"):
            await pg.evaluate(f"v => {SCRIPT}.dataset.lang = v", junk)
            await _launcher_says(pg, GERMAN["launcher"])
        assert await pg.evaluate(WORDS) == GERMAN
        assert not pg.problems and not pg.warnings, (pg.problems, pg.warnings)
