"""``TelegramConnector``: a Telegram bot over long polling or a secured webhook.

Built on python-telegram-bot's ``Bot`` (the Bot API client); updates are fetched and
dispatched here rather than by its ``Application``, whose ``Updater`` confirms updates
as soon as they are fetched and whose handlers swallow errors: this connector confirms
an update only after ``core.submit_or_keep`` stored it, or kept it on disk while the
database is away (see ``polling``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError
from telegram.request import HTTPXRequest

from botkit.channel import CoreHandle, ReplyStream
from botkit.errors import ConnectorError, MessageRejectedError, StoreError
from botkit.events import InboundMessage, OutboundReply
from botkit.http_server import server_runner
from botkit.log_context import spawn_detached
from botkit.throttled_warning import ThrottledWarning
from connectors.base import Connector, ConnectorConfig
from connectors.telegram import polling, texts
from connectors.telegram._retry_after import SaneRetryAfterRequest
from connectors.telegram._shape import problem, update_problem
from connectors.telegram.album import AlbumCollector
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.config import TelegramConfig
from connectors.telegram.draft import DraftSupport, DraftWriter
from connectors.telegram.flood import FloodControl
from connectors.telegram.polling import (
    ALLOWED_UPDATES,
    TOKEN_REJECTED,
    WHAT_TO_DO,
    Poller,
    RetryLater,
)
from connectors.telegram.redact import TokenRedactor
from connectors.telegram.sender import Sender, Target
from connectors.telegram.stream import ReplyWriter, StreamWriter, stream_reply
from connectors.telegram.updates import CHANNEL, Action, BotIdentity, Kind, classify, unreadable
from connectors.telegram.webhook import BadUpdate, ChannelDown, create_webhook_app

__all__ = ["TelegramConnector"]

log = logging.getLogger("connectors.telegram")

_SEEN = 10_000  # update ids answered by the connector itself, remembered against repeats
_TABLES = {Kind.START: texts.GREETING, Kind.HELP: texts.HELP}


class TelegramConnector(Connector[TelegramConfig]):
    """Private chats and groups of one Telegram bot. See docs/telegram.md."""

    name: ClassVar[str] = CHANNEL
    Config: ClassVar[type[ConnectorConfig]] = TelegramConfig

    def __init__(self, config: TelegramConfig, core: CoreHandle) -> None:
        super().__init__(config, core)
        hook_secret = config.webhook.secret_token
        self.redactor = TokenRedactor(
            config.token.get_secret_value(),
            *([hook_secret.get_secret_value()] if hook_secret is not None else []),
        )
        self.codec = ButtonCodec()
        self.flood = FloodControl(config.flood)
        self.drafts = DraftSupport(config.streaming)
        self.me: BotIdentity | None = None
        self.port: int | None = None  # the webhook server's port once connected
        self._bot: Bot | None = None
        self._sender: Sender | None = None
        self._poller: Poller | None = None
        self._poll_task: asyncio.Task[None] | None = None
        # Webhook mode: listen() asks getMe every TOKEN_RECHECK_S (polling asks
        # getUpdates itself), so an idle bot's revoked token is found out too.
        self._recheck_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._requests: tuple[HTTPXRequest, ...] = ()
        self._stopped = asyncio.Event()
        self._seen: OrderedDict[int, None] = OrderedDict()
        # (chat, topic, kind) -> when it was last greeted or helped (loop time).
        self._local_replies: OrderedDict[tuple[int, int | None, Kind], float] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        # The greeting or help being sent to each chat: the next one waits for it, so
        # they arrive in the order asked (each first asks the core who has the chat).
        self._greeting_now: dict[int, asyncio.Task[None]] = {}
        self._sending: set[asyncio.Task[Any]] = set()
        # One line a minute: a relay that garbles every update must not flood the log.
        self.albums = AlbumCollector(self._store)
        self._commands = config.group_command_names()
        self._unreadable = ThrottledWarning(log, "telegram: update %s cannot be read (%s); skipped")

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Check the token (``getMe``), then set up polling or the webhook.

        Raises:
            ConnectorError: the token is rejected, the API is unreachable, or the webhook
                server cannot listen.
        """
        if self._bot is not None:
            return
        self.redactor.install()  # before the Bot exists: it logs its URL when created
        cfg = self.config
        t = cfg.request_timeout_s
        # Sends to many chats run in parallel; getUpdates has its own connection, so
        # polling never waits for sends.
        # SaneRetryAfterRequest: a garbled 429 wait would make PTB raise, not RetryAfter.
        sends = SaneRetryAfterRequest(
            64, read_timeout=t, write_timeout=t, connect_timeout=t, pool_timeout=t
        )
        polls = SaneRetryAfterRequest(1, read_timeout=t, write_timeout=t, connect_timeout=t)
        self._requests = (sends, polls)
        bot = Bot(
            cfg.token.get_secret_value(),
            base_url=cfg.base_url,
            base_file_url=cfg.base_file_url,
            request=sends,
            get_updates_request=polls,
        )
        try:
            await self._start(bot)
        except BaseException:
            # Whatever stopped it (a Telegram error, another error, a cancellation while
            # setWebhook ran): no webhook is left serving, with a closed bot behind it.
            await self._stop_webhook()
            self._sender, self._poller = None, None
            await self._close_bot(bot)
            self.redactor.uninstall()
            raise
        self._bot = bot
        self._stopped.clear()
        # The token was just accepted (getMe): a channel that went down before a
        # disconnect serves again.
        self.health.back()

    async def _start(self, bot: Bot) -> None:
        host = urlsplit(self.config.base_url).hostname
        try:
            await bot.initialize()
        except InvalidToken:
            # Fail fast at start: the operator is watching the deploy (docs/telegram.md).
            raise ConnectorError(TOKEN_REJECTED) from None
        except TelegramError as exc:
            raise ConnectorError(
                f"telegram: cannot reach the Bot API at {host}: {self._text(exc)}"
            ) from None
        user = bot.bot
        self.me = BotIdentity(user.id, user.username or "")
        self._sender = Sender(
            bot,
            self.flood,
            self.config.retry,
            self.redactor.redact,
            link_previews=self.config.link_previews,
        )
        self._sender.on_moved = self._moved_on_send
        self._sender.on_token_rejected = self._token_rejected
        try:
            if self.config.mode == "polling":
                # getUpdates is refused while a webhook is set.
                await bot.delete_webhook(drop_pending_updates=False)
                self._poller = Poller(
                    bot,
                    self.config,
                    self._handle_update,
                    self.redactor.redact,
                    skip=self._skip,
                    health=self.health,
                )
            else:
                await self._serve_webhook()
                hook = self.config.webhook
                assert hook.url is not None and hook.secret_token is not None  # config checked
                await bot.set_webhook(
                    hook.url,
                    secret_token=hook.secret_token.get_secret_value(),
                    allowed_updates=list(ALLOWED_UPDATES),
                    max_connections=hook.max_connections,
                    drop_pending_updates=False,
                )
        except TelegramError as exc:
            await self._stop_webhook()
            raise ConnectorError(
                f"telegram: setting up {self.config.mode} failed: {self._text(exc)}"
            ) from None
        log.info("telegram: connected as @%s (%s)", self.me.username, self.config.mode)

    def make_app(self) -> web.Application:
        """The webhook application (tests may serve it themselves)."""
        return create_webhook_app(self.config.webhook, self._handle_json)

    async def _serve_webhook(self) -> None:
        hook = self.config.webhook
        runner = server_runner(self.make_app(), shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, hook.host, hook.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConnectorError(
                f"telegram: cannot listen on {hook.host}:{hook.port}: {exc}"
            ) from exc
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else hook.port
        log.info("telegram: webhook served on %s:%s%s", hook.host, self.port, hook.path)

    async def listen(self) -> None:
        """Poll (polling mode) or serve (webhook mode) until ``disconnect``.

        Raises:
            ConnectorError: polling was refused (token revoked); not connected.
        """
        if self._bot is None:
            raise ConnectorError("telegram: listen() before connect()")
        if self._poller is None:
            # Webhook mode: Telegram calls us, so nothing else would find out that the
            # token was revoked while no reply is sent. Detached: a send's refusal
            # must not leave its message's tag on the lines of this long-lived loop.
            watch = spawn_detached(self._watch_token(), name="telegram-token")
            self._recheck_task = watch
            try:
                await watch
            except asyncio.CancelledError:
                if not self._stopped.is_set():
                    raise  # our own caller was cancelled
            return
        self._poll_task = asyncio.create_task(self._poller.run(), name="telegram-poll")
        try:
            await self._poll_task
        except asyncio.CancelledError:
            if not self._stopped.is_set():
                raise  # our own caller was cancelled

    async def hand_over_held(self) -> None:
        """Stop input, store the albums being gathered and confirm what was stored
        (``Bot`` calls it at shutdown while it still takes messages). Safe to call
        twice; ``disconnect`` calls it too."""
        self._stopped.set()
        for task in (self._poll_task, self._recheck_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._poll_task = self._recheck_task = None
        # Input stops before held albums are stored: an album item arriving after the
        # flush would start a timer that stores it after this returned, on a stopped core.
        await self._stop_webhook()
        await self.albums.flush_all()  # held albums are stored, then confirmed
        poller, self._poller = self._poller, None
        if poller is not None:
            await poller.confirm()

    async def disconnect(self) -> None:
        """Stop input, let replies being sent finish (``shutdown_grace_s``), close.

        Safe to call twice.
        """
        await self.hand_over_held()
        busy = {t for t in self._sending | self._tasks if t is not asyncio.current_task()}
        if busy:  # replies being sent, greetings: let them finish within the grace
            await asyncio.wait(busy, timeout=self.config.shutdown_grace_s)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        bot, self._bot, self._sender = self._bot, None, None
        if bot is not None:
            await self._close_bot(bot)
            self.redactor.uninstall()

    async def _stop_webhook(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _close_bot(self, bot: Bot) -> None:
        with contextlib.suppress(Exception):
            await bot.shutdown()
        # Bot.shutdown skips a bot whose initialize() failed; close its clients anyway.
        for request in self._requests:
            with contextlib.suppress(Exception):
                await request.shutdown()
        self._requests = ()

    # -- a token rejected at run time ----------------------------------------------------

    def _token_rejected(self, refused: str) -> None:
        """A send found the token rejected (revoked in @BotFather): the channel is down
        until the Bot API takes it again. Polling asks again by itself; in webhook mode,
        listen() asks getMe every ``TOKEN_RECHECK_S``."""
        self.health.down(f"{TOKEN_REJECTED}: {refused}; {WHAT_TO_DO}")

    async def _watch_token(self) -> None:
        """Webhook mode, until ``disconnect``: ask getMe every ``TOKEN_RECHECK_S`` (one
        small call a minute); a refusal takes the channel down (again: the reminder),
        an answer brings it back."""
        try:
            while not self._stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), polling.TOKEN_RECHECK_S)
                bot = self._bot
                if bot is None or self._stopped.is_set():
                    return
                try:
                    await bot.get_me()
                except InvalidToken as exc:
                    refused = f"getMe refused: {self._text(exc)}"
                    self.health.down(f"{TOKEN_REJECTED}: {refused}; {WHAT_TO_DO}")
                    continue
                except TelegramError as exc:  # unreachable now: asked again later
                    log.debug("telegram: token check failed: %s", self._text(exc))
                    continue
                self.health.back()
        finally:
            self._recheck_task = None

    # -- input -------------------------------------------------------------------------

    async def _handle_json(self, data: dict[str, Any]) -> None:
        # The sender exists before the webhook is served; connect() has not returned
        # yet then (setWebhook follows), but Telegram, whose webhook still points here
        # after a restart, delivers what it kept as soon as the port listens.
        sender = self._sender
        if sender is None:
            raise RetryLater("not connected")
        if not isinstance(data.get("update_id"), int) or isinstance(data.get("update_id"), bool):
            raise BadUpdate("no integer update_id")
        if not self.health.up:
            # Not taken (503): Telegram keeps the update and sends it again, so it is
            # answered once the token is accepted, instead of stored with no reply.
            raise ChannelDown("the bot token is rejected")
        try:
            update = Update.de_json(data, sender.bot)
        except Exception as exc:  # PTB raises assorted errors on malformed payloads
            # Acknowledged, as polling skips it: an error answer would only make Telegram
            # send it again and again.
            self._skip(data["update_id"], problem(data) or type(exc).__name__)
            return
        held = await self._handle_update(update)
        if held is not None:
            # A photo album's message is answered at once, not once its album is stored:
            # Telegram sends a chat's next update only after this one is answered, so
            # waiting would end every album after its first photo (one answer per photo).
            # The album is held in memory until stored (at most ``max_hold_s``): a crash
            # meanwhile loses it, as Telegram does not send it again (docs/telegram.md).
            held.add_done_callback(self._album_stored)

    def _album_stored(self, done: asyncio.Future[None]) -> None:
        """Log an album that a webhook call answered already but could not be stored."""
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            log.warning("telegram: a photo album could not be stored and is lost: %s", exc)

    def _skip(self, update_id: int, reason: str) -> None:
        """Warn (throttled) about an update that is skipped because it cannot be read;
        ``reason`` names fields and types, never the update's content (customer data)."""
        self._unreadable.warn(update_id, reason)

    async def _handle_update(self, update: Update) -> asyncio.Future[None] | None:
        """Act on one update; returns once it is stored (or needs nothing stored), or,
        for a photo album's message, a future done once its album is stored (``album``):
        the update is confirmed only then.

        Raises:
            RetryLater: the core could not store it now.
        """
        if self.me is None or self._sender is None:  # disconnected meanwhile
            raise RetryLater("not connected")
        reason = update_problem(update)  # webhook and polling alike
        if reason is not None:
            self._skip(update.update_id, reason)
            return None
        try:
            action = classify(
                update, self.me, self.config.group_replies, self.codec, self._commands
            )
        except Exception:  # one odd update must not stop the channel
            log.exception("telegram: update %s could not be read; skipped", update.update_id)
            return None
        if action.kind is Kind.MIGRATED:
            assert action.target is not None and action.moved_to is not None
            log.info(
                "telegram: chat %s is now supergroup %s", action.target.chat_id, action.moved_to
            )
            self._sender.chat_moved(action.target.chat_id, action.moved_to)
            # Before the update is confirmed, so the supergroup's next update finds the
            # conversation there. Both service messages (one in each chat) ask; the
            # second finds it moved already.
            await self._move_conversation(action.target.chat_id, action.moved_to)
        if action.kind is Kind.SUBMIT:
            assert action.message is not None
            message = self._in_current_chat(action.message)
            if action.album is not None:
                return self.albums.add(action.album, action.update_id, message)
            await self._store(message)
        if action.callback_id is not None:
            self._spawn(self._sender.answer_callback(action.callback_id))
        if (
            action.kind in _TABLES
            and self._first_time(action.update_id)
            and self._local_reply_due(action)
        ):
            self._reply_locally_in_order(action)
        return None

    async def _move_conversation(self, old: int, new: int) -> None:
        """Best effort: the conversation of group ``old`` continues under supergroup
        ``new``'s key (``CoreHandle.move_conversation``). A group has no forum topics,
        so its one conversation is keyed by the chat id alone."""
        try:
            await self.core.move_conversation(CHANNEL, str(old), str(new))
        except Exception as exc:  # the store is away: replies still reach the supergroup
            log.warning(
                "telegram: the conversation of chat %s could not follow it to %s: %s",
                old, new, exc,
            )  # fmt: skip

    def _moved_on_send(self, old: int, new: int) -> None:
        """A send was refused because group ``old`` became supergroup ``new`` (and no
        service message said so before): its conversation follows, in the background,
        as the send that found out does not wait for the store."""
        self._spawn(self._move_conversation(old, new))

    def _in_current_chat(self, message: InboundMessage) -> InboundMessage:
        """``message`` under the key of its chat's supergroup when the chat is a group
        known to be upgraded (one sent just before the upgrade, delivered after it):
        it belongs to the conversation that moved there."""
        assert self._sender is not None
        chat, sep, thread = message.conversation_key.partition(":")
        try:
            now = self._sender.current_chat(int(chat))
        except ValueError:
            return message
        if str(now) == chat:
            return message
        return dataclasses.replace(message, conversation_key=f"{now}{sep}{thread}")

    async def _store(self, message: InboundMessage) -> None:
        try:
            # Kept on disk while the database is away: Telegram gives a webhook's
            # update up after some failed tries (polling would hold it for 24 h).
            receipt = await self.core.submit_or_keep(message)
        except (StoreError, MessageRejectedError) as exc:
            raise RetryLater(str(exc)) from exc
        if receipt is not None and receipt.duplicate:
            log.debug("telegram: %s already stored", message.idempotency_key)

    def unreadable_reply(self, message: InboundMessage) -> tuple[str, str] | None:
        """What the bot answers to ``message`` when it cannot read it (a photo, a
        location: ``updates.unreadable``), as (text, language): "I can only read text"
        in the customer's Telegram language; None for a message the bot reads.

        The core asks (``Bot``) and gives this answer only when no human agent has the
        conversation where that is decided (the message is stored either way): a
        decision here, before storing it, would lose the photo to an agent who took the
        conversation over just after.
        """
        if not unreadable(message):
            return None
        language = message.contact.language_hint
        return texts.pick_tagged(texts.UNSUPPORTED, language, self.config.unsupported)

    async def fetch_file(self, ref: str, *, max_bytes: int) -> bytes:
        """A file a customer sent (its ``file_id``), for the agent who opens it
        (``botkit.channel.FileSource``). The Bot API serves files of up to 20 MB.

        Raises:
            ConnectorError: not connected, no such file, too big, or Telegram failed.
        """
        bot = self._bot
        if bot is None:
            raise ConnectorError("telegram: not connected")
        try:
            file = await bot.get_file(ref)
            if file.file_size is not None and file.file_size > max_bytes:
                raise ConnectorError(f"telegram: the file is over {max_bytes} bytes")
            data = await file.download_as_bytearray()
        except (TelegramError, RuntimeError) as exc:  # RuntimeError: an answer without a path
            # Cut and redacted: an error page may quote the file URL, token included.
            reason = self._text(exc)[:300]
            raise ConnectorError(f"telegram: the file could not be fetched: {reason}") from None
        if len(data) > max_bytes:
            raise ConnectorError(f"telegram: the file is over {max_bytes} bytes")
        return bytes(data)

    def _first_time(self, update_id: int) -> bool:
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        return True

    def _local_reply_due(self, action: Action) -> bool:
        """Whether the chat (topic) may get this greeting or help text now: at most
        one of each per ``local_reply_interval_s``."""
        assert action.target is not None
        key = (action.target.chat_id, action.target.thread_id, action.kind)
        now = asyncio.get_running_loop().time()
        last = self._local_replies.get(key)
        if last is not None and now - last < self.config.local_reply_interval_s:
            return False
        self._local_replies[key] = now
        self._local_replies.move_to_end(key)
        while len(self._local_replies) > _SEEN:
            self._local_replies.popitem(last=False)
        return True

    async def _reply_locally(self, action: Action) -> None:
        assert action.target is not None and self._sender is not None
        if not self.health.up:
            return  # the token is rejected: the greeting would be refused (and logged)
        target = action.target
        chat = self._sender.current_chat(target.chat_id)  # an upgraded group's: moved
        key = str(chat) if target.thread_id is None else f"{chat}:{target.thread_id}"
        try:
            if await self.core.with_human(CHANNEL, key):
                return  # the agent's conversation: the bot does not greet in it
        except Exception as exc:  # the store is away: greet, as before it was asked
            log.info("telegram: could not tell who has %s: %s", key, exc)
        cfg = self.config
        overrides = {Kind.START: cfg.greeting, Kind.HELP: cfg.help}
        text = texts.pick(_TABLES[action.kind], action.language, overrides[action.kind])
        try:
            await ReplyWriter(self._sender, action.target).show(text)
        except ConnectorError as exc:
            log.warning("%s", exc)

    def _reply_locally_in_order(self, action: Action) -> None:
        assert action.target is not None
        chat, before = action.target.chat_id, self._greeting_now.get(action.target.chat_id)

        async def after_the_one_before() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            await self._reply_locally(action)

        task = self._spawn(after_the_one_before())
        self._greeting_now[chat] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._greeting_now.get(chat) is done:
                del self._greeting_now[chat]

        task.add_done_callback(forget)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- output ------------------------------------------------------------------------

    async def send(self, reply: OutboundReply) -> None:
        """Deliver a complete reply (split if long; quick replies on the last part).

        Raises:
            ConnectorError: it could not be delivered.
        """
        writer = self._writer(reply.conversation_key, reply.reply_to)
        with self._sending_task():
            await writer.show(reply.text, self.codec.keyboard(reply.buttons))

    async def send_stream(self, stream: ReplyStream) -> None:
        """Stream a reply: drafts in private chats (``streaming = "auto"``), else a first
        message and edits; an update at most once per ``edit_interval_s``.

        Raises:
            ConnectorError: the complete reply could not be delivered.
        """
        messages = self._writer(stream.conversation_key, stream.reply_to)
        writer: StreamWriter = messages
        if self.drafts.usable(messages.target.chat_id):
            writer = DraftWriter(messages, self.drafts, lambda: stream.superseded)
        with self._sending_task():
            await stream_reply(
                stream,
                writer,
                self.codec,
                edit_interval=self.config.edit_interval_s,
                typing_interval=self.config.typing_interval_s,
            )

    @contextlib.contextmanager
    def _sending_task(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._sending.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._sending.discard(task)

    def _writer(self, conversation_key: str, reply_to: dict[str, str]) -> ReplyWriter:
        if self._sender is None:
            raise ConnectorError("telegram: not connected")
        return ReplyWriter(self._sender, Target.for_reply(conversation_key, reply_to))

    def _text(self, exc: BaseException) -> str:
        return self.redactor.redact(f"{type(exc).__name__}: {exc}")
