"""Replies in a shared conversation (a Slack thread, a Telegram group) belong with the
person they answer: in their export, in nobody else's, erased with them (both DBs)."""

from __future__ import annotations

from typing import Any

from conftest import MakeMessage
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from botkit.store import ConversationStore, Deleted
from botkit.store.models import Feedback, Message

THREAD = "C1:100.1"


def _texts(exported: dict[str, Any] | None) -> list[str]:
    assert exported is not None
    return [m["text"] for c in exported["conversations"] for m in c["messages"]]


async def _all_texts(store: ConversationStore) -> list[str]:
    def read(conn: Connection) -> list[str]:
        return list(conn.execute(select(Message.text).order_by(Message.id)).scalars())

    return await store._read(read)


async def _thread(store: ConversationStore, make_message: MakeMessage) -> int:
    """U_A starts a thread, U_B writes their email in it, the bot answers each."""
    a = await store.intake(
        make_message("my email is a@x.com", conversation=THREAD, user="U_A", channel="slack"),
        text="my email is a@x.com",
    )
    cid = a.conversation.id
    await store.append_outbound(cid, "Noted a@x.com", in_reply_to_seq=a.message.seq)
    b = await store.intake(
        make_message("me too: b@y.com", conversation=THREAD, user="U_B", channel="slack"),
        text="me too: b@y.com",
    )
    await store.append_outbound(cid, "Noted b@y.com", in_reply_to_seq=b.message.seq)
    return cid


async def test_forget_deletes_the_replies_to_the_person_and_no_export_shows_them(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await _thread(store, make_message)

    theirs = await store.export_contact("slack", "U_B")
    assert theirs is not None
    assert [m["text"] for m in theirs["messages_in_other_conversations"]] == [
        "me too: b@y.com",
        "Noted b@y.com",
    ]
    owner = await store.export_contact("slack", "U_A")
    assert _texts(owner) == ["my email is a@x.com", "Noted a@x.com"]

    deleted = await store.forget_contact("slack", "U_B")
    assert deleted == Deleted(contacts=1, messages=2)
    assert not [t for t in await _all_texts(store) if "b@y.com" in t]
    owner = await store.export_contact("slack", "U_A")
    assert _texts(owner) == ["my email is a@x.com", "Noted a@x.com"]
    assert owner is not None and owner["conversations"][0]["others_messages_withheld"] == 0


async def test_replies_without_in_reply_to_answer_who_wrote_since_the_previous_reply(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _thread(store, make_message)
    # An agent answers U_B (agents' replies carry no in_reply_to_seq), then U_A.
    await store.append_outbound(cid, "Bob here: we will mail b@y.com", agent="Bob")
    await store.intake(
        make_message("and me?", conversation=THREAD, user="U_A", channel="slack"),
        text="and me?",
    )
    await store.append_outbound(cid, "Bob here: you too, a@x.com", agent="Bob")

    theirs = await store.export_contact("slack", "U_B")
    assert theirs is not None
    assert [m["text"] for m in theirs["messages_in_other_conversations"]] == [
        "me too: b@y.com",
        "Noted b@y.com",
        "Bob here: we will mail b@y.com",
    ]
    expected = ["my email is a@x.com", "Noted a@x.com", "and me?", "Bob here: you too, a@x.com"]
    assert _texts(await store.export_contact("slack", "U_A")) == expected

    assert await store.forget_contact("slack", "U_B") == Deleted(contacts=1, messages=3)
    assert not [t for t in await _all_texts(store) if "b@y.com" in t]
    # Erased messages now lie between Bob's last reply and the one before it: it may
    # have answered them too, so it is in nobody's export (botkit/store/_replies.py).
    assert _texts(await store.export_contact("slack", "U_A")) == expected[:-1]


async def test_a_reply_left_by_an_earlier_erasure_is_in_nobodys_export(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = await _thread(store, make_message)
    await store.append_outbound(cid, "Bob here: we will mail b@y.com", agent="Bob")
    # What erasure did before it took the replies too: only U_B's own message went.
    await store._write(
        lambda conn: conn.execute(delete(Message).where(Message.text == "me too: b@y.com"))
    )
    owner = await store.export_contact("slack", "U_A")
    assert _texts(owner) == ["my email is a@x.com", "Noted a@x.com"]
    assert owner is not None and owner["conversations"][0]["others_messages_withheld"] == 2


async def test_ratings_of_the_erased_replies_go_with_them(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await _thread(store, make_message)
    thumb = await store.intake(
        make_message("👍", conversation=THREAD, user="U_A", channel="slack"), text="👍"
    )
    rated = await store.rate_reply(thumb.message, "good", lambda m: True, answering=3)
    assert rated is not None and rated.reply.text == "Noted b@y.com"

    await store.forget_contact("slack", "U_B")
    left = await store._read(lambda conn: conn.execute(select(Feedback.reply_seq)).scalars().all())
    assert list(left) == []
