"""A finish from an outdated copy of the message leaves the history cache as the
database has it: the database keeps what an earlier finish learned (a NULL language or
working text leaves the stored one), and the cache must not put the copy's back."""

from __future__ import annotations

from conftest import MakeMessage
from sqlalchemy import select

from botkit.store import ConversationStore
from botkit.store.models import Message
from botkit.store.records import InboundFinish, StoredMessage

BIG = 10**6


async def _stored(store: ConversationStore, message_id: int) -> tuple[str | None, str | None]:
    stmt = select(Message.language, Message.working_text).where(Message.id == message_id)
    row = await store._read(lambda conn: conn.execute(stmt).one())
    return row.language, row.working_text


async def _cached(
    store: ConversationStore, message: StoredMessage, through_seq: int
) -> StoredMessage:
    hits = store.history_cache.hits
    history = await store.history(
        message.conversation_id, max_turns=10, token_budget=BIG, through_seq=through_seq
    )
    assert store.history_cache.hits == hits + 1  # answered from the window
    (found,) = [m for m in history if m.id == message.id]
    return found


async def test_a_second_finish_from_intakes_copy_keeps_the_cache_as_stored(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    msg = make_message("hola")
    m = (await store.intake(msg, text="hola")).message
    await store.history(m.conversation_id, max_turns=10, token_budget=BIG, through=m)
    assert await store.finish_inbound(InboundFinish(m, "es", "hello"))
    assert await store.finish_inbound(InboundFinish(m))  # intake's copy, nothing new

    assert await _stored(store, m.id) == ("es", "hello")
    cached = await _cached(store, m, m.seq)
    assert (cached.language, cached.working_text) == ("es", "hello")
    assert cached.model_text == "hello"  # what the model reads, as from the database


async def test_a_reply_finishing_from_an_outdated_copy_keeps_the_cache_as_stored(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    msg = make_message("hola")
    m = (await store.intake(msg, text="hola")).message
    await store.history(m.conversation_id, max_turns=10, token_budget=BIG, through=m)
    assert await store.finish_inbound(InboundFinish(m, "es", "hello"))
    reply = await store.append_outbound(
        m.conversation_id, "vale", in_reply_to_seq=m.seq, finish=InboundFinish(m)
    )

    assert await _stored(store, m.id) == ("es", "hello")
    cached = await _cached(store, m, reply.seq)
    assert (cached.language, cached.working_text, cached.status) == ("es", "hello", "answered")
