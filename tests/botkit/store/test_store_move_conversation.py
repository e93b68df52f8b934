"""``move_conversation``: a conversation re-keyed when its chat gets a new id (a Telegram
group upgraded to a supergroup), on both databases."""

from __future__ import annotations

import asyncio

import pytest
from conftest import MakeMessage

from botkit.errors import StoreError
from botkit.store import ConversationStatus, ConversationStore

OLD, NEW = "-600", "-100600"


async def test_the_conversation_keeps_its_history_language_and_status(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("hi", conversation=OLD, channel="telegram"), text="hi")
    conv = first.conversation
    await store.append_outbound(conv.id, "hello", in_reply_to_seq=1)
    await store.set_conversation_language(conv.id, "es")
    await store.set_conversation_status(conv.id, ConversationStatus.WITH_HUMAN)

    assert await store.move_conversation("telegram", OLD, NEW) is True

    assert await store.get_conversation("telegram", OLD) is None
    moved = await store.get_conversation("telegram", NEW)
    assert moved is not None
    assert (moved.id, moved.language, moved.status) == (conv.id, "es", "with_human")
    assert [m.text for m in await store.messages_after("telegram", NEW, 0, 10)] == [
        "hi",
        "hello",
    ]
    # The next message written in the new chat continues it, with the next seq.
    later = await store.intake(
        make_message("again", conversation=NEW, channel="telegram"), text="again"
    )
    assert (later.conversation.id, later.message.seq, later.new_conversation) == (
        conv.id,
        3,
        False,
    )


async def test_moving_again_or_an_unknown_key_changes_nothing(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await store.intake(make_message(conversation=OLD, channel="telegram"), text="hi")
    assert await store.move_conversation("telegram", OLD, NEW) is True
    assert await store.move_conversation("telegram", OLD, NEW) is False  # done already
    assert await store.move_conversation("telegram", "-42", "-10042") is False
    assert await store.move_conversation("telegram", NEW, NEW) is False
    assert await store.get_conversation("telegram", NEW) is not None
    # Only that channel's conversation: a web conversation with the same key stays.
    await store.intake(make_message(conversation="-7", channel="web"), text="hi")
    assert await store.move_conversation("telegram", "-7", "-1007") is False
    assert await store.get_conversation("web", "-7") is not None


async def test_a_conversation_under_the_new_key_already_leaves_both(
    store: ConversationStore, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    old = await store.intake(make_message("old", conversation=OLD, channel="telegram"), text="old")
    new = await store.intake(make_message("new", conversation=NEW, channel="telegram"), text="new")
    assert await store.move_conversation("telegram", OLD, NEW) is False
    assert "both are kept" in caplog.text
    kept_old = await store.get_conversation("telegram", OLD)
    kept_new = await store.get_conversation("telegram", NEW)
    assert kept_old is not None and kept_old.id == old.conversation.id
    assert kept_new is not None and kept_new.id == new.conversation.id


async def test_two_replicas_moving_at_once_move_it_once(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await store.intake(make_message(conversation=OLD, channel="telegram"), text="hi")
    results = await asyncio.gather(
        *(store.move_conversation("telegram", OLD, NEW) for _ in range(4))
    )
    assert sorted(results) == [False, False, False, True]
    assert await store.get_conversation("telegram", OLD) is None
    assert await store.get_conversation("telegram", NEW) is not None


async def test_history_read_after_the_move_includes_the_old_messages(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # The in-memory window is the conversation id's: the move leaves it valid.
    first = await store.intake(
        make_message("one", conversation=OLD, channel="telegram"), text="one"
    )
    await store.move_conversation("telegram", OLD, NEW)
    second = await store.intake(
        make_message("two", conversation=NEW, channel="telegram"), text="two"
    )
    assert second.conversation.id == first.conversation.id
    turns = await store.history(
        second.conversation.id, max_turns=10, token_budget=1000, through=second.message
    )
    assert [m.text for m in turns] == ["one", "two"]


async def test_bad_keys_are_refused(store: ConversationStore) -> None:
    with pytest.raises(StoreError):
        await store.move_conversation("telegram", OLD, "")
    with pytest.raises(StoreError):
        await store.move_conversation("telegram", OLD, "x" * 600)
