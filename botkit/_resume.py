"""Rebuild the events of messages a crash stored but never answered.

``submit`` stores a message before its reply is produced, so a process killed in
between leaves it ``received``; a redelivery by the channel is a duplicate and would not
be answered. On start the bot answers such messages itself, if they are recent enough
for an answer to still help.

A message stored in the last moments may not be a crash's leftover at all: during a
rolling restart the previous process is still finishing its replies (for up to its
shutdown grace period), and on a shared database so may another replica. Those are
answered only once that time has passed and they are still unanswered.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from botkit.events import Contact, InboundMessage, utcnow
from botkit.store import ConversationStore
from botkit.store.records import IntakeResult

__all__ = ["unanswered_events"]


async def unanswered_events(
    store: ConversationStore,
    window_seconds: float,
    channels: Collection[str],
    *,
    stored_before: datetime,
) -> list[tuple[InboundMessage, IntakeResult]]:
    """The messages stored within ``window_seconds`` (and before ``stored_before``) and
    never answered, on ``channels`` (a message of a channel not running now is left for
    a later start)."""
    if window_seconds <= 0:
        return []
    found = await store.unanswered(since=utcnow() - timedelta(seconds=window_seconds))
    events = []
    for item in found:
        if item.conversation.channel not in channels or item.message.created_at >= stored_before:
            continue
        contact = item.contact
        message = InboundMessage(
            channel=item.conversation.channel,
            conversation_key=item.conversation.key,
            contact=Contact(contact.channel, contact.external_id, contact.display_name),
            text=item.message.text,
            idempotency_key=item.message.idempotency_key or f"resume:{item.message.id}",
            channel_ids=item.channel_ids,
            received_at=item.received_at or item.message.created_at,
        )
        intake = IntakeResult(
            item.conversation, item.message, duplicate=False, new_conversation=False,
            contact=contact,
        )  # fmt: skip
        events.append((message, intake))
    return events
