"""An agent's reply without ``in_reply_to_seq`` in a group is attributed to everyone who
wrote since the previous reply: in the export of nobody else, in a writer's own only
when they wrote alone, erased with any of them (both DBs; botkit/store/_replies.py)."""

from __future__ import annotations

from typing import Any

from conftest import MakeMessage
from sqlalchemy import select
from sqlalchemy.engine import Connection

from botkit.store import ConversationStore
from botkit.store.models import Message

REFUND = "A: refund for 4242 sent to a@x.com"
SHIPS = "O, order 991 ships Monday"


def _others(exported: dict[str, Any] | None) -> list[str]:
    assert exported is not None
    return [m["text"] for m in exported["messages_in_other_conversations"]]


def _own(exported: dict[str, Any] | None) -> list[str]:
    assert exported is not None
    return [m["text"] for c in exported["conversations"] for m in c["messages"]]


async def _all_texts(store: ConversationStore) -> list[str]:
    def read(conn: Connection) -> list[str]:
        return list(conn.execute(select(Message.text).order_by(Message.id)).scalars())

    return await store._read(read)


async def _say(store: ConversationStore, make_message: MakeMessage, text: str, user: str,
               group: str) -> int:  # fmt: skip
    got = await store.intake(
        make_message(text, conversation=group, user=user, channel="telegram"), text=text
    )
    return got.conversation.id


async def test_an_agent_reply_after_two_writers_is_neither_ones_and_goes_with_either(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """G1: A writes their card and email, B writes "hi all", the agent answers A."""
    cid = await _say(store, make_message, "group opened", "O", "G1")
    await _say(store, make_message, "card 4242, a@x.com", "A", "G1")
    await _say(store, make_message, "hi all", "B", "G1")
    await store.append_outbound(cid, REFUND, agent="Eve")
    assert _others(await store.export_contact("telegram", "B")) == ["hi all"]
    assert _others(await store.export_contact("telegram", "A")) == ["card 4242, a@x.com"]
    assert REFUND not in _own(await store.export_contact("telegram", "O"))
    deleted = await store.forget_contact("telegram", "A")
    assert deleted.messages == 2
    assert REFUND not in await _all_texts(store)
    assert _others(await store.export_contact("telegram", "B")) == ["hi all"]


async def test_an_agent_reply_in_the_owners_group_after_someone_else_wrote(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """G2: O asks in their own group, C writes "+1", the agent answers O. Withheld from
    both (it may carry either's data), erased with C."""
    cid = await _say(store, make_message, "where is my order 991?", "O", "G2")
    await _say(store, make_message, "+1", "C", "G2")
    await store.append_outbound(cid, SHIPS, agent="Eve")
    assert _others(await store.export_contact("telegram", "C")) == ["+1"]
    own = await store.export_contact("telegram", "O")
    assert _own(own) == ["where is my order 991?"]
    assert own is not None and own["conversations"][0]["others_messages_withheld"] == 2
    deleted = await store.forget_contact("telegram", "C")
    assert deleted.messages == 2
    assert await _all_texts(store) == ["where is my order 991?"]


async def test_an_agent_reply_to_one_writer_is_theirs_and_the_next_goes_on_answering_them(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _say(store, make_message, "group opened", "O", "G3")
    await store.append_outbound(cid, "welcome", agent="Eve")
    await _say(store, make_message, "card 4242, a@x.com", "A", "G3")
    await store.append_outbound(cid, REFUND, agent="Eve")
    await store.append_outbound(cid, "anything else, A?", agent="Eve")
    await _say(store, make_message, "hi all", "B", "G3")
    await store.append_outbound(cid, "hi B", agent="Eve")
    assert _others(await store.export_contact("telegram", "A")) == [
        "card 4242, a@x.com", REFUND, "anything else, A?"
    ]  # fmt: skip
    assert _others(await store.export_contact("telegram", "B")) == ["hi all", "hi B"]
    assert _own(await store.export_contact("telegram", "O")) == ["group opened", "welcome"]
    deleted = await store.forget_contact("telegram", "A")
    assert deleted.messages == 3


async def test_a_writer_before_someone_joins_shares_the_agents_next_reply(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """B writes before A's first message: the agent's reply after both is not A's."""
    cid = await _say(store, make_message, "group opened", "O", "G4")
    await store.append_outbound(cid, "welcome", agent="Eve")
    await _say(store, make_message, "my phone is 555-0101", "B", "G4")
    await _say(store, make_message, "hello", "A", "G4")
    await store.append_outbound(cid, "B, we will call 555-0101", agent="Eve")
    assert _others(await store.export_contact("telegram", "A")) == ["hello"]
    assert _others(await store.export_contact("telegram", "B")) == ["my phone is 555-0101"]
    assert (await store.forget_contact("telegram", "A")).messages == 2
