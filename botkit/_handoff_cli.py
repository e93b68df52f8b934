"""``botkit handoff``: the conversations waiting for or handled by a human, and handing
one back to the bot, from any machine that reaches the bot's database.

A running bot reads a conversation's status when the next message arrives, so a
conversation released here is answered by the bot from the customer's next message on.
"""

from __future__ import annotations

from datetime import datetime

from botkit._cli_store import argument_text, current_store
from botkit.errors import StoreError
from botkit.store import ConversationStatus, StoreSettings

__all__ = ["list_handoffs", "release"]

_WITH_HUMANS = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)


async def list_handoffs(settings: StoreSettings, limit: int) -> list[str]:
    """One line per conversation a human has (or should take): channel, key, status, when
    it entered that status and when it was last active (UTC); most recently active first."""
    async with current_store(settings) as store:
        found = await store.conversations_with_status(_WITH_HUMANS, limit=limit)
    return [
        f"{c.channel}\t{c.key}\t{c.status}\tsince {_utc(c.status_since)}"
        f"\tactive {_utc(c.updated_at)}"
        for c in found
    ]


def _utc(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


async def release(settings: StoreSettings, channel: str, key: str) -> str:
    """Hand the conversation (``channel``, ``key``) back to the bot.

    Returns:
        What changed, or that the conversation is already with the bot (nothing to do).

    Raises:
        StoreError: no such conversation, or a channel or key that is not UTF-8 text.
    """
    channel = argument_text("channel", channel, "no conversation has it")
    key = argument_text("key", key, "no conversation has it")
    async with current_store(settings) as store:
        conversation = await store.get_conversation(channel, key)
        if conversation is None:
            raise StoreError(f"no conversation {key!r} on channel {channel!r}")
        was = conversation.status
        if was == ConversationStatus.BOT:
            return f"{channel} {key}: already with the bot"
        # Only from the status just read: an agent or the customer may change it meanwhile.
        released = await store.change_conversation_status(
            conversation.id, ConversationStatus.BOT, only_from=(was,)
        )
        if released is None:
            now = await store.conversation_by_id(conversation.id)
            return f"{channel} {key}: changed meanwhile to {now.status}; nothing done"
    return f"{channel} {key}: {was} -> bot"
