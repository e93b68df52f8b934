"""``append_outbound(held_seq=...)``: an agent's message is refused when the hand-off its
send took over ended, told by the conversation's ``status_seq`` (its ``last_seq`` when
it entered ``with_human``), which no host's clock moves: a new hand-off is refused even
when a clock gave it the old one's ``status_since`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from conftest import MakeMessage
from handoff_helpers import handed_off, taken_over
from sqlalchemy import update
from sqlalchemy.engine import Connection

from botkit.store import ConversationStatus, ConversationStore, HandoffEndedError
from botkit.store.models import Conversation


async def test_the_takeover_record_carries_the_seq_it_entered_its_status_at(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    assert taken.status_seq == 1  # after the customer's /human
    await store.append_outbound(
        cid, "Ana here.", agent="Ana", held_since=taken.status_since, held_seq=taken.status_seq
    )
    await store.intake(make_message("Thanks"), text="Thanks")
    again = await taken_over(store, cid)  # with_human stays with_human: the same hand-off
    assert (again.status_seq, again.last_seq) == (1, 3)
    stored = await store.append_outbound(cid, "More?", agent="Ana", held_seq=again.status_seq)
    assert stored.seq == 4
    assert (await store.conversation_by_id(cid)).status_seq == 1


async def test_a_new_hand_off_with_the_old_ones_time_is_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """Released, the customer writes, handed over and taken again, on a host whose clock
    gives the new hand-off the old one's time: only ``status_seq`` tells them apart."""
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    await store.set_conversation_status(cid, ConversationStatus.BOT)
    await store.intake(make_message("/human again"), text="/human again")
    await store.set_conversation_status(cid, ConversationStatus.WAITING_HUMAN)
    await taken_over(store, cid)

    def clock_behind(conn: Connection) -> None:
        conn.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(status_changed_at=taken.status_changed_at)
        )

    await store._write(clock_behind)
    now = await store.conversation_by_id(cid)
    assert now.status_since == taken.status_since and now.status_seq == 2

    for held in ({"held_seq": taken.status_seq},
                 {"held_seq": taken.status_seq, "held_since": taken.status_since}):  # fmt: skip
        with pytest.raises(HandoffEndedError) as ended:
            await store.append_outbound(cid, "Ana here.", agent="Ana", **held)  # type: ignore[arg-type]
        assert ended.value.status == ConversationStatus.WITH_HUMAN
    assert (await store.conversation_by_id(cid)).last_seq == 2  # nothing stored


async def test_held_seq_alone_refuses_a_released_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    await store.set_conversation_status(cid, ConversationStatus.BOT)
    with pytest.raises(HandoffEndedError):
        await store.append_outbound(cid, "Ana here.", agent="Ana", held_seq=taken.status_seq)
