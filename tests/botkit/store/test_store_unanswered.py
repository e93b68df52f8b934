"""finish_inbound and unanswered: what a crash left unanswered is found again (both DBs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import MakeMessage

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, InboundFinish, MessageStatus


async def test_unanswered_finds_received_messages_until_finished(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(
        make_message("where is my order?", channel_ids={"thread": "t-9"}), text="where is my order?"
    )
    second = await store.intake(make_message("and my refund?"), text="and my refund?")
    await store.intake(make_message("x" * 50), text="x" * 50, rejected=True)  # never answered
    await store.intake(make_message("elsewhere", conversation="conv-2", user="u-2"), text="hi")

    pending = await store.unanswered(since=utcnow() - timedelta(minutes=5))
    assert [p.message.text for p in pending] == ["where is my order?", "and my refund?", "hi"]
    assert pending[0].channel_ids == {"thread": "t-9"}
    assert pending[0].contact.external_id == "user-1"
    assert pending[0].conversation.key == "conv-1"
    assert pending[0].received_at is not None

    await store.finish_inbound(
        InboundFinish(first.message, language="es", working_text="where is my order?")
    )
    await store.finish_inbound(InboundFinish(second.message))
    left = await store.unanswered(since=utcnow() - timedelta(minutes=5))
    assert [p.message.text for p in left] == ["hi"]
    assert await store.unanswered(since=utcnow() + timedelta(seconds=1)) == []

    rows = await store.messages_after("web", "conv-1", 0, 10)
    assert [(r.status, r.language, r.working_text) for r in rows[:2]] == [
        (MessageStatus.ANSWERED, "es", "where is my order?"),
        (MessageStatus.ANSWERED, None, None),
    ]
    assert rows[0].text == "where is my order?"  # the text itself never changes


async def test_finish_inbound_refuses_hostile_values(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    stored = await store.intake(make_message("hello"), text="hello")
    with pytest.raises(StoreError):
        await store.finish_inbound(InboundFinish(stored.message, language="not a tag!"))
    with pytest.raises(StoreError):
        await store.finish_inbound(InboundFinish(stored.message, working_text="bad\x00text"))
    # Nothing was changed by the refused calls.
    pending = await store.unanswered(since=utcnow() - timedelta(minutes=5))
    assert [p.message.id for p in pending] == [stored.message.id]
