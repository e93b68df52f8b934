"""The two ways Slack reaches the bot: the HTTP Events API and Socket Mode.

Both feed the same Bolt ``AsyncApp`` (so both run the same listeners); HTTP requests are
signature-checked by Bolt's ``RequestVerification`` middleware, Socket Mode envelopes
arrive over a WebSocket the app opened with its app-level token.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.errors import ConnectorError

__all__ = ["http_app", "open_socket_mode"]

log = logging.getLogger("connectors.slack")


def http_app(bolt: AsyncApp, path: str, max_body_bytes: int) -> web.Application:
    """An aiohttp application serving the Events API and interactivity at ``path``."""

    async def events(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        # Slack signs the exact bytes; a body that is not UTF-8 cannot match a valid
        # signature after replacement, so it is refused by the verification (401).
        body = raw.decode("utf-8", errors="replace")
        headers = {k: v for k, v in request.headers.items()}
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=headers)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(path, events)
    return app


async def open_socket_mode(
    bolt: AsyncApp, app_token: str, web_client: AsyncWebClient, timeout: float
) -> AsyncSocketModeHandler:
    """Open a Socket Mode connection for ``bolt``; ``ConnectorError`` if it fails.

    The SDK's own ``connect`` retries forever; the URL is fetched here first so that an
    invalid app token fails fast, and the connect itself is bounded by ``timeout``.
    The SDK reconnects by itself afterwards (``disconnect`` envelopes, stale pings).
    """
    handler = AsyncSocketModeHandler(
        bolt, app_token, logger=logging.getLogger("connectors.slack.socket"), web_client=web_client
    )
    try:
        async with asyncio.timeout(timeout):
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await handler.connect_async()
    except (SlackApiError, TimeoutError, OSError) as exc:
        await handler.close_async()
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
        raise ConnectorError(f"slack: Socket Mode connection failed: {reason}") from exc
    return handler
