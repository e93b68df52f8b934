"""The two ways Slack reaches the bot: the HTTP Events API and Socket Mode.

Both feed the same Bolt ``AsyncApp`` (so both run the same listeners); HTTP requests are
signature-checked by Bolt's ``RequestVerification`` middleware, Socket Mode envelopes
arrive over a WebSocket the app opened with its app-level token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from botkit.errors import ConnectorError
from botkit.throttled_warning import ThrottledWarning

__all__ = ["http_app", "open_socket_mode"]

log = logging.getLogger("connectors.slack")


def _acked_if_unhandled(response: BoltResponse) -> BoltResponse:
    """Bolt answers 404 to requests no listener takes (a slash command, a shortcut, a
    click on someone else's button); Slack would deliver those again and again."""
    if response.status == 404:
        log.debug("slack: request not handled by the bot, acknowledged")
        return BoltResponse(status=200, body="")
    return response


def _well_formed(body: str, content_type: str) -> bool:
    """Whether Bolt can parse ``body`` (it raises on some shapes, e.g. a JSON list)."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body, max_num_fields=100)
            return "payload" not in form or isinstance(json.loads(form["payload"][0]), dict)
        data = json.loads(body)
    except (ValueError, IndexError, RecursionError):  # RecursionError: deeply nested JSON
        return False
    return isinstance(data, dict) and isinstance(data.get("event", {}), dict)


# Slack refuses timestamps more than five minutes off (SignatureVerifier checks the same).
_MAX_SKEW_S = 300
# One warning per reason per minute: a wrong clock refuses every event, and a flood of
# unsigned requests should not flood the log either.
_REFUSAL_LOG_INTERVAL_S = 60.0


class _RefusalLog:
    """Rate-limited warnings about refused requests (reason only: no body, no secret),
    one throttle per kind of refusal."""

    def __init__(self, interval: float = _REFUSAL_LOG_INTERVAL_S) -> None:
        self._interval = interval
        self._by_kind: dict[str, ThrottledWarning] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        warning = self._by_kind.get(kind)
        if warning is None:  # each kind has one fixed message (see _refusal)
            warning = self._by_kind[kind] = ThrottledWarning(
                log, "slack: request refused: " + message, interval_s=self._interval
            )
        warning.warn(*args)


def _refusal(stamp: str, signature: str) -> tuple[str, str, tuple[object, ...]]:
    """Why a request failed the signature check: (kind, message, args) for the log."""
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "timestamp", "missing or malformed X-Slack-Request-Timestamp (401)", ()
    skew = int(time.time()) - int(stamp)
    if abs(skew) > _MAX_SKEW_S:
        return (
            "skew",
            "timestamp skew %+d s, more than %d s (401); is this server's clock right?",
            (skew, _MAX_SKEW_S),
        )
    if not signature:
        return "unsigned", "no X-Slack-Signature header (401)", ()
    return "signature", "signature mismatch (401); is signing_secret this app's?", ()


def http_app(
    bolt: AsyncApp, path: str, signing_secret: str, max_body_bytes: int
) -> web.Application:
    """An aiohttp application serving the Events API and interactivity at ``path``.

    The signature is checked here before the body is parsed (then again by Bolt's own
    ``RequestVerification``), so nothing unsigned reaches a parser and a signed body
    Bolt cannot parse is answered 400 instead of a 500 with a traceback.
    """
    verifier = SignatureVerifier(signing_secret)
    refusals = _RefusalLog()

    async def events(request: web.Request) -> web.StreamResponse:
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        raw = await request.read()
        # Slack signs the exact bytes; a body that is not UTF-8 cannot match a valid
        # signature after replacement, so it is refused below.
        body = raw.decode("utf-8", errors="replace")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not (
            verifier.is_valid(body, stamp, signature)
        ):
            kind, reason, args = _refusal(stamp, signature)
            refusals.warn(kind, reason, *args)
            return web.json_response({"error": "invalid signature"}, status=401)
        if not _well_formed(body, request.content_type):
            refusals.warn("malformed", "signed body Slack's SDK cannot parse (400)")
            return web.json_response({"error": "malformed body"}, status=400)
        headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=headers)
        response = _acked_if_unhandled(await bolt.async_dispatch(bolt_request))
        return await to_aiohttp_response(response)

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(path, events)
    return app


async def open_socket_mode(
    bolt: AsyncApp, app_token: str, web_client: AsyncWebClient, limit_s: float
) -> AsyncSocketModeHandler:
    """Open a Socket Mode connection for ``bolt``; ``ConnectorError`` if it fails.

    The SDK's own ``connect`` retries forever; the URL is fetched here first so that an
    invalid app token fails fast, and the connect itself is bounded by ``limit_s``.
    The SDK reconnects by itself afterwards (``disconnect`` envelopes, stale pings).
    """
    handler = AsyncSocketModeHandler(
        bolt, app_token, logger=logging.getLogger("connectors.slack.socket"), web_client=web_client
    )

    async def checked(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        # The same shape check as over HTTP. Bolt would answer a malformed envelope with
        # an error and no ack, and Slack would deliver it again and again: ack and drop.
        if not isinstance(req.payload.get("event", {}), dict):
            log.warning("slack: malformed %s envelope dropped", req.type)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        start = time.time()
        response = _acked_if_unhandled(await run_async_bolt_app(bolt, req))
        await send_async_response(client, req, response, start)

    handler.client.socket_mode_request_listeners[:] = [checked]
    try:
        async with asyncio.timeout(limit_s):
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await handler.connect_async()  # type: ignore[no-untyped-call]
    except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        await handler.close_async()  # type: ignore[no-untyped-call]
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
        raise ConnectorError(f"slack: Socket Mode connection failed: {reason}") from exc
    return handler
