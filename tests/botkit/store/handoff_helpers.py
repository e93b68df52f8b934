"""A conversation handed to the agents and taken over, as an agent's send does it, for the
tests of what an agent's message is held to (``append_outbound(held_since=/held_seq=)``)."""

from __future__ import annotations

from conftest import MakeMessage

from botkit.store import ConversationRecord, ConversationStatus, ConversationStore

__all__ = ["HUMAN", "handed_off", "taken_over"]

HUMAN = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)


async def taken_over(store: ConversationStore, cid: int) -> ConversationRecord:
    """What an agent's send does first, in its own transaction."""
    taken = await store.change_conversation_status(
        cid, ConversationStatus.WITH_HUMAN, only_from=HUMAN
    )
    assert taken is not None
    return taken


async def handed_off(store: ConversationStore, make_message: MakeMessage) -> int:
    """A new conversation whose customer asked for a person: ``waiting_human``."""
    first = await store.intake(make_message("/human"), text="/human")
    await store.set_conversation_status(first.conversation.id, ConversationStatus.WAITING_HUMAN)
    return first.conversation.id
