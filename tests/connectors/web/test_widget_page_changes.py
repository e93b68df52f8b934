"""The widget keeps up with a page that changes under it (a single-page app).

* While the full-screen panel covers a phone's page, what the page adds beside the
  widget is made inert too, and given back with the rest when the panel closes; the
  page's own inert elements stay as the page left them.

Real headless Chromium against the real bot (echo backend, temporary SQLite), on the
shop page of ``test_widget_languages``.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_web_browser import browser  # noqa: F401 (a fixture)
from test_widget_embedding import Shop
from test_widget_languages import _visit, shop  # noqa: F401 (shop: a fixture)

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
