"""An agent's message is stored only while the hand-off its send took over is still on
(``append_outbound(held_since=...)``), checked in the transaction that writes it: a
release landing between the takeover and the message (two transactions) refuses it with
``HandoffEndedError``, nothing stored. Both databases; on PostgreSQL also a release that
holds the row while the message waits for it."""

from __future__ import annotations

import asyncio

import pytest
from conftest import MakeMessage
from handoff_helpers import handed_off, taken_over
from sqlalchemy import text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from botkit.events import utcnow
from botkit.store import ConversationStatus, ConversationStore, HandoffEndedError
from botkit.store import _queries as q
from botkit.store.models import Conversation


async def test_a_message_is_stored_while_its_hand_off_is_on(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    first = await store.append_outbound(
        cid, "Ana here.", agent="Ana", held_since=taken.status_since
    )
    # A later send takes it over again (with_human stays with_human): the same hand-off.
    again = await taken_over(store, cid)
    assert again.status_since == taken.status_since
    await store.intake(make_message("Thanks"), text="Thanks")  # the customer writing: too
    second = await store.append_outbound(
        cid, "Anything else?", agent="Ana", held_since=again.status_since, exclusive=True
    )
    assert (first.seq, second.seq) == (2, 4)
    assert await store.conversation_agent(cid) == "Ana"


@pytest.mark.parametrize(
    "ends",
    [[ConversationStatus.BOT], [ConversationStatus.CLOSED],
     # Given back and handed over again (and taken by another send): a new hand-off.
     [ConversationStatus.BOT, ConversationStatus.WAITING_HUMAN],
     [ConversationStatus.BOT, ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN]],
    ids=["released", "closed", "handed-off-again", "taken-again"],
)  # fmt: skip
async def test_a_message_after_its_hand_off_ended_is_refused(
    store: ConversationStore, make_message: MakeMessage, ends: list[ConversationStatus]
) -> None:
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    for status in ends:  # the release (and what followed) between the two steps
        await asyncio.sleep(0.002)  # status_since moves: a later time than the takeover
        await store.set_conversation_status(cid, status)
    before = await store.conversation_by_id(cid)
    with pytest.raises(HandoffEndedError) as ended:
        await store.append_outbound(cid, "Ana here.", agent="Ana", held_since=taken.status_since)
    assert ended.value.status == ends[-1]
    after = await store.conversation_by_id(cid)
    assert (after.last_seq, after.status) == (before.last_seq, ends[-1])  # nothing stored
    assert [m.text for m in await store.messages_after("web", "conv-1", 0, 10)] == ["/human"]
    # The bot's own replies never carry the condition.
    await store.append_outbound(cid, "The bot answers.")


async def test_a_repeated_delivery_key_still_returns_the_first_message(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    first = await store.append_outbound(
        cid, "Ana here.", agent="Ana", delivery_key="k1", held_since=taken.status_since
    )
    await store.set_conversation_status(cid, ConversationStatus.BOT)
    # A retry of the stored one: answered with it, as before (nothing stored again).
    repeat = await store.append_outbound(
        cid, "Ana here.", agent="Ana", delivery_key="k1", held_since=taken.status_since
    )
    assert repeat == first
    with pytest.raises(HandoffEndedError):
        await store.append_outbound(
            cid, "Ana again.", agent="Ana", delivery_key="k2", held_since=taken.status_since
        )
    assert (await store.conversation_by_id(cid)).last_seq == first.seq


def _release(conn: Connection, conversation_id: int) -> None:
    """A release's write (``change_conversation_status`` to ``bot``), left uncommitted."""
    now = utcnow()
    conn.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(updated_at=now, **q.status_set(ConversationStatus.BOT.value, now))
    )


async def _waiting_on_a_lock(conn: AsyncConnection) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with asyncio.timeout(30):
        while not (await conn.execute(query)).scalar():  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
async def test_a_message_waiting_for_a_release_being_committed_sees_it(
    store: ConversationStore, make_message: MakeMessage, migrated_db_url: str
) -> None:
    """PostgreSQL, truly concurrent: the release has changed the row (locked, not yet
    committed) when the agent's message is stored. The message waits for it and then
    sees the conversation with the bot (READ COMMITTED: the UPDATE that claims the seq
    re-reads a row changed while it waited), so it is refused, not written into it."""
    cid = await handed_off(store, make_message)
    taken = await taken_over(store, cid)
    engine = create_async_engine(migrated_db_url)
    try:
        async with engine.connect() as releasing, engine.connect() as watch:
            await releasing.begin()
            await releasing.run_sync(_release, cid)
            message = asyncio.create_task(
                store.append_outbound(cid, "Ana here.", agent="Ana", held_since=taken.status_since)
            )
            await _waiting_on_a_lock(watch)
            assert not message.done()
            await releasing.commit()
            with pytest.raises(HandoffEndedError) as ended:
                await message
    finally:
        await engine.dispose()
    assert ended.value.status == ConversationStatus.BOT
    after = await store.conversation_by_id(cid)
    assert (after.status, after.last_seq) == (ConversationStatus.BOT, 1)
