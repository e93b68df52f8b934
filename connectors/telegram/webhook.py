"""The webhook route: Telegram POSTs each update here.

Telegram sends the ``secret_token`` given to ``setWebhook`` in the
``X-Telegram-Bot-Api-Secret-Token`` header; it is compared in constant time and a wrong
or missing one gets 403 before the body is read. The answer is 200 once the update is
stored (or known, or ignored, or skipped because the library cannot read it or its fields
have the wrong types, as polling does), 503 when it cannot be stored now, or while the
channel is down (its token rejected: a reply could not be sent; Telegram keeps the update
and retries later, so it is answered once the token is accepted again), 400 for a body
that is not an update at all (not a JSON object with an integer ``update_id``: Telegram
never sends one; retrying cannot help).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.telegram.config import WebhookConfig
from connectors.telegram.polling import RetryLater

__all__ = ["SECRET_HEADER", "BadUpdate", "ChannelDown", "create_webhook_app"]

log = logging.getLogger("connectors.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

HandleJson = Callable[[dict[str, Any]], Awaitable[None]]


class BadUpdate(ValueError):
    """The body is not a Telegram update."""


class ChannelDown(RetryLater):
    """The channel is down (its token rejected): the update is not taken (503), with no
    line of its own (the channel's ERROR says why, once a minute at most)."""


def create_webhook_app(config: WebhookConfig, handle: HandleJson) -> web.Application:
    """An aiohttp application serving ``POST config.path`` with ``handle``.

    ``handle`` gets the decoded JSON object; it raises ``BadUpdate`` for one that is not
    an update (it returns normally for one it skips) and ``RetryLater`` when it cannot be
    stored now.
    """
    if config.secret_token is None:
        raise ValueError("the webhook needs a secret_token")
    expected = config.secret_token.get_secret_value().encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            # info, not warning: anyone who finds the URL can make this line.
            log.info("telegram: webhook call with a wrong or missing secret token refused")
            return web.Response(status=403, text="forbidden")
        try:
            body = await request.read()  # bounded by client_max_size (413 beyond)
            data = json.loads(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict):
            return web.Response(status=400, text="not an update")
        try:
            await handle(data)
        except BadUpdate as exc:
            log.warning("telegram: webhook body refused: %s", exc)
            return web.Response(status=400, text="not an update")
        except ChannelDown:
            return web.Response(status=503, text="channel down, try again later")
        except RetryLater as exc:
            log.warning("telegram: update not stored, Telegram will retry: %s", exc)
            return web.Response(status=503, text="try again later")
        return web.Response(status=200, text="ok")

    app = web.Application(client_max_size=config.max_body_bytes)
    app.router.add_post(config.path, receive)
    return app
