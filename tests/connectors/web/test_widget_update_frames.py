"""The widget takes an ``update`` frame's language only when it is one, for a message it
shows: anything else in the frame is left alone, without an error.

The widget's socket is routed through the browser (Playwright's ``route_web_socket``),
passing everything through both ways, so that frames no honest server sends can be put
in front of the widget next to the real ones. Real headless Chromium against the real
bot (echo backend, temporary SQLite), on the shop page of ``test_widget_languages``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_web_browser import WIDGET, _wait_reply, browser  # noqa: F401 (a fixture)
from test_widget_embedding import Shop
from test_widget_languages import shop  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

LANGS = f"[...{WIDGET}.querySelectorAll('.botkit-text')].map(e => e.getAttribute('lang'))"
HOSTILE: list[Any] = [
    {"type": "update", "seq": 1, "language": '"><img src=x onerror=alert(1)>'},
    {"type": "update", "seq": 1, "language": {"toString": "fr"}},
    {"type": "update", "seq": 1, "language": "x" * 100},
    {"type": "update", "seq": 1, "language": None},
    {"type": "update", "seq": "1", "language": "fr"},
    {"type": "update", "seq": 1.5, "language": "fr"},
    {"type": "update", "seq": 999, "language": "fr"},  # a message it does not show
    {"type": "update", "seq": "__proto__", "language": "fr"},
    {"type": "update"},
]


async def test_hostile_update_frames_change_nothing(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    context = await browser.new_context(viewport={"width": 1024, "height": 700})
    routes: list[Any] = []

    def route(ws: Any) -> None:
        ws.connect_to_server()  # everything passes through, both ways
        routes.append(ws)

    await context.route_web_socket("**/ws", route)
    try:
        pg = await context.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        pg.on("console", lambda m: m.type == "error" and problems.append(m.text))
        await pg.goto(f"{shop.origin}/?html_lang=en")
        await pg.locator(".botkit-launcher").click()
        box = pg.get_by_label("Your message")
        await box.fill("Where is my order? It has not arrived yet.")
        await box.press("Enter")
        await _wait_reply(pg, 2)
        await pg.wait_for_function(f"{LANGS}[0] === 'en'")  # the real update came
        for frame in HOSTILE:
            routes[-1].send(json.dumps(frame))
        # A real one after them is still taken: they were read, and changed nothing.
        routes[-1].send(json.dumps({"type": "update", "seq": 2, "language": "de"}))
        await pg.wait_for_function(f"{LANGS}[1] === 'de'")
        assert await pg.evaluate(LANGS) == ["en", "de"]
        cached = await pg.evaluate(
            "Object.values(localStorage).map(v => JSON.parse(v).cache)"
            ".filter(Boolean)[0].map(m => m.lang)"
        )
        assert cached == ["en", "de"]
        assert not problems, problems
    finally:
        await context.close()
