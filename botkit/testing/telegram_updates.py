"""Telegram update payloads for tests, shaped like the ones the Bot API sends.

Used with ``botkit.testing.fake_telegram.FakeTelegram`` (scripted ``getUpdates``
batches) or posted directly to a webhook. Entities are computed like Telegram does,
with offsets in UTF-16 code units.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

__all__ = ["UpdateFactory", "utf16_len"]

_MENTION = re.compile(r"(?<!\w)@[A-Za-z0-9_]{3,64}")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts text and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


class UpdateFactory:
    """Builds update payloads like Telegram's (entities with UTF-16 offsets included).

    Private chats have positive ids (the user's id), groups negative ones.
    """

    def __init__(self, *, bot_id: int, bot_username: str, first_update_id: int = 500_000) -> None:
        self.bot = {"id": bot_id, "is_bot": True, "first_name": "Botkit", "username": bot_username}
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)

    def chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Ann"}
        return {"id": chat_id, "type": "supergroup", "title": "Customers"}

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        language_code: str | None = "en",
        reply_to_bot: bool = False,
        thread_id: int | None = None,
        extra: dict[str, Any] | None = None,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """A ``message`` update; ``extra`` adds fields (a sticker, a caption...)."""
        user: dict[str, Any] = {
            "id": user_id or (chat_id if chat_id > 0 else 4242),
            "is_bot": False,
            "first_name": "Ann",
        }
        if language_code is not None:
            user["language_code"] = language_code
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": user,
        }
        if text is not None:
            msg["text"] = text
            entities = _entities(text)
            if entities:
                msg["entities"] = entities
        if reply_to_bot:
            msg["reply_to_message"] = {
                "message_id": 1,
                "date": int(time.time()),
                "chat": self.chat(chat_id),
                "from": self.bot,
                "text": "an earlier answer",
            }
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        msg.update(extra or {})
        uid = next(self._update_ids) if update_id is None else update_id
        return {"update_id": uid, "message": msg}

    def sticker(self, chat_id: int, **kw: Any) -> dict[str, Any]:
        sticker = {
            "file_id": "CAAC-sticker",
            "file_unique_id": "st1",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
            "emoji": "\U0001f44d",
        }
        return self.message(chat_id, extra={"sticker": sticker}, **kw)

    def photo(self, chat_id: int, caption: str | None = None, **kw: Any) -> dict[str, Any]:
        sizes = [
            {
                "file_id": f"ph{w}",
                "file_unique_id": f"u{w}",
                "width": w,
                "height": w,
                "file_size": w * 40,
            }
            for w in (90, 320, 800)
        ]
        extra: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            extra["caption"] = caption
            entities = _entities(caption)
            if entities:  # Telegram marks @mentions in captions as in texts
                extra["caption_entities"] = entities
        return self.message(chat_id, extra=extra, **kw)

    def voice(self, chat_id: int, **kw: Any) -> dict[str, Any]:
        voice = {"file_id": "vc1", "file_unique_id": "vu1", "duration": 3, "mime_type": "audio/ogg"}
        return self.message(chat_id, extra={"voice": voice}, **kw)

    def callback(
        self, chat_id: int, data: str, *, user_id: int | None = None, update_id: int | None = None
    ) -> dict[str, Any]:
        """A button click on a bot message in ``chat_id``."""
        user = {
            "id": user_id or (chat_id if chat_id > 0 else 4242),
            "is_bot": False,
            "first_name": "Ann",
        }
        query = {
            "id": f"cq{next(self._message_ids)}",
            "from": {**user, "language_code": "en"},
            "chat_instance": "ci-1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": self.chat(chat_id),
                "from": self.bot,
                "text": "pick one",
            },
        }
        uid = next(self._update_ids) if update_id is None else update_id
        return {"update_id": uid, "callback_query": query}


def _entities(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    command = _COMMAND.match(text)
    if command is not None:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for m in _MENTION.finditer(text):
        if command is not None and m.start() < command.end():
            continue
        offset = utf16_len(text[: m.start()])
        found.append({"type": "mention", "offset": offset, "length": utf16_len(m.group())})
    return found
