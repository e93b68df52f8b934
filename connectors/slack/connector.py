"""``SlackConnector``: a Slack app built on slack-bolt's ``AsyncApp`` and ``AsyncWebClient``."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.channel import CoreHandle, ReplyStream
from botkit.errors import ConnectorError, DatabaseUnavailableError
from botkit.events import Contact, InboundMessage, OutboundReply
from botkit.http_server import server_runner
from botkit.throttled_warning import ThrottledWarning
from connectors.base import Connector, ConnectorConfig
from connectors.slack._api import SlackApi, describe_error
from connectors.slack._inbound import Identity, SlackInbound, read_action, read_event
from connectors.slack._outbound import Outbound
from connectors.slack._scopes import missing_scopes
from connectors.slack._text import BUTTON_ACTION_PREFIX
from connectors.slack._token_watch import TokenWatch
from connectors.slack._transport import http_app, open_socket_mode
from connectors.slack._users import CHANNEL, UserDirectory
from connectors.slack.config import SlackConfig

__all__ = ["SlackConnector"]

log = logging.getLogger("connectors.slack")


class _OutageTracebacks(logging.Filter):
    """Drops Bolt's "Failed to run listener function" traceback for a message refused in a
    database outage: the store warns once for every message it refuses meanwhile, and
    Bolt's 500 (no ack in Socket Mode) makes Slack deliver the event again."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DatabaseUnavailableError)


class _UnusedEnvToken(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused": ``AsyncApp``
    reads ``SLACK_BOT_TOKEN`` from the environment by itself, and the docs say to export
    it. The warning is right (``authorize`` supplies the token) but reads like a token
    problem at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_bolt_log = logging.getLogger("connectors.slack.bolt")
_bolt_log.addFilter(_OutageTracebacks())
_bolt_log.addFilter(_UnusedEnvToken())


def _app_id(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class SlackConnector(Connector[SlackConfig]):
    """Answers DMs, mentions and thread replies in Slack, streaming the replies (below the
    message in a DM, in a thread under it in a channel).

    Inbound requests are acknowledged as soon as ``core.submit_or_keep`` has stored the
    message, or kept it on disk while the database is away (Bolt runs with
    ``process_before_response`` so a failure to do either is answered 500 and Slack
    delivers again); the store's idempotency on the message's channel and ``ts``
    makes redeliveries, twin events and re-sent mentions of edited messages harmless.
    Replies go out through a paced, retried per-channel queue.
    """

    name: ClassVar[str] = CHANNEL
    Config: ClassVar[type[ConnectorConfig]] = SlackConfig

    def __init__(self, config: SlackConfig, core: CoreHandle) -> None:
        super().__init__(config, core)
        timeout = max(1, math.ceil(config.request_timeout_s))
        # retry_handlers=[]: SlackApi does all retrying, so nothing is retried twice.
        self.client = AsyncWebClient(
            token=config.bot_token.get_secret_value(),
            base_url=config.api_base_url,
            timeout=timeout,
            retry_handlers=[],
        )
        self.api = SlackApi(
            self.client,
            config.retry,
            config.channel_send_interval_s,
            updates_per_minute=config.updates_per_minute,
            timeout_s=config.request_timeout_s,
        )
        self.users = UserDirectory(
            self.api,
            ttl=config.user_cache_ttl_s,
            size=config.user_cache_size,
            timeout=config.user_lookup_timeout_s,
        )
        self.outbound = Outbound(self.api, config)
        # A token rejected at run time takes this channel down, not the process.
        self.tokens = TokenWatch(self.client, self.health, config.request_timeout_s)
        self.api.on_refused = self.tokens.refused
        self.identity = Identity()
        self._auth: AuthorizeResult | None = None
        self._auth_lock = asyncio.Lock()
        self._foreign_app = ThrottledWarning(
            log,
            "slack: ignored a request for another app (its api_app_id is not this bot's,"
            " per auth.test): is the signing secret or app token shared with another app?",
        )
        self.bolt = self._build_bolt()
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        self.port: int | None = None

    # -- Bolt app --------------------------------------------------------------------------

    def _build_bolt(self) -> AsyncApp:
        # Bolt injects arguments by parameter name and counts ``self`` as one, so the
        # callbacks it sees are plain closures.
        async def authorize() -> AuthorizeResult:
            return await self._authorize()

        async def on_event(body: dict[str, Any]) -> None:
            await self._on_event(body)

        async def on_action(body: dict[str, Any], ack: AsyncAck) -> None:
            await self._on_action(body, ack)

        secret = self.config.signing_secret
        bolt = AsyncApp(
            name="botkit",
            logger=_bolt_log,
            signing_secret=secret.get_secret_value() if secret is not None else "",
            # A token-less client: Bolt copies it per request and sets the token from
            # ``authorize``; all our own calls go through ``self.client``.
            client=AsyncWebClient(base_url=self.config.api_base_url, retry_handlers=[]),
            authorize=authorize,
            process_before_response=True,
            request_verification_enabled=True,
            ignoring_self_events_enabled=True,
        )
        bolt.event(re.compile(r".*"))(on_event)
        bolt.action(re.compile(rf"^{BUTTON_ACTION_PREFIX}"))(on_action)
        return bolt

    async def _authorize(self) -> AuthorizeResult:
        # Raising (not returning None) makes Bolt answer 500, so Slack delivers again
        # instead of the event being acknowledged and lost.
        await self._authenticate()
        if self._auth is None:
            raise ConnectorError("slack: not authenticated")
        return self._auth

    async def _authenticate(self) -> None:
        async with self._auth_lock:
            if self._auth is not None:
                return
            try:
                async with asyncio.timeout(self.config.request_timeout_s):
                    response = await self.client.auth_test()
            except SlackApiError as exc:
                raise ConnectorError(f"slack auth.test failed: {describe_error(exc)}") from exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise ConnectorError(
                    f"slack auth.test failed: {type(exc).__name__}: {exc}"
                ) from exc
            if not response.get("bot_id"):
                # A user token (xoxp-) passes auth.test too, but the bot would post as that
                # person and could not tell its own messages from theirs.
                raise ConnectorError(
                    "slack: bot_token is not a bot token (auth.test shows a user, no bot):"
                    " use the Bot User OAuth Token (xoxb-...) from OAuth & Permissions"
                )
            self._check_scopes(response.headers.get("x-oauth-scopes"))
            self._auth = AuthorizeResult.from_auth_test_response(
                auth_test_response=response, bot_token=self.config.bot_token.get_secret_value()
            )
            self.identity = Identity(
                bot_user_id=self._auth.bot_user_id,
                bot_id=self._auth.bot_id,
                team_id=self._auth.team_id,
                app_id=_app_id(response.get("app_id")),
            )

    @staticmethod
    def _check_scopes(granted: object) -> None:
        """Name the scopes the token lacks: fail without ``chat:write``, warn otherwise.

        ``granted`` is the ``X-OAuth-Scopes`` header of ``auth.test`` (absent: nothing
        is checked). Scopes added to the app count only once it is reinstalled.
        """
        if not isinstance(granted, str):
            return
        required, optional = missing_scopes(granted)
        if required:
            raise ConnectorError(
                f"slack: bot_token lacks the scope {', '.join(required)}: add it under"
                " OAuth & Permissions (see manifest.yaml) and reinstall the app"
            )
        if optional:
            log.warning(
                "slack: bot_token lacks the scopes %s; add them under OAuth & Permissions"
                " (see manifest.yaml) and reinstall the app",
                "; ".join(optional),
            )

    def _for_another_app(self, body: dict[str, Any]) -> bool:
        """A payload for another app (``api_app_id`` is not ours, from ``auth.test``).

        Only a sender with our signing secret (or app token) can get one here, so this is
        defence in depth: a secret shared between apps, or a proxy routing wrongly.
        """
        app_id = body.get("api_app_id")
        mine = self.identity.app_id
        if mine is None or app_id is None or app_id == mine:
            return False
        self._foreign_app.warn()
        return True

    async def _on_event(self, body: dict[str, Any]) -> None:
        if self._for_another_app(body):
            return
        inbound = read_event(
            body,
            self.identity,
            answer_other_bots=self.config.answer_other_bots,
            thread_replies=self.config.thread_replies,
        )
        if inbound is None:
            return
        # An agent answering in a customer's channel thread (a mention of the bot there
        # included); in a thread the agent started, they are its customer.
        by_agent = (
            inbound.author in self.config.agent_user_ids
            and "thread_ts" in inbound.channel_ids
            and ":" in inbound.conversation_key  # a channel thread, not a DM
        )
        if by_agent and (
            inbound.bare_mention or (not inbound.text.strip() and not inbound.attachments)
        ):
            return  # a bare mention of the bot: nothing said to anyone
        await self._submit(inbound, by_agent=by_agent)

    async def _on_action(self, body: dict[str, Any], ack: AsyncAck) -> None:
        # A click is the clicker's answer to the bot's buttons, agents' clicks included.
        if self._for_another_app(body):
            await ack()
            return
        inbound = read_action(body, self.identity)
        if inbound is not None:
            await self._submit(inbound)
        await ack()

    async def _submit(self, inbound: SlackInbound, *, by_agent: bool = False) -> None:
        """Store the message through the core (which answers it in the background), or
        have it kept while the database is away: Slack gives up on an event after about
        five minutes of retries, and turns off an app that fails most of an hour's.

        ``by_agent``: one of ``agent_user_ids`` wrote in a channel thread; the core
        stores it as theirs (the customer has seen it already), or, when it is not an
        agent's message there (a thread the agent started), as a customer's."""
        known_thread_only = inbound.known_thread_only
        # (An agent's message is looked up by the core first, which then judges the
        # thread too: a read here would be a second one.)
        if known_thread_only and not by_agent:
            try:
                if not await self.core.history(CHANNEL, inbound.conversation_key, limit=1):
                    return  # a thread the bot is not part of
                known_thread_only = False
            except DatabaseUnavailableError:
                pass  # the core looks again when it stores the message
        if inbound.author.startswith("bot:") or not self.health.up:
            # (While the token is rejected, users.info would be refused for every event.)
            contact = Contact(channel=CHANNEL, external_id=inbound.author)
        else:
            contact = await self.users.contact(inbound.author)
        agent_name = (contact.display_name or inbound.author) if by_agent else None
        receipt = await self.core.submit_or_keep(
            InboundMessage(
                channel=CHANNEL,
                conversation_key=inbound.conversation_key,
                contact=contact,
                text=inbound.text,
                idempotency_key=inbound.idempotency_key,
                channel_ids=inbound.channel_ids,
                attachments=inbound.attachments,
            ),
            existing_conversation_only=known_thread_only,
            agent_name=agent_name,
        )
        if receipt is not None and receipt.duplicate:
            log.debug("slack: %s delivered again, not answered twice", inbound.idempotency_key)

    # -- lifecycle ------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The HTTP endpoint as an aiohttp application (``connect`` serves it)."""
        secret = self.config.signing_secret
        return http_app(
            self.bolt,
            self.config.path,
            secret.get_secret_value() if secret is not None else "",
            self.config.max_body_bytes,
            self.core,
        )

    async def connect(self) -> None:
        """Check the bot token (``auth.test``), then serve HTTP or open Socket Mode.

        Raises:
            ConnectorError: invalid token, a token that is not a bot token, a token
                without ``chat:write``, unreachable Slack, port in use, or a Socket Mode
                connection that cannot be opened. (Other missing scopes are warned about
                by name.)
        """
        if self._runner is not None or self._socket is not None:
            return
        self._stopped.clear()
        self.outbound.sweeper.closed = False  # a reconnect after a disconnect
        self.tokens.open()
        if self._session is None or self._session.closed:
            # One connection pool for all calls. Its own timeout: slack_sdk applies
            # ``request_timeout_s`` only to sessions it makes itself, and aiohttp's
            # default (300 s) would let one hung call hold a channel's lane that long.
            # ``connect`` (DNS, TCP, TLS, a pooled connection) is half of it, so a call
            # that never left fails with aiohttp's ConnectionTimeoutError before the
            # total (and ``SlackApi``'s own bound of the same length) runs out: it is
            # then known not to have reached Slack and is tried again (``_api``).
            limit = self.config.request_timeout_s
            timeout = aiohttp.ClientTimeout(total=limit, connect=limit / 2)
            self._session = aiohttp.ClientSession(timeout=timeout)
            self.client.session = self._session
        try:
            await self._authenticate()
            if self.config.mode == "http":
                await self._serve_http()
            else:
                await self._open_socket()
        except BaseException:
            await self.disconnect()
            raise

    async def _serve_http(self) -> None:
        runner = server_runner(self.make_app(), shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.config.host, self.config.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConnectorError(
                f"slack: cannot listen on {self.config.host}:{self.config.port}: {exc}"
            ) from exc
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.config.port
        log.info(
            "slack: Events API on http://%s:%s%s", self.config.host, self.port, self.config.path
        )

    async def _open_socket(self) -> None:
        token = self.config.app_token
        if token is None:  # the config validator already requires it
            raise ConnectorError("slack: socket mode needs app_token")
        web_client = AsyncWebClient(
            base_url=self.config.api_base_url, session=self._session, retry_handlers=[]
        )
        self._socket = await open_socket_mode(
            self.bolt, token.get_secret_value(), web_client, self.config.request_timeout_s
        )
        log.info("slack: Socket Mode connected")

    async def listen(self) -> None:
        """Serve until ``disconnect`` (aiohttp and the Socket Mode client run their own tasks)."""
        await self._stopped.wait()

    async def disconnect(self) -> None:
        """Stop the HTTP server or Socket Mode client and close connections. Idempotent."""
        self._stopped.set()
        await self.tokens.close()
        await self.outbound.close()
        runner, self._runner = self._runner, None
        socket, self._socket = self._socket, None
        session, self._session = self._session, None
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        if runner is not None:
            await runner.cleanup()
        if session is not None:
            self.client.session = None
            await session.close()

    # -- replies --------------------------------------------------------------------------

    async def send(self, reply: OutboundReply) -> None:
        """Post a complete reply (split over several messages if long) where it belongs.

        Raises:
            ConnectorError: it could not be delivered after the retries.
        """
        await self.outbound.send(reply)

    async def send_stream(self, stream: ReplyStream) -> None:
        """Show a "thinking" state, then the text as it grows (edits at most every
        ``update_interval_s``), then the final text with its buttons.

        Raises:
            ConnectorError: the final text could not be delivered (the core then stores
                the reply as failed).
        """
        await self.outbound.send_stream(stream)
