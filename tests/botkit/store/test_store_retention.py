"""Retention, a person's export and erasure (both DBs), and what the window of recent
messages does when a deleted conversation's id comes back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import MakeMessage
from sqlalchemy import func, select, update

from botkit.errors import StoreError
from botkit.events import utcnow
from botkit.store import ConversationStore, Deleted
from botkit.store.models import Contact, Conversation, InboundKey, Message

BIG = 10**9


async def _age(store: ConversationStore, key: str, days: float) -> None:
    """Make conversation ``key`` (and its contact) last active ``days`` ago."""
    then = utcnow() - timedelta(days=days)
    conversation = await store.get_conversation("web", key)
    assert conversation is not None
    await store._write(
        lambda conn: (
            conn.execute(
                update(Conversation)
                .where(Conversation.id == conversation.id)
                .values(updated_at=then)
            ),
            conn.execute(
                update(Contact).where(Contact.id == conversation.contact_id).values(updated_at=then)
            ),
        )
    )


async def _count(store: ConversationStore, table: type) -> int:
    return int(
        await store._read(
            lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()
        )
    )


async def test_purge_deletes_inactive_conversations_and_contacts_left_without_one(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    for key, user in (("old", "ann"), ("new", "bob"), ("old2", "bob")):
        for text in ("hello", "anyone?"):
            await store.intake(make_message(text, conversation=key, user=user), text=text)
    await _age(store, "old", 40)
    await _age(store, "old2", 40)  # bob's other conversation is recent: bob stays

    deleted = await store.purge_inactive(utcnow() - timedelta(days=30))

    assert deleted == Deleted(contacts=1, conversations=2, messages=4)
    assert await store.get_conversation("web", "old") is None
    assert await store.get_conversation("web", "new") is not None
    assert (await _count(store, Message), await _count(store, InboundKey)) == (2, 2)
    assert await _count(store, Contact) == 1
    # A redelivery of a purged message is a new message again (its delivery key went).
    again = await store.intake(
        make_message("hello", key="delivery-1", conversation="old"), text="hello"
    )
    assert not again.duplicate and again.message.seq == 1
    assert await store.purge_inactive(utcnow() - timedelta(days=30)) == Deleted()


async def test_purge_goes_in_batches(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botkit.store._retention.BATCH", 2)
    for n in range(5):
        await store.intake(make_message("hi", conversation=f"k{n}", user=f"u{n}"), text="hi")
    deleted = await store.purge_inactive(utcnow() + timedelta(seconds=1))
    assert deleted == Deleted(contacts=5, conversations=5, messages=5)


async def test_forget_erases_a_person_everywhere_and_export_shows_them_first(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await store.intake(
        make_message("my order 42 is late", conversation="mine", user="ann"),
        text="my order 42 is late",
    )
    theirs = await store.intake(
        make_message("me too", conversation="bobs", user="bob"), text="me too"
    )
    # Ann also writes in Bob's conversation (a Slack channel thread).
    await store.intake(
        make_message("same here, order 43", conversation="bobs", user="ann"),
        text="same here, order 43",
    )
    await store.append_outbound(theirs.conversation.id, "We are on it.")

    exported = await store.export_contact("web", "ann")
    assert exported is not None
    assert [c["conversation_key"] for c in exported["conversations"]] == ["mine"]
    assert exported["conversations"][0]["messages"][0]["text"] == "my order 42 is late"
    assert [m["text"] for m in exported["messages_in_other_conversations"]] == [
        "same here, order 43"
    ]

    deleted = await store.forget_contact("web", "ann")
    assert deleted == Deleted(contacts=1, conversations=1, messages=2)
    assert await store.export_contact("web", "ann") is None
    left = await store.messages_after("web", "bobs", 0)
    assert [m.text for m in left] == ["me too", "We are on it."]
    assert await store.forget_contact("web", "ann") == Deleted()  # nobody left to erase


@pytest.mark.parametrize(
    "channel,external_id", [("", "ann"), ("web", ""), ("web", "a\x00b"), ("x" * 500, "ann")]
)
async def test_hostile_ids_are_refused_clearly(
    store: ConversationStore, channel: str, external_id: str
) -> None:
    with pytest.raises(StoreError):
        await store.forget_contact(channel, external_id)
    with pytest.raises(StoreError):
        await store.export_contact(channel, external_id)


async def test_a_new_conversation_under_a_deleted_ones_id_never_sees_its_messages(
    store: ConversationStore, make_message: MakeMessage, migrated_db_url: str
) -> None:
    await store.intake(make_message("unrelated", conversation="keep", user="zed"), text="unrelated")
    first = await store.intake(
        make_message("my card is 4111", conversation="old", user="ann"), text="my card is 4111"
    )
    await store.append_outbound(first.conversation.id, "noted")
    latest = await store.history(
        first.conversation.id, max_turns=10, token_budget=BIG, through=first.message
    )
    assert [m.text for m in latest] == ["my card is 4111", "noted"]  # the window holds it

    # Another process erases Ann: this store's window does not hear of it.
    async with ConversationStore(store.settings) as other:
        await other.forget_contact("web", "ann")
    new = await store.intake(make_message("hello", conversation="new", user="bob"), text="hello")
    if new.conversation.id != first.conversation.id:
        pytest.skip("this database did not reuse the id (PostgreSQL never does)")
    got = await store.history(
        new.conversation.id, max_turns=10, token_budget=BIG, through=new.message
    )
    assert [m.text for m in got] == ["hello"]

    # The same when a third process writes the new conversation's first message.
    async with ConversationStore(store.settings) as other:
        await other.forget_contact("web", "bob")
    async with ConversationStore(store.settings) as third:
        newer = await third.intake(make_message("hi", conversation="newer", user="cy"), text="hi")
    assert newer.conversation.id == first.conversation.id
    got = await store.history(
        newer.conversation.id, max_turns=10, token_budget=BIG, through=newer.message
    )
    assert [m.text for m in got] == ["hi"]
