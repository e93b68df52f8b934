"""The two ways Slack reaches the bot: the HTTP Events API and Socket Mode.

Both feed the same Bolt ``AsyncApp`` (so both run the same listeners); HTTP requests are
signature-checked by Bolt's ``RequestVerification`` middleware, Socket Mode envelopes
arrive over a WebSocket the app opened with its app-level token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

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

from botkit.channel import CoreHandle
from botkit.errors import ConnectorError
from botkit.readiness import answer_readiness
from botkit.throttled_warning import ThrottledWarning
from connectors.slack._api import describe_error
from connectors.slack._shape import bolt_body, problem

__all__ = ["http_app", "open_socket_mode"]

log = logging.getLogger("connectors.slack")


def _acked_if_unhandled(response: BoltResponse) -> BoltResponse:
    """Bolt answers 404 to requests no listener takes (a slash command, a shortcut, a
    click on someone else's button); Slack would deliver those again and again."""
    if response.status == 404:
        log.debug("slack: request not handled by the bot, acknowledged")
        return BoltResponse(status=200, body="")
    return response


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
    bolt: AsyncApp,
    path: str,
    signing_secret: str,
    max_body_bytes: int,
    core: CoreHandle | None = None,
) -> web.Application:
    """An aiohttp application serving the Events API and interactivity at ``path``, and
    with ``core``, the probes ``GET /healthz`` and ``/readyz`` (as on the web channel's
    and the metrics port: ``botkit.readiness``) for a load balancer in front of it.

    The signature is checked here before the body is parsed (then again by Bolt's own
    ``RequestVerification``), so nothing unsigned reaches a parser; a signed body Bolt
    would fail on (see ``_shape``) is answered 400 instead of a 500 with a traceback.
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
        headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
        # Parsed as Bolt will parse it (a body starting with "{" is JSON whatever the
        # Content-Type; of several form "payload" fields, the last counts).
        payload = bolt_body(body, headers)
        why = "not a JSON object" if payload is None else problem(payload)
        if why is not None:
            # 400, not a 200 ack: Slack retries a failed Events API delivery three times
            # at most (interactivity not at all), so a refusal does not loop, and it stays
            # visible in the app's delivery errors. (Socket Mode redelivers an envelope
            # until it is acknowledged: there it is acked, see open_socket_mode.)
            refusals.warn("malformed", "signed body slack-bolt cannot read (400): %s", why)
            return web.json_response({"error": "malformed body"}, status=400)
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=headers)
        response = _acked_if_unhandled(await bolt.async_dispatch(bolt_request))
        return await to_aiohttp_response(response)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        assert core is not None  # routed only with a core
        status, body = await answer_readiness(core)
        return web.json_response(body, status=status)

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post(path, events)
    if core is not None and path not in ("/healthz", "/readyz"):
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
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

    malformed = ThrottledWarning(
        log, "slack: malformed Socket Mode envelope acknowledged and dropped: %s"
    )

    async def on_message(
        client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        # In place of the SDK's own request listener: that one raises on a payload that
        # is no object, and Bolt answers a payload it fails on (see ``_shape``) with an
        # error and no ack, and Slack would deliver either again and again. Such an
        # envelope is acknowledged and dropped; a well-formed one goes to Bolt as before
        # (and stays unacknowledged when Bolt answers 500, e.g. the store failed, so
        # that Slack delivers it again).
        if not all(key in message for key in ("type", "envelope_id", "payload")):
            return  # "hello" and the like; "disconnect" is handled by the SDK itself
        envelope_id, payload = message["envelope_id"], message["payload"]
        why = "payload is not an object" if not isinstance(payload, dict) else problem(payload)
        if why is None and not isinstance(envelope_id, str):
            why = "envelope_id is not a string"
        if why is not None:
            malformed.warn(why)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id))
            return
        attempt, reason = message.get("retry_attempt"), message.get("retry_reason")
        req = SocketModeRequest(
            type=str(message["type"]),
            envelope_id=envelope_id,
            payload=payload,
            accepts_response_payload=message.get("accepts_response_payload") is True,
            # Bolt copies these into headers, which must be strings.
            retry_attempt=attempt if isinstance(attempt, int) else None,
            retry_reason=reason if isinstance(reason, str) else None,
        )
        start = time.time()
        response = _acked_if_unhandled(await run_async_bolt_app(bolt, req))
        await send_async_response(client, req, response, start)

    handler.client.socket_mode_request_listeners.clear()
    handler.client.message_listeners.append(on_message)
    try:
        async with asyncio.timeout(limit_s):
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await handler.connect_async()  # type: ignore[no-untyped-call]
    except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        await handler.close_async()  # type: ignore[no-untyped-call]
        reason = describe_error(exc) if isinstance(exc, SlackApiError) else exc
        raise ConnectorError(f"slack: Socket Mode connection failed: {reason}") from exc
    return handler
