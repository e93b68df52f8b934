"""The widget keeps a message a server shutting down did not take, and sends it again.

A server in its shutdown grace period answers a message on an open socket with an
error frame ``shutting_down`` (and ``retry_after``): the widget must neither mark the
message failed nor drop it from its outbox, but send it again after the wait.

Real headless Chromium against the real bot (echo backend, temporary SQLite), on the
shop page of ``test_widget_languages``; the socket is routed through the browser so
that the first message frame is answered as a server shutting down answers it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_web_browser import WIDGET, _open_and_send, _shown, _wait_reply, browser  # noqa: F401
from test_widget_embedding import Shop
from test_widget_languages import shop  # noqa: F401 (a fixture)

from connectors.web._http import SHUTTING_DOWN

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def test_a_message_refused_while_shutting_down_is_sent_again(
    shop: Shop,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    context = await browser.new_context(viewport={"width": 1024, "height": 700})
    refused: list[str] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_page(message: Any) -> None:
            frame = json.loads(message)
            if frame.get("type") == "message" and not refused:
                refused.append(frame["client_id"])  # as a server in its grace answers it
                error = {"type": "error", "code": "shutting_down", "message": SHUTTING_DOWN}
                ws.send(json.dumps({**error, "client_id": frame["client_id"], "retry_after": 0.5}))
                return
            server.send(message)

        ws.on_message(from_page)

    await context.route_web_socket("**/ws", route)
    try:
        pg = await context.new_page()
        await pg.goto(f"{shop.origin}/?html_lang=en")
        await _open_and_send(pg, "Where is my order?")
        # Kept and sent again after the wait (same client id): stored and answered once.
        await _wait_reply(pg, 2)
        assert len(refused) == 1
        shown = await _shown(pg)
        assert [text for _, text in shown][:1] == ["Where is my order?"], shown
        assert not await pg.evaluate(f"!!{WIDGET}.querySelector('.botkit-failed')")
    finally:
        await context.close()
