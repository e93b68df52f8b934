"""What an agents' queue shows of each conversation (``handoff_previews``), which agent
has it, and the attachments an inbound message is read back with, on both databases."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import MakeMessage
from sqlalchemy import update
from sqlalchemy.engine import Connection

from botkit.events import Attachment
from botkit.store import (
    ConversationStatus,
    ConversationStore,
    ConversationTakenError,
    HandoffPreview,
)
from botkit.store._handoffs import LOOK_BACK, MAX_PREVIEWS, PREVIEW_CHARS
from botkit.store.models import Message
from botkit.store.records import InboundFinish


async def test_a_preview_names_the_customer_and_shows_their_newest_message(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("Hola"), text="Hola")
    conversation_id = first.conversation.id
    await store.append_outbound(conversation_id, "Hello! How can I help?")
    newest = await store.intake(
        make_message("¿Dónde está mi pedido?"), text="¿Dónde está mi pedido?"
    )
    await store.finish_inbound(
        InboundFinish(newest.message, language="es", working_text="Where is my order?")
    )
    await store.intake(make_message("/human"), text="/human")  # a command says nothing
    await store.append_outbound(conversation_id, "A colleague will answer.", agent="Ana")
    anonymous = await store.intake(
        make_message("hi", conversation="c-2", user="u-2", display_name=None), text="hi"
    )
    only_commands = await store.intake(
        make_message("/agent", conversation="c-3", user="u-3", display_name="Bo"), text="/agent"
    )

    wanted = [conversation_id, anonymous.conversation.id, only_commands.conversation.id, 98765]
    previews = await store.handoff_previews(wanted)
    assert previews == {
        # The working-language text: what the agent reads.
        # The newest message of any kind (here /human) tells that the customer wrote.
        conversation_id: HandoffPreview("Ann", "Where is my order?", 4),
        anonymous.conversation.id: HandoffPreview(None, "hi", 1),
        only_commands.conversation.id: HandoffPreview("Bo", None, 1),
    }
    assert await store.handoff_previews([]) == {}
    with pytest.raises(ValueError, match="at most"):
        await store.handoff_previews(range(MAX_PREVIEWS + 1))


async def test_attachments_are_read_back_and_odd_stored_ones_are_left_out(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    photo = Attachment("image", name="receipt.jpg", mime_type="image/jpeg", size=2048,
                       url="https://files.example/receipt.jpg")  # fmt: skip
    sent = dataclasses.replace(make_message(""), attachments=(photo, Attachment("sticker")))
    stored = await store.intake(sent, text="")
    assert stored.message.attachments == (photo, Attachment("sticker"))
    (read,) = await store.messages_after("web", "conv-1", 0, 10)
    assert read.attachments == (photo, Attachment("sticker"))

    # Rows edited by hand (or by a future version) never break reading the message.
    odd = {"attachments": [{"kind": "image", "size": True, "name": 5}, {"name": "x"}, "y"]}

    def corrupt(conn: Connection) -> None:
        conn.execute(update(Message).where(Message.id == read.id).values(extra=odd))

    await store._write(corrupt)
    (again,) = await store.messages_after("web", "conv-1", 0, 10)
    assert again.attachments == (Attachment("image"),)
    await store._write(lambda conn: conn.execute(update(Message).values(extra={"attachments": 7})))
    (last,) = await store.messages_after("web", "conv-1", 0, 10)
    assert last.attachments == ()


async def test_a_preview_is_the_start_of_the_newest_words_not_a_photo(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    long = "My parcel arrived broken. " * 400  # stored whole, however long
    first = await store.intake(make_message(long), text=long)
    photo = dataclasses.replace(make_message(""), attachments=(Attachment("image"),))
    await store.intake(photo, text="")  # a photo alone says nothing about the case
    preview = (await store.handoff_previews([first.conversation.id]))[first.conversation.id]
    text = preview.last_customer_text
    assert text is not None and text.endswith("…") and len(text) <= PREVIEW_CHARS + 1
    assert long.startswith(text[:-1])


async def test_a_preview_looks_back_only_so_far(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # However long a conversation (a Telegram group is one forever), a preview reads at
    # most LOOK_BACK messages: beyond them, the customer's words are not looked for.
    first = await store.intake(make_message("Where is my parcel?"), text="Where is my parcel?")
    conversation_id = first.conversation.id
    for n in range(LOOK_BACK - 1):
        await store.append_outbound(conversation_id, f"agent note {n}", agent="Ana")
    assert (await store.handoff_previews([conversation_id]))[conversation_id] == HandoffPreview(
        "Ann", "Where is my parcel?", 1
    )
    await store.append_outbound(conversation_id, "one more", agent="Ana")
    assert (await store.handoff_previews([conversation_id]))[conversation_id] == HandoffPreview(
        "Ann", None, None
    )


async def test_the_agent_of_the_current_hand_off_has_the_conversation(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("Where is my order?"), text="Where is my order?")
    cid = first.conversation.id
    await store.append_outbound(cid, "Ana from last week.", agent="Ana")  # a hand-off ago
    await store.append_outbound(cid, "The bot's answer.")
    await store.set_conversation_status(cid, ConversationStatus.WAITING_HUMAN)

    async def holder() -> str | None:
        shown = (await store.handoff_previews([cid]))[cid].agent
        assert shown == await store.conversation_agent(cid)
        return shown

    assert await holder() is None  # waiting: nobody has it, whoever wrote before
    await store.set_conversation_status(cid, ConversationStatus.WITH_HUMAN)
    assert await holder() is None
    await store.append_outbound(cid, "Unsigned, from a tool.", agent="")
    assert await holder() is None
    await store.append_outbound(cid, "Bo here.", agent="Bo", exclusive=True)
    await store.intake(make_message("Thanks!"), text="Thanks!")
    assert await holder() == "Bo"
    with pytest.raises(ConversationTakenError, match="Bo has conversation") as refused:
        await store.append_outbound(cid, "Ana here.", agent="Ana", exclusive=True)
    assert refused.value.agent == "Bo"
    assert (await store.conversation_by_id(cid)).last_seq == 6  # nothing stored, no gap
    await store.append_outbound(cid, "Bo again.", agent="bo", exclusive=True)  # any case
    await store.append_outbound(cid, "Ana takes it.", agent="Ana")  # not exclusive
    assert await holder() == "Ana"
    await store.set_conversation_status(cid, ConversationStatus.BOT)
    assert await holder() is None
    assert await store.conversation_agent(98765) is None


async def test_two_agents_storing_at_once_cannot_both_have_it(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("/human"), text="/human")
    cid = first.conversation.id
    await store.set_conversation_status(cid, ConversationStatus.WITH_HUMAN)
    results = await asyncio.gather(
        *(store.append_outbound(cid, f"{name} here.", agent=name, exclusive=True)
          for name in ("Ana", "Bo", "Cy")),
        return_exceptions=True,
    )  # fmt: skip
    stored = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 1 and stored[0].agent == await store.conversation_agent(cid)
    assert all(isinstance(r, ConversationTakenError) for r in results if r not in stored)
