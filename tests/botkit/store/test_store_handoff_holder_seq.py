"""Which agent has a conversation does not depend on the hosts' clocks: an agent's
message counts in the hand-off it was stored in by its ``seq`` (``status_seq``), whatever
clock stored it or changed the status. And a conversation from before ``status_changed_at``
(migration 0003) keeps its hand-off's start while agents write in it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clock_helpers import host_clock
from conftest import MakeMessage
from sqlalchemy import update

from botkit.store import ConversationStore
from botkit.store._handoffs import ConversationTakenError, HandoffEndedError
from botkit.store.models import Conversation

TAKE = ["bot", "waiting_human"]


async def _handed_over(store: ConversationStore, make_message: MakeMessage) -> int:
    result = await store.intake(make_message("help"), text="help")
    cid = result.conversation.id
    assert await store.change_conversation_status(cid, "with_human", only_from=TAKE)
    return cid


async def test_a_message_stored_by_a_replica_whose_clock_is_behind_takes_the_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _handed_over(store, make_message)
    with host_clock(timedelta(seconds=-5)):  # Ann's replica: 5 s behind the takeover's
        await store.append_outbound(cid, "Ann here", agent="Ann", exclusive=True)
    assert await store.conversation_agent(cid) == "Ann"
    with pytest.raises(ConversationTakenError) as taken:
        await store.append_outbound(cid, "Bob here", agent="Bob", exclusive=True)
    assert taken.value.agent == "Ann"
    assert [m.text for m in await store.messages_after("web", "conv-1", 0)] == [
        "help",
        "Ann here",
    ]


async def test_the_previous_handoffs_agent_has_no_claim_whatever_their_clock(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _handed_over(store, make_message)
    with host_clock(timedelta(seconds=60)):  # Ann's replica: a minute ahead
        await store.append_outbound(cid, "Ann here", agent="Ann", exclusive=True)
    assert await store.change_conversation_status(cid, "bot", only_from=["with_human"])
    taken = await store.change_conversation_status(cid, "with_human", only_from=TAKE)
    assert taken is not None
    assert await store.conversation_agent(cid) is None  # a new hand-off: nobody has it yet
    await store.append_outbound(cid, "Bob here", agent="Bob", exclusive=True)
    assert await store.conversation_agent(cid) == "Bob"
    # And the release check of an agent giving it back reads the same holder.
    assert await store.change_conversation_status(
        cid, "bot", only_from=["with_human"], only_agent="Bob"
    )


async def test_setting_the_same_status_again_keeps_the_holder(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _handed_over(store, make_message)
    await store.append_outbound(cid, "Ann here", agent="Ann", exclusive=True)
    await store.set_conversation_status(cid, "with_human")  # no change of status
    assert await store.conversation_agent(cid) == "Ann"
    await store.set_conversation_status(cid, "waiting_human")
    await store.set_conversation_status(cid, "with_human")
    assert await store.conversation_agent(cid) is None


async def test_a_conversation_from_before_status_changed_at_keeps_its_handoff(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """A row without ``status_changed_at`` is read as entering its status at its
    ``updated_at``, which every agent's message moved: exclusivity broke and a held send
    was refused as if the hand-off had ended."""
    cid = await _handed_over(store, make_message)
    legacy = update(Conversation).where(Conversation.id == cid).values(status_changed_at=None)
    await store._write(lambda conn: conn.execute(legacy))
    since = (await store.conversation_by_id(cid)).status_since

    await store.append_outbound(cid, "Ann here", agent="Ann", exclusive=True, held_since=since)
    assert (await store.conversation_by_id(cid)).status_since == since
    with pytest.raises(ConversationTakenError):
        await store.append_outbound(cid, "Bob here", agent="Bob", exclusive=True)
    await store.append_outbound(cid, "Ann again", agent="Ann", exclusive=True, held_since=since)
    assert await store.conversation_agent(cid) == "Ann"
    # A real end of the hand-off is still told apart.
    assert await store.change_conversation_status(cid, "bot", only_from=["with_human"])
    with pytest.raises(HandoffEndedError):
        await store.append_outbound(cid, "late", agent="Ann", held_since=since)
