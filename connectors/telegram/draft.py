"""Streaming a reply in a private chat as a live draft (``sendMessageDraft``).

A draft is an ephemeral preview that Telegram shows at the bottom of the chat, animated
as it grows, until the bot sends a message there (clients then drop it) or 30 seconds
pass. So the draft only previews; what stays is sent exactly as the edit path leaves
it: ``DraftWriter`` wraps a ``ReplyWriter`` and finishes through it, so the messages,
their split, the quoted message, the buttons and the recorded message ids are the same.

* While the reply grows, each 4,096-character part that is complete (the text has run
  past it) is sent as a message at once; only the last part is a draft. Without that a
  long reply would show only its last part while it streams.
* Each part has its own draft id: after a message the next part's draft starts fresh
  instead of animating from the previous part's text.
* A refusal (an older Bot API server without the method, or drafts refused in the
  chat) switches the reply to the edit path on the spot: what the draft showed is sent
  as a message and edited from then on. ``DraftSupport`` remembers the refusal, so
  later replies go straight to edits, and logs it once.
* Cut off by shutdown, the reply ends as on the edit path: what the draft showed is
  sent as a message with " …" (which also ends the draft). Cut off by an agent's
  takeover, nothing is sent after the agent's message: it ends the draft, and the last
  message already sent, if any, gets " …". No draft follows the takeover either (it
  would show below the agent's message): ``cut_off`` is asked before each one. The
  core marks the takeover before it sends the agent's message, and a draft asked for
  before that takes its place in the chat's send queue ahead of the message.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from telegram import InlineKeyboardMarkup

from connectors.telegram.flood import is_group
from connectors.telegram.sender import DraftRefused, Sender, Target
from connectors.telegram.stream import INTERRUPTED_MARK, ReplyWriter

__all__ = ["DraftSupport", "DraftWriter"]

log = logging.getLogger("connectors.telegram")

_REFUSING_CHATS = 10_000  # chats remembered as refusing drafts, the oldest forgotten first
# Draft ids are per chat and topic; a random base per reply keeps two replies streaming
# in one chat apart, and leaves room for one id per part.
_DRAFT_ID_SPAN = 1 << 20


class DraftSupport:
    """Where drafts are used (``streaming`` setting, private chats only), learning from
    the Bot API's refusals; one per connector.

    ``"auto"`` remembers a refusal (for the server, or for the chat) and logs it once;
    ``"draft"`` tries drafts again on every reply and logs each refusal, for a
    deployment that expects drafts to work and wants to see every time they do not.
    """

    def __init__(self, streaming: Literal["auto", "draft", "edit"]) -> None:
        self.streaming = streaming
        self.missing: str | None = None  # why the server cannot draft at all
        self._refusing: OrderedDict[int, None] = OrderedDict()

    def usable(self, chat_id: int) -> bool:
        """Whether a reply to ``chat_id`` streams as drafts."""
        if self.streaming == "edit" or is_group(chat_id):  # drafts: private chats only
            return False
        return self.streaming == "draft" or (self.missing is None and chat_id not in self._refusing)

    def refused(self, chat_id: int, exc: DraftRefused) -> None:
        """Remember a refusal and say so (see the class docstring)."""
        if exc.method_missing:
            if self.missing is None or self.streaming == "draft":
                log.warning(
                    "telegram: the Bot API server has no sendMessageDraft (%s); replies "
                    "stream by edits%s",
                    exc.reason,
                    "" if self.streaming == "draft" else " from now on",
                )
            self.missing = exc.reason
            return
        if chat_id not in self._refusing or self.streaming == "draft":
            log.warning(
                "telegram: drafts refused in chat %s (%s); the reply streams by edits",
                chat_id,
                exc.reason,
            )
        self._refusing[chat_id] = None
        self._refusing.move_to_end(chat_id)
        while len(self._refusing) > _REFUSING_CHATS:
            self._refusing.popitem(last=False)


class DraftWriter:
    """One reply in a private chat: drafts while it grows, messages when complete."""

    def __init__(
        self,
        messages: ReplyWriter,
        support: DraftSupport,
        cut_off: Callable[[], bool] = lambda: False,
    ) -> None:
        self.messages = messages
        self.sender: Sender = messages.sender
        self.target: Target = messages.target
        self._support = support
        self._cut_off = cut_off  # an agent took the conversation over
        self._base = random.randrange(1, (1 << 31) - _DRAFT_ID_SPAN)
        self._drafting = True  # False once a refusal switched the reply to the edit path
        self._draft: tuple[int, str] | None = None  # (part index, text) on screen

    @property
    def message_ids(self) -> list[int]:
        return self.messages.message_ids

    @property
    def shows_progress(self) -> bool:
        return self._drafting and self._draft is not None

    async def progress(self, text: str) -> bool:
        if not self._drafting:
            return await self.messages.progress(text)
        parts = self.messages.parts(text)
        if not parts or self._cut_off():
            return False
        done, tail = parts[:-1], parts[-1]
        called = False
        if self.messages.parts_change(done):
            await self.messages.show_parts(done)
            self._draft = None  # the message ended the draft on screen
            called = True
        if self._draft == (len(done), tail) or self._cut_off():
            return called
        try:
            if await self.sender.send_draft(self.target, self._base + len(done), tail):
                self._draft = (len(done), tail)
        except DraftRefused as exc:
            self._support.refused(self.target.chat_id, exc)
            self._drafting = False
            self._draft = None
            await self.messages.show(text)  # on screen as messages, edited from now on
        return True

    def finish_edits(self, text: str, buttons: bool) -> bool:
        # A draft is replaced by a new message, which flood control paces by itself.
        return not self._drafting and self.messages.finish_edits(text, buttons)

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None) -> None:
        await self.messages.finish(text, markup)  # exactly what the edit path leaves

    async def mark_interrupted(self, *, takeover: bool) -> bool:
        """See the module docstring. One call, unpaced and without retries; skipped
        while Telegram asked for a pause. Returns whether a message was sent or edited."""
        if takeover or self._draft is None or not self._drafting:
            return await self.messages.mark_interrupted()
        if self.sender.flood.paused:
            return False
        shown = self._draft[1] + INTERRUPTED_MARK
        message_id = await self.sender.send_once(self.target, shown)
        self.messages.record(message_id, shown)
        self._draft = None
        return True
