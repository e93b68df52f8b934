"""A reply being written while its message's writer is erased (``botkit data forget``)
is not stored afterwards: it would answer nobody and no erasure could find it (both
DBs)."""

from __future__ import annotations

import pytest
from conftest import MakeMessage
from sqlalchemy import select
from sqlalchemy.engine import Connection

from botkit.errors import UnknownConversationError
from botkit.store import ConversationStore
from botkit.store.models import Message
from botkit.store.records import InboundFinish


async def test_a_reply_in_flight_during_forget_is_not_stored(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """P writes in O's Slack thread; the bot is writing its answer when P is erased."""
    thread = "C1:1.0"
    o = await store.intake(
        make_message("thread", conversation=thread, user="U_O", channel="slack"), text="thread"
    )
    p = await store.intake(
        make_message("my email is p@x.com", conversation=thread, user="U_P", channel="slack"),
        text="my email is p@x.com",
    )
    await store.forget_contact("slack", "U_P")
    with pytest.raises(UnknownConversationError):
        await store.append_outbound(
            o.conversation.id, "Noted p@x.com", in_reply_to_seq=p.message.seq,
            finish=InboundFinish(p.message),
        )  # fmt: skip

    def texts(conn: Connection) -> list[str]:
        return list(conn.execute(select(Message.text).order_by(Message.id)).scalars())

    assert await store._read(texts) == ["thread"]
    # The next message in the thread gets the next seq: nothing was claimed for it.
    again = await store.intake(
        make_message("still here", conversation=thread, user="U_O", channel="slack"),
        text="still here",
    )
    assert again.message.seq == p.message.seq + 1
