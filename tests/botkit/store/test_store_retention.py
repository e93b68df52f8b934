"""Retention, a person's export and erasure (both DBs), and what the window of recent
messages does when a deleted conversation's id comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import MakeMessage
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from botkit.errors import StoreError
from botkit.events import Direction, utcnow
from botkit.store import ConversationStore, Deleted
from botkit.store._recent import RecentMessages
from botkit.store.models import Contact, Conversation, InboundKey, Message
from botkit.store.records import MessageStatus, StoredMessage

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


async def test_purge_keeps_a_contact_whose_messages_are_in_others_conversations(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await store.intake(
        make_message("my own question", conversation="old", user="ann"), text="my own question"
    )
    await store.intake(make_message("hello", conversation="bobs", user="bob"), text="hello")
    await store.intake(
        make_message("same for me", conversation="bobs", user="ann"), text="same for me"
    )
    await _age(store, "old", 40)
    await store._write(
        lambda conn: conn.execute(update(Contact).values(updated_at=utcnow() - timedelta(days=40)))
    )
    deleted = await store.purge_inactive(utcnow() - timedelta(days=30))
    assert (deleted.conversations, deleted.contacts) == (1, 0)
    exported = await store.export_contact("web", "ann")  # still found: erasure still works
    assert exported is not None
    assert [m["text"] for m in exported["messages_in_other_conversations"]] == ["same for me"]


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
    await store.append_outbound(
        theirs.conversation.id, "We are on it.", in_reply_to_seq=theirs.message.seq
    )

    # Bob answers in Ann's conversation: his words are not Ann's to get.
    await store.intake(
        make_message("call me at 555-0100", conversation="mine", user="bob"),
        text="call me at 555-0100",
    )
    exported = await store.export_contact("web", "ann")
    assert exported is not None
    assert [c["conversation_key"] for c in exported["conversations"]] == ["mine"]
    mine = exported["conversations"][0]
    assert [m["text"] for m in mine["messages"]] == ["my order 42 is late"]
    assert mine["others_messages_withheld"] == 1
    # Nor is the bot's answer to Bob (it may repeat what he wrote).
    bobs = mine["messages"][-1]
    conversation = await store.get_conversation("web", "mine")
    assert conversation is not None
    await store.append_outbound(conversation.id, "Bob, we will call 555-0100.", in_reply_to_seq=2)
    again = await store.export_contact("web", "ann")
    assert again is not None
    texts = [m["text"] for m in again["conversations"][0]["messages"]]
    assert texts == [bobs["text"]] and again["conversations"][0]["others_messages_withheld"] == 2
    assert [m["text"] for m in exported["messages_in_other_conversations"]] == [
        "same here, order 43"
    ]

    deleted = await store.forget_contact("web", "ann")
    assert deleted == Deleted(contacts=1, conversations=1, messages=4)
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


def test_a_window_never_answers_for_another_conversation_under_its_id() -> None:
    """Ids are not reused since migration 0004, but the window also checks identity, so a
    database restored from elsewhere or edited by hand cannot make it serve another
    conversation's messages."""
    recent = RecentMessages(1 << 20)
    recent.want(10)

    def message(seq: int, id_: int, at: int) -> StoredMessage:
        return StoredMessage(
            id=id_, conversation_id=7, seq=seq, direction=Direction.INBOUND,
            text=f"m{id_}", working_text=None, language=None, status=MessageStatus.RECEIVED,
            created_at=datetime(2026, 1, 1, 0, 0, at, tzinfo=UTC), idempotency_key=None,
            error=None,
        )  # fmt: skip

    old = [message(1, 101, 1), message(2, 102, 2), message(3, 103, 3)]
    for m in old:
        recent.record(m)
    assert [m.text for m in recent.latest(7, 3, 10) or []] == ["m103", "m102", "m101"]
    # Another process's new conversation 7: its seq 3 is not the window's seq 3.
    stranger = message(3, 203, 9)
    assert recent.latest(7, 3, 10, through=stranger) is None
    # This process stores a new conversation 7's first message: a fresh window.
    for m in old:
        recent.record(m)
    recent.record(message(1, 301, 20))
    assert [m.text for m in recent.latest(7, 1, 10) or []] == ["m301"]


async def test_contacts_left_without_a_conversation_are_deleted_in_batches(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audit-pg finding 8: the orphaned contacts went in one statement, however many;
    now ``BATCH`` per transaction, like the conversations before them."""
    from sqlalchemy import event

    monkeypatch.setattr("botkit.store._retention.BATCH", 2)
    for n in range(5):
        await store.intake(make_message("hi", conversation=f"k{n}", user=f"u{n}"), text="hi")
    runner = store._require()
    engine = getattr(runner._engine, "sync_engine", runner._engine)  # type: ignore[attr-defined]
    contact_deletes: list[int] = []

    def count(_conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CONTACTS"):
            contact_deletes.append(cursor.rowcount)  # type: ignore[attr-defined]

    event.listen(engine, "after_cursor_execute", count)
    deleted = await store.purge_inactive(utcnow() + timedelta(seconds=1))
    assert deleted == Deleted(contacts=5, conversations=5, messages=5)
    assert await _count(store, Contact) == 0
    assert sum(contact_deletes) == 5 and max(contact_deletes) <= 2, contact_deletes


async def test_a_contact_delete_refused_leaves_its_batch_only(
    store: ConversationStore, make_message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 12: a batch of contacts whose delete the foreign key refuses (a
    customer came back meanwhile) is left for the next purge; the purge went on to the
    next batch instead of stopping there."""
    monkeypatch.setattr("botkit.store._retention.BATCH", 2)
    for n in range(5):
        await store.intake(make_message("hi", conversation=f"k{n}", user=f"u{n}"), text="hi")
    first = await store._read(lambda conn: conn.execute(select(func.min(Contact.id))).scalar_one())
    # The race, made certain: the delete of the first contact is refused as the foreign
    # key would refuse it.
    if store.dialect == "sqlite":
        ddl = [
            f"CREATE TRIGGER refuse BEFORE DELETE ON contacts WHEN old.id = {first} "
            "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
        ]
    else:
        ddl = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused' USING ERRCODE = 'foreign_key_violation'; END $$",
            "CREATE TRIGGER refuse BEFORE DELETE ON contacts FOR EACH ROW "
            f"WHEN (old.id = {first}) EXECUTE FUNCTION refuse()",
        ]

    def install(conn: Connection) -> None:
        for statement in ddl:
            conn.exec_driver_sql(statement)

    await store._write(install)
    try:
        deleted = await store.purge_inactive(utcnow() + timedelta(seconds=1))
        assert deleted.contacts == 3  # the two batches after the refused one
        assert await _count(store, Contact) == 2
    finally:

        def remove(conn: Connection) -> None:
            conn.exec_driver_sql(
                "DROP TRIGGER refuse" + ("" if store.dialect == "sqlite" else " ON contacts")
            )
            if store.dialect != "sqlite":
                conn.exec_driver_sql("DROP FUNCTION refuse()")

        await store._write(remove)
