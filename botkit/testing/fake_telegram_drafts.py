"""The fake Bot API server with ``sendMessageDraft`` (Bot API 9.5+), validated as
Telegram does: a non-zero ``draft_id``, a private chat the bot knows, 1-4,096 UTF-16
units of text (the empty "Thinking…" placeholder of Bot API 10.0 is refused, as 9.5
servers do: the connector never sends one).

Like a Telegram client, it keeps the live draft of each chat and topic until a message
is sent there or 30 seconds pass (``live_drafts``). ``drafts_supported = False`` makes it
an older Bot API server: the method answers 404 "Not Found".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botkit.testing.fake_telegram import FakeTelegram
from botkit.testing.telegram_updates import utf16_len

__all__ = ["DRAFT_TTL_S", "Draft", "FakeTelegramDrafts"]

DRAFT_TTL_S = 30.0
_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class Draft:
    """One accepted ``sendMessageDraft`` call."""

    chat_id: int
    draft_id: int
    text: str
    thread_id: int | None
    at: float


def _dig(node: object, *keys: str) -> object:
    for key in keys:  # tests push garbled updates too: any level may be the wrong type
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _chats(update: dict[str, Any]) -> list[int]:
    """Ids of the chats an update comes from (the bot knows them from then on)."""
    paths = [(k, "chat", "id") for k in ("message", "edited_message", "channel_post")]
    found = [_dig(update, *path) for path in paths]
    found.append(_dig(update, "callback_query", "message", "chat", "id"))
    return [c for c in found if isinstance(c, int) and not isinstance(c, bool)]


class FakeTelegramDrafts(FakeTelegram):
    """``FakeTelegram`` plus ``sendMessageDraft``; see the module docstring."""

    def __init__(self, token: str, **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self.drafts: list[Draft] = []
        self.drafts_supported = True
        self.known_chats: set[int] = set()
        self._live: dict[tuple[int, int | None], Draft] = {}

    def push(self, *updates: dict[str, Any]) -> None:
        for update in updates:
            self.known_chats.update(_chats(update))
        super().push(*updates)

    def add_batches(self, *batches: Any) -> None:
        batches = tuple(list(b) for b in batches)
        for batch in batches:
            for update in batch:
                self.known_chats.update(_chats(update))
        super().add_batches(*batches)

    def drafts_in(self, chat_id: int) -> list[Draft]:
        return [d for d in self.drafts if d.chat_id == chat_id]

    def live_drafts(self, chat_id: int) -> list[Draft]:
        """Drafts a client would still show in ``chat_id`` now."""
        horizon = time.monotonic() - DRAFT_TTL_S
        return [d for (chat, _), d in self._live.items() if chat == chat_id and d.at > horizon]

    async def _api_sendMessageDraft(self, params: dict[str, Any]) -> tuple[int, Any]:
        if not self.drafts_supported:
            return 404, "Not Found"
        try:
            chat_id = int(params["chat_id"])
            draft_id = int(params["draft_id"])
        except (KeyError, TypeError, ValueError):
            return 400, "Bad Request: chat_id and draft_id must be integers"
        text = str(params.get("text") or "")
        thread = params.get("message_thread_id")
        if draft_id == 0:
            return 400, "Bad Request: draft_id must be non-zero"
        if (refused := self._migrated(chat_id)) is not None:
            return refused
        if chat_id < 0:
            return 400, "Bad Request: TEXTDRAFT_PEER_INVALID"
        if chat_id not in self.known_chats:
            return 400, "Bad Request: chat not found"
        if not text.strip():
            return 400, "Bad Request: text must be non-empty"
        if utf16_len(text) > _MAX_TEXT:
            return 400, "Bad Request: text is too long"
        draft = Draft(chat_id, draft_id, text, thread, time.monotonic())
        self.drafts.append(draft)
        self._live[(chat_id, thread)] = draft
        return 200, True

    async def _api_sendMessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        status, result = await super()._api_sendMessage(params)
        if status == 200:  # a message ends the chat's (topic's) live draft
            self._live.pop((int(params["chat_id"]), params.get("message_thread_id")), None)
        return status, result
