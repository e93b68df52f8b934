"""Filling in an inbound message's language and working-language text after intake.

The bot stores a message before its language is known (intake must be fast and
idempotent); the language middleware learns the language and the translation later, in
the pipeline. ``ConversationStore`` has no public method for that yet (its messages are
append-only except for status), so this module runs the one UPDATE in the store's own
write transaction. It only ever fills the two columns, only on inbound messages.
TODO(store): replace with a public ``ConversationStore.set_message_language``.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.events import Direction
from botkit.store import ConversationStore, StoredMessage
from botkit.store import _queries as q
from botkit.store._checks import check_language, check_text
from botkit.store.models import Message

__all__ = ["set_inbound_language"]

_UNSET = object()


async def set_inbound_language(
    store: ConversationStore,
    message_id: int,
    *,
    language: str | object | None = _UNSET,
    working_text: str | object | None = _UNSET,
) -> StoredMessage:
    """Set the language and/or the working-language text of an inbound message.

    Arguments left out are not changed.

    Raises:
        StoreError: no such inbound message, a malformed tag, unstorable text.
    """
    values: dict[str, str | None] = {}
    if language is not _UNSET:
        if language is not None and not isinstance(language, str):
            raise StoreError("language must be a string or None")
        check_language(language)
        values["language"] = language
    if working_text is not _UNSET:
        if working_text is not None and not isinstance(working_text, str):
            raise StoreError("working text must be a string or None")
        if working_text is not None:
            check_text(working_text, "working text")
        values["working_text"] = working_text
    if not values:
        raise StoreError("nothing to set")

    def work(conn: Connection) -> StoredMessage:
        stmt = (
            update(Message)
            .where(Message.id == message_id, Message.direction == Direction.INBOUND.value)
            .values(**values)
            .returning(*q.MESSAGE_COLS)
        )
        row = conn.execute(stmt).first()
        if row is None:
            raise StoreError(f"no inbound message with id {message_id}")
        return q.to_message(row)

    return await store._write(work)
