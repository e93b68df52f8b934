"""Bot API calls that deliver replies: paced, retried, and failing with ``ConnectorError``.

* ``RetryAfter`` (HTTP 429): every send pauses for the time Telegram asks, then the call
  is repeated; a reply whose waits add up past ``flood.max_retry_after_s`` fails (the
  pause still holds every other send).
  Telegram's wait is clamped (``botkit.retry.clamp_retry_after``): a negative or
  unreadable one is 1 s, a huge one an hour.
* Timeouts, connection errors and 5xx answers are retried with exponential backoff
  (``botkit.retry.Backoff``, equal jitter, so many chats and replicas do not retry in
  step), ``retry.attempts`` tries in all.
  A timed-out ``sendMessage`` may have arrived; retrying can then show it twice, which
  is better than losing it.
* Anything else (blocked by the user, chat not found, bad request) is permanent: the
  call fails at once with ``ConnectorError`` so the core records the reply as failed.

A draft (``sendMessageDraft``) is a progress frame that the next one replaces: it is
paced like a message (drafts count against the chat's flood limit) but tried once, and
only a refusal is reported (``DraftRefused``), for the caller to stop drafting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from botkit.errors import ConnectorError
from botkit.retry import RandomSource
from connectors.telegram._retry_after import retry_after_seconds
from connectors.telegram.config import RetryPolicy
from connectors.telegram.flood import FloodControl, is_group

__all__ = ["DraftRefused", "Sender", "Target"]

log = logging.getLogger("connectors.telegram")

_MOVED_CHATS = 10_000  # upgraded groups remembered, the oldest forgotten first

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a reply goes: a chat, its forum topic, and the message it answers."""

    chat_id: int
    thread_id: int | None = None
    reply_to_message_id: int | None = None

    @classmethod
    def for_reply(cls, conversation_key: str, reply_to: Mapping[str, str]) -> Target:
        """Where a reply in ``conversation_key`` goes (``"chat"`` or ``"chat:topic"``),
        using the ids of the message it answers; the question is quoted in groups only.

        Raises:
            ConnectorError: the key is not a Telegram chat.
        """
        chat, _, thread = conversation_key.partition(":")
        thread = reply_to.get("thread_id", thread)
        message = reply_to.get("message_id")
        try:
            chat_id = int(reply_to.get("chat_id", chat))
            thread_id = int(thread) if thread else None
            quote = int(message) if message and is_group(chat_id) else None
        except ValueError:
            raise ConnectorError(f"telegram: {conversation_key!r} is not a Telegram chat") from None
        return cls(chat_id, thread_id, quote)


class DraftRefused(ConnectorError):
    """The Bot API refused a draft: the method is missing (an older Bot API server,
    ``method_missing``) or drafts are refused for this chat."""

    def __init__(self, reason: str, *, method_missing: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.method_missing = method_missing


def _method_missing(exc: TelegramError) -> bool:
    """Whether ``exc`` says the Bot API server does not know the method: 404 "Not Found"
    (python-telegram-bot reads a 404 as ``InvalidToken``, but the token just worked)
    or a 400 "method not found" from some proxies and local servers."""
    text = str(exc).lower()
    if isinstance(exc, EndPointNotFound | InvalidToken):
        return "not found" in text
    return isinstance(exc, BadRequest) and "method" in text and "not found" in text


class Sender:
    """Sends, edits and chat actions through ``FloodControl`` with retries."""

    def __init__(
        self,
        bot: Bot,
        flood: FloodControl,
        retry: RetryPolicy,
        redact: Callable[[str], str],
        *,
        link_previews: bool = False,
    ) -> None:
        self.bot = bot
        # Off by default: Telegram would show a rich preview of any URL in a reply, one
        # a customer or a prompt-injected model put there included.
        self._previews = None if link_previews else LinkPreviewOptions(is_disabled=True)
        self.flood = flood
        self.retry = retry
        self._waits = retry.backoff()
        self.rng: RandomSource | None = None  # the jitter's random source (tests seed one)
        self._redact = redact
        # Groups upgraded to supergroups: old chat id -> new one. Sends to the old id
        # fail with ChatMigrated for good, so they go to the new one straight away.
        self._moved: OrderedDict[int, int] = OrderedDict()
        # Told what was refused when the Bot API rejects the token (401) on a send: the
        # connector reports the channel down (``Connector.health``).
        self.on_token_rejected: Callable[[str], None] | None = None
        # Told of each upgrade a refused send reveals (``ChatMigrated``), once: the
        # connector moves the conversation to the new chat's key.
        self.on_moved: Callable[[int, int], None] | None = None

    def chat_moved(self, old: int, new: int) -> bool:
        """Remember that group ``old`` is now supergroup ``new`` (Telegram's
        ``migrate_to_chat_id``): replies to ``old`` are sent to ``new``. Returns
        whether this was news."""
        if old == new:
            return False
        known = self._moved.get(old) == new
        self._moved[old] = new
        self._moved.move_to_end(old)
        while len(self._moved) > _MOVED_CHATS:
            self._moved.popitem(last=False)
        return not known

    def current_chat(self, chat_id: int) -> int:
        """Where a message to ``chat_id`` goes now (its supergroup if it was upgraded)."""
        return self._moved.get(chat_id, chat_id)

    async def send_message(
        self,
        target: Target,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        quote: bool = False,
    ) -> int:
        """Send ``text`` (plain, no parse mode); returns the new message's id."""
        reply = (
            ReplyParameters(target.reply_to_message_id, allow_sending_without_reply=True)
            if quote and target.reply_to_message_id is not None
            else None
        )

        async def op(chat_id: int) -> int:
            message = await self.bot.send_message(
                chat_id,
                text,
                message_thread_id=target.thread_id,
                reply_parameters=reply,
                reply_markup=markup,
                link_preview_options=self._previews,
            )
            return message.message_id

        chat_id = self.current_chat(target.chat_id)
        try:
            return await self._in_chat(
                chat_id, "sendMessage", lambda: op(chat_id), follow_migration=True
            )
        except ChatMigrated as exc:
            # The group was upgraded: the reply goes to the supergroup, and so does
            # every later one (the pending reply is not lost).
            new = int(exc.new_chat_id)
            log.info("telegram: chat %s is now supergroup %s; sending there", chat_id, new)
            if self.chat_moved(target.chat_id, new) and self.on_moved is not None:
                self.on_moved(target.chat_id, new)
            return await self._in_chat(new, "sendMessage", lambda: op(new))

    async def edit_message(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Replace a sent message's text (and keyboard). ``chat_id`` may be a group's
        old id: the message is in its supergroup (``send_message`` followed it)."""
        chat_id = self.current_chat(chat_id)

        async def op() -> None:
            try:
                await self.bot.edit_message_text(
                    text,
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=markup,
                    link_preview_options=self._previews,
                )
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise  # else: a retried edit that had arrived; nothing to do

        await self._in_chat(chat_id, "editMessageText", op)

    async def send_draft(self, target: Target, draft_id: int, text: str) -> bool:
        """Show ``text`` as the live draft ``draft_id`` in a private chat; returns whether
        it was shown.

        Paced like a message and tried once: a frame lost to a timeout or a 5xx is
        replaced by the next one, sooner than a retry with backoff would be. A
        ``RetryAfter`` answer pauses every send, as for messages, and drops the frame.

        Raises:
            DraftRefused: the server does not have the method, or refuses drafts here.
            ConnectorError: the chat takes nothing from the bot (blocked: 403).
        """
        chat_id = self.current_chat(target.chat_id)
        send = getattr(self.bot, "send_message_draft", None)
        if send is None:  # python-telegram-bot before 22.6, installed past the extra's bound
            raise DraftRefused(
                "python-telegram-bot 22.6 or later is needed for drafts", method_missing=True
            )
        try:
            async with self.flood.chat_turn(chat_id), self.flood.message_slot(chat_id):
                await send(chat_id, draft_id, text, message_thread_id=target.thread_id)
            return True
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            self.flood.pause(seconds)
            log.warning(
                "telegram: sendMessageDraft to chat %s: flood control, waiting %.1fs",
                chat_id,
                seconds,
            )
        except BadRequest as exc:  # a NetworkError subclass, but never transient
            raise DraftRefused(self._short(exc), method_missing=_method_missing(exc)) from None
        except NetworkError as exc:  # timeouts, connection errors, 5xx
            log.info("telegram: sendMessageDraft to chat %s failed: %s", chat_id, self._short(exc))
        except Forbidden as exc:
            # Blocked by the user, deactivated: nothing reaches this chat now, drafts or
            # messages. A delivery failure, not a refusal of drafts: remembered as one,
            # the chat would stream by edits after the customer unblocks the bot.
            raise self._error(f"sendMessageDraft to chat {chat_id}", exc) from None
        except TelegramError as exc:  # 404 (no such method)
            raise DraftRefused(self._short(exc), method_missing=_method_missing(exc)) from None
        return False

    async def typing(self, target: Target) -> None:
        """Show "typing…" once (best effort: a failure is only logged).

        Chat actions are not messages: they do not use up the message limits, but
        they do wait out a ``RetryAfter`` pause.
        """
        try:
            await self.flood.wait_pause()
            await self.bot.send_chat_action(
                self.current_chat(target.chat_id),
                ChatAction.TYPING,
                message_thread_id=target.thread_id,
            )
        except TelegramError as exc:
            log.debug("telegram: typing action failed: %s", self._redact(str(exc)))

    async def send_once(self, target: Target, text: str) -> int:
        """Send ``text`` in one unpaced call without retries (a reply cut off by
        shutdown, marked as such); returns the new message's id. Raises TelegramError."""
        message = await self.bot.send_message(
            self.current_chat(target.chat_id),
            text,
            message_thread_id=target.thread_id,
            link_preview_options=self._previews,
        )
        return message.message_id

    async def edit_once(self, chat_id: int, message_id: int, text: str) -> None:
        """Edit a message's text in one unpaced call without retries (see ``send_once``).
        Raises TelegramError."""
        await self.bot.edit_message_text(
            text,
            chat_id=self.current_chat(chat_id),
            message_id=message_id,
            link_preview_options=self._previews,
        )

    async def answer_callback(self, callback_id: str) -> None:
        """Stop the button's spinner (best effort, with retries)."""

        async def op() -> None:
            await self.bot.answer_callback_query(callback_id)

        try:
            await self._attempts("answerCallbackQuery", self.flood.call_slot, op)
        except ConnectorError as exc:
            log.info("%s", exc)

    async def _in_chat(
        self,
        chat_id: int,
        what: str,
        op: Callable[[], Awaitable[T]],
        *,
        follow_migration: bool = False,
    ) -> T:
        async with self.flood.chat_turn(chat_id):
            return await self._attempts(
                f"{what} to chat {chat_id}",
                lambda: self.flood.message_slot(chat_id),
                op,
                follow_migration=follow_migration,
            )

    async def _attempts(
        self,
        what: str,
        slot: Callable[[], AbstractAsyncContextManager[None]],
        op: Callable[[], Awaitable[T]],
        *,
        follow_migration: bool = False,
    ) -> T:
        failures = 0
        waited = 0.0
        while True:
            try:
                async with slot():
                    return await op()
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                # Before the give-up check: the wait applies to every send, even when this
                # one gives up; sending on during it would only lengthen it (and fail).
                self.flood.pause(seconds)
                waited += seconds
                if waited > self.flood.limits.max_retry_after_s:
                    raise self._error(what, exc, "flood wait too long") from None
                log.warning("telegram: %s: flood control, waiting %.1fs", what, seconds)
            except ChatMigrated as exc:
                if follow_migration:
                    raise  # send_message sends to the new chat
                raise self._error(what, exc) from None
            except BadRequest as exc:  # a NetworkError subclass, but never transient
                raise self._error(what, exc) from None
            except NetworkError as exc:  # timeouts, connection errors, 5xx
                failures += 1
                if failures >= self.retry.attempts:
                    raise self._error(what, exc, f"after {failures} tries") from None
                delay = self._waits.delay(failures, self.rng)
                log.info(
                    "telegram: %s failed (%s); retrying in %.2fs", what, self._short(exc), delay
                )
                await asyncio.sleep(delay)
            except InvalidToken as exc:
                # A 401: the token was revoked meanwhile (a 404 reads the same to
                # python-telegram-bot, but says "Not Found": a method this server lacks).
                if self.on_token_rejected is not None and not _method_missing(exc):
                    self.on_token_rejected(f"{what} refused: {self._short(exc)}")
                raise self._error(what, exc) from None
            except TelegramError as exc:  # blocked by the user, chat not found
                raise self._error(what, exc) from None

    def _short(self, exc: Exception) -> str:
        text, kind = str(exc), type(exc).__name__
        return self._redact(text if text.startswith(kind) else f"{kind}: {text}")

    def _error(self, what: str, exc: Exception, note: str = "") -> ConnectorError:
        suffix = f" ({note})" if note else ""
        return ConnectorError(f"telegram: {what} failed{suffix}: {self._short(exc)}")
