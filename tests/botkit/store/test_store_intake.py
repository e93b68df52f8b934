"""Inbound intake: contacts, conversations, idempotency and sequence numbers under
concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from botkit.errors import StoreError
from botkit.events import Direction, InboundMessage
from botkit.store import ConversationStore, MessageStatus, StoreSettings
from botkit.store.models import InboundKey, Message

MakeMessage = Callable[..., InboundMessage]


async def _count(store: ConversationStore, model: type[Message] | type[InboundKey]) -> int:
    stmt = select(func.count()).select_from(model)
    return int(await store._read(lambda conn: conn.execute(stmt).scalar_one()))


async def test_first_message_creates_contact_and_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    msg = make_message("Hola", language_hint="es-419", channel_ids={"thread": "t-1"})
    result = await store.intake(msg, text="Hola", working_text="Hello", language="es")

    assert result.new_conversation and not result.duplicate
    conv, message = result.conversation, result.message
    assert (conv.channel, conv.key, conv.status, conv.last_seq) == ("web", "conv-1", "bot", 1)
    # No language yet: the hint is the contact's preference, where language detection
    # starts from, not a language the conversation has been seen in (language review 4).
    assert conv.language is None
    assert conv.created_at.tzinfo is not None
    assert result.contact is not None and result.contact.language == "es-419"
    assert conv.contact_id == result.contact.id == message.contact_id
    assert (message.seq, message.direction, message.status) == (1, Direction.INBOUND, "received")
    assert (message.text, message.working_text, message.language) == ("Hola", "Hello", "es")
    assert message.idempotency_key == msg.idempotency_key
    assert message.model_text == "Hello"

    second = await store.intake(make_message("¿y?"), text="¿y?")
    assert not second.new_conversation
    assert second.conversation.id == conv.id
    assert second.message.seq == 2
    assert await store.get_conversation("web", "conv-1") == second.conversation


async def test_language_hint_only_fills_an_unknown_preference(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message(), text="hi")
    assert first.contact is not None and first.contact.language is None
    hinted = await store.intake(make_message(language_hint="de"), text="hi")
    assert hinted.contact is not None and hinted.contact.language == "de"
    await store.set_contact_language(hinted.contact.id, "fr")
    again = await store.intake(make_message(language_hint="de"), text="hi")
    assert again.contact is not None and again.contact.language == "fr"
    # A malformed hint from a channel is ignored, not stored and not fatal.
    odd = await store.intake(make_message(user="u2", language_hint="x" * 80), text="hi")
    assert odd.contact is not None and odd.contact.language is None


async def test_redelivery_returns_the_original(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    msg = make_message(key="slack-event-1")
    first = await store.intake(msg, text="hello")
    again = await store.intake(msg, text="hello (changed on retry)")
    assert again.duplicate and not again.new_conversation
    assert again.message == first.message
    assert again.conversation.id == first.conversation.id
    assert again.contact == first.contact
    assert await _count(store, Message) == 1
    assert await _count(store, InboundKey) == 1


async def test_concurrent_duplicates_store_one_message(
    migrated_db_url: str, make_message: MakeMessage
) -> None:
    # Two stores = two connection pools (two bot processes); eight simultaneous
    # deliveries of the same key, to a conversation that does not exist yet.
    settings = StoreSettings(url=migrated_db_url)
    async with ConversationStore(settings) as a, ConversationStore(settings) as b:
        msg = make_message(key="update-42")
        results = await asyncio.gather(
            *(s.intake(msg, text="only once") for s in (a, b, a, b, a, b, a, b))
        )
        assert sum(not r.duplicate for r in results) == 1
        assert len({r.message.id for r in results}) == 1
        assert sum(r.new_conversation for r in results) == 1
        assert await _count(a, Message) == 1
        stored = await a.messages_after("web", "conv-1", 0)
        assert [(m.seq, m.text) for m in stored] == [(1, "only once")]
        # The conversation's counter was not advanced by the losers.
        conv = await a.get_conversation("web", "conv-1")
        assert conv is not None and conv.last_seq == 1


async def test_fifty_interleaved_messages_from_two_writers(
    migrated_db_url: str, make_message: MakeMessage
) -> None:
    settings = StoreSettings(url=migrated_db_url)
    async with ConversationStore(settings) as a, ConversationStore(settings) as b:
        opened = await a.intake(make_message("start", key="k-start"), text="start")
        cid = opened.conversation.id

        async def customer() -> list[int]:  # writer 1: inbound messages, one at a time
            seqs = []
            for i in range(24):
                r = await a.intake(make_message(f"in {i}", key=f"k-in-{i}"), text=f"in {i}")
                seqs.append(r.message.seq)
            return seqs

        async def agent() -> list[int]:  # writer 2: replies, all in flight at once
            replies = [b.append_outbound(cid, f"out {i}") for i in range(25)]
            return [m.seq for m in await asyncio.gather(*replies)]

        inbound, outbound = await asyncio.gather(customer(), agent())

        assert inbound == sorted(inbound)  # each writer sees its own order kept
        assert sorted(inbound + outbound + [1]) == list(range(1, 51))
        stored = await a.messages_after("web", "conv-1", 0)
        assert [m.seq for m in stored] == list(range(1, 51))
        assert [m.text for m in stored if m.direction == Direction.INBOUND] == ["start"] + [
            f"in {i}" for i in range(24)
        ]
        conv = await b.get_conversation("web", "conv-1")
        assert conv is not None and conv.last_seq == 50


async def test_many_conversations_at_once_keep_their_own_sequences(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    msgs = [make_message(f"m{i}", conversation=f"c{i % 5}", user=f"u{i % 5}") for i in range(40)]
    await asyncio.gather(*(store.intake(m, text=m.text) for m in msgs))
    for c in range(5):
        stored = await store.messages_after("web", f"c{c}", 0)
        assert [m.seq for m in stored] == list(range(1, 9))


async def test_rejected_message_is_stored_with_its_status(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    result = await store.intake(make_message(), text="x" * 5000, rejected=True)
    assert result.message.status == MessageStatus.REJECTED
    assert result.message.text == "x" * 5000  # nothing truncated


@pytest.mark.parametrize(
    ("overrides", "text", "match"),
    [
        ({"key": ""}, "hi", "idempotency key is empty"),
        ({"key": "k" * 513}, "hi", "idempotency key is 513 characters"),
        ({"conversation": ""}, "hi", "conversation key is empty"),
        ({"user": "u\x00"}, "hi", "contact id contains a NUL"),
        ({"channel": "c" * 65}, "hi", "channel is 65 characters"),
        ({}, "bad\x00text", "text contains a NUL"),
        ({}, "lone \ud800 surrogate", "lone surrogate"),
    ],
)
async def test_unstorable_input_is_refused_before_writing(
    store: ConversationStore,
    make_message: MakeMessage,
    overrides: dict[str, str],
    text: str,
    match: str,
) -> None:
    with pytest.raises(StoreError, match=match):
        await store.intake(make_message(**overrides), text=text)
    assert await _count(store, Message) == 0


async def test_bad_language_and_working_text_are_refused(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    with pytest.raises(StoreError, match="not a language tag"):
        await store.intake(make_message(), text="hi", language="en; DROP TABLE messages")
    with pytest.raises(StoreError, match="working text contains a NUL"):
        await store.intake(make_message(), text="hi", working_text="\x00")
    assert await _count(store, Message) == 0


async def test_platform_metadata_is_made_storable(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # Display names and channel ids come straight from a platform; PostgreSQL would
    # reject NUL or lone surrogates in them, so they are cleaned rather than refused.
    msg = make_message(display_name="A\x00nn\udc80" + "n" * 400, channel_ids={"t\x00": "1\ud800"})
    result = await store.intake(msg, text="hi")
    assert result.contact is not None
    assert result.contact.display_name == "Ann" + "n" * 252
    raw = await store._read(
        lambda conn: conn.execute(
            select(Message.extra).where(Message.id == result.message.id)
        ).scalar_one()
    )
    assert raw["channel_ids"] == {"t": "1"}
