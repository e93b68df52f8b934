"""Replies, statuses, bounded history, paging and hostile text, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from botkit.errors import StoreError
from botkit.events import Button, Direction, InboundMessage
from botkit.store import ConversationStatus, ConversationStore, InboundFinish, MessageStatus

MakeMessage = Callable[..., InboundMessage]


async def _conversation(store: ConversationStore, make_message: MakeMessage, turns: int) -> int:
    """A conversation of ``turns`` inbound/outbound pairs: "q0", "a0", "q1", "a1", ..."""
    cid = 0
    for i in range(turns):
        r = await store.intake(make_message(f"q{i}"), text=f"q{i}")
        cid = r.conversation.id
        await store.append_outbound(cid, f"a{i}", in_reply_to_seq=r.message.seq)
    return cid


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """SQL text of every statement executed meanwhile (all engines)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(sql)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def test_outbound_reply_round_trip(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    inbound = await store.intake(make_message("¿Dónde está mi pedido?"), text="¿Dónde está?")
    cid = inbound.conversation.id
    buttons = (Button("Sí", "yes"), Button("No", "no"))
    reply = await store.append_outbound(
        cid,
        "Está en camino.",
        working_text="It is on its way.",
        language="es",
        in_reply_to_seq=inbound.message.seq,
        buttons=buttons,
        finish=InboundFinish(inbound.message, language="es"),
    )
    assert (reply.seq, reply.direction, reply.status) == (2, Direction.OUTBOUND, "sent")
    assert reply.in_reply_to_seq == 1 and reply.buttons == buttons
    assert reply.idempotency_key is None and reply.contact_id is None
    assert (await store.messages_after("web", "conv-1", 1)) == [reply]
    # Storing the reply marked the question answered, in the same transaction.
    (question,) = await store.messages_after("web", "conv-1", 0, limit=1)
    assert (question.status, question.language) == (MessageStatus.ANSWERED, "es")

    second = await store.intake(make_message("¿Y ahora?"), text="¿Y ahora?")
    lost = await store.append_outbound(
        cid,
        "lo siento",
        in_reply_to_seq=second.message.seq,
        status="failed",
        error="HTTP 5\x0003",
    )
    assert (lost.status, lost.error) == (MessageStatus.FAILED, "HTTP 503")
    await store.append_outbound(cid, "ok", in_reply_to_seq=second.message.seq)  # no finish
    (unanswered,) = await store.messages_after("web", "conv-1", 2, limit=1)
    assert unanswered.status == MessageStatus.RECEIVED
    answered = await store.set_message_status(second.message.id, "answered")
    assert answered.status == MessageStatus.ANSWERED
    failed = await store.set_message_status(reply.id, MessageStatus.FAILED, error="HTTP 429")
    assert (failed.status, failed.error, failed.text) == ("failed", "HTTP 429", reply.text)


async def test_reply_errors(store: ConversationStore, make_message: MakeMessage) -> None:
    cid = (await store.intake(make_message(), text="hi")).conversation.id
    with pytest.raises(StoreError, match="no conversation with id"):
        await store.append_outbound(cid + 999, "lost")
    with pytest.raises(StoreError, match="unknown status 'delivered'"):
        await store.append_outbound(cid, "x", status="delivered")
    with pytest.raises(StoreError, match="no message with id"):
        await store.set_message_status(123456, "sent")
    with pytest.raises(StoreError, match="unknown status"):
        await store.set_message_status(1, "bogus")
    with pytest.raises(StoreError, match="NUL"):
        await store.append_outbound(cid, "a\x00b")
    assert [m.seq for m in await store.messages_after("web", "conv-1", 0)] == [1]


async def test_history_is_bounded_and_oldest_first(
    store: ConversationStore, make_message: MakeMessage, statements: list[str]
) -> None:
    cid = await _conversation(store, make_message, 30)  # 60 messages
    statements.clear()
    recent = await store.history(cid, max_turns=6, token_budget=10_000)
    assert [m.text for m in recent] == ["q27", "a27", "q28", "a28", "q29", "a29"]
    # Read with a LIMIT, not by loading the whole conversation.
    history_sql = [s for s in statements if "FROM messages" in s]
    assert history_sql and all("LIMIT" in s.upper() for s in history_sql)


async def test_history_token_budget(store: ConversationStore, make_message: MakeMessage) -> None:
    cid = await _conversation(store, make_message, 5)
    # One token per message: a budget of 3 keeps the newest three, contiguous.
    recent = await store.history(cid, max_turns=50, token_budget=3, count_tokens=lambda _: 1)
    assert [m.text for m in recent] == ["a3", "q4", "a4"]
    # A big message stops the walk back in time (no skipping over it).
    big = await store.intake(make_message("long"), text="x" * 400, working_text="y" * 400)
    await store.append_outbound(big.conversation.id, "short")
    recent = await store.history(cid, max_turns=50, token_budget=50)
    assert [m.text for m in recent] == ["short"]
    assert await store.history(cid, max_turns=0, token_budget=100) == []
    assert await store.history(cid, max_turns=5, token_budget=0) == []


async def test_history_leaves_out_rejected_and_failed(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    ok = await store.intake(make_message("fine"), text="fine")
    await store.intake(make_message(), text="z" * 5000, rejected=True)
    sorry = await store.append_outbound(ok.conversation.id, "Too long, sorry")
    lost = await store.append_outbound(ok.conversation.id, "never arrived")
    await store.set_message_status(lost.id, "failed", error="timeout")
    texts = [m.text for m in await store.history(ok.conversation.id, max_turns=10, token_budget=99)]
    assert texts == ["fine", sorry.text]


async def test_messages_after_pages(store: ConversationStore, make_message: MakeMessage) -> None:
    await _conversation(store, make_message, 10)
    page = await store.messages_after("web", "conv-1", after_seq=4, limit=3)
    assert [m.seq for m in page] == [5, 6, 7]
    assert [m.seq for m in await store.messages_after("web", "conv-1", 18)] == [19, 20]
    assert await store.messages_after("web", "conv-1", 20) == []
    assert [m.seq for m in await store.messages_after("web", "conv-1", -5, limit=2)] == [1, 2]
    assert await store.messages_after("web", "conv-1", 0, limit=0) == []
    assert await store.messages_after("web", "nope", 0) == []
    assert await store.messages_after("slack", "conv-1", 0) == []  # keys are per channel
    assert len(await store.messages_after("web", "conv-1", 0, limit=10**9)) == 20


async def test_conversation_and_contact_updates(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    assert await store.get_conversation("web", "conv-1") is None
    result = await store.intake(make_message(), text="hi")
    cid = result.conversation.id
    for status in ("waiting_human", "with_human", "closed", "bot"):
        conv = await store.set_conversation_status(cid, status)
        assert conv.status == ConversationStatus(status)
    conv = await store.set_conversation_language(cid, "pt-BR")
    assert conv.language == "pt-BR" and conv.updated_at >= result.conversation.updated_at
    assert await store.get_conversation("web", "conv-1") == conv
    assert result.contact is not None
    contact = await store.set_contact_language(result.contact.id, "pt")
    assert contact.language == "pt"
    assert await store.get_contact(result.contact.id) == contact
    assert await store.get_contact(999_999) is None

    with pytest.raises(StoreError, match="unknown status 'gone'"):
        await store.set_conversation_status(cid, "gone")
    with pytest.raises(StoreError, match="no conversation"):
        await store.set_conversation_status(cid + 1, "closed")
    with pytest.raises(StoreError, match="not a language tag"):
        await store.set_conversation_language(cid, "<script>")
    with pytest.raises(StoreError, match="no contact"):
        await store.set_contact_language(999_999, "en")


HOSTILE = [
    "Robert'); DROP TABLE messages;--",
    "%s %(x)s {0} {x} $1 ? :name \\ \\\\ \\x00 \\u0000",
    "مرحبا بالعالم — שלום עולם",  # right-to-left scripts
    "e\u0301 n\u0303 \u200d\u200b\ufeff",  # combining marks, zero-width characters
    # ZWJ sequence, flag, mathematical letters (astral plane), last code point
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f1ef\U0001f1f5 "
    "\U0001d573\U0001d58a\U0001d591 \U0010fffd",
    "中文 日本語 한국어 ภาษาไทย",
    "line one\nline two\r\n\ttabbed",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_text_round_trips_unchanged(
    store: ConversationStore, make_message: MakeMessage, text: str
) -> None:
    result = await store.intake(make_message(key=text[:100]), text=text, working_text=text[::-1])
    reply = await store.append_outbound(result.conversation.id, text)
    stored = await store.messages_after("web", "conv-1", 0)
    assert [m.text for m in stored] == [text, text]
    assert stored[0].working_text == text[::-1]
    assert stored[0].idempotency_key == text[:100]
    assert stored[1] == reply


async def test_one_megabyte_message_is_stored_whole(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    text = ("ünïcödé ✓ " * 110_000)[:1_048_576]
    assert len(text) == 1_048_576
    result = await store.intake(make_message(), text=text, rejected=True)
    assert result.message.text == text
    (stored,) = await store.messages_after("web", "conv-1", 0)
    assert stored.text == text and stored.status == MessageStatus.REJECTED


async def test_out_of_range_numbers_from_outside(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    # A client-supplied seq or id may be any integer; nothing may crash with a driver error.
    await _conversation(store, make_message, 2)
    assert await store.messages_after("web", "conv-1", 10**30) == []
    assert len(await store.messages_after("web", "conv-1", -(10**30))) == 4
    conv = await store.get_conversation("web", "conv-1")
    assert conv is not None
    cid = conv.id
    assert len(await store.history(cid, max_turns=10**30, token_budget=10**30)) == 4
    with pytest.raises(StoreError):
        await store.append_outbound(10**30, "x")
    with pytest.raises(StoreError):
        await store.set_message_status(-(10**30), "sent")


async def test_status_changes_only_from_the_statuses_named(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """The compare-and-set agents and ``botkit handoff release`` use: a decision made on
    a status someone else has changed since is not applied."""
    cid = (await store.intake(make_message(), text="hi")).conversation.id
    human = ("waiting_human", "with_human")
    assert await store.change_conversation_status(cid, "bot", only_from=human) is None
    assert (await store.conversation_by_id(cid)).status == ConversationStatus.BOT
    await store.set_conversation_status(cid, "waiting_human")
    taken = await store.change_conversation_status(cid, "with_human", only_from=human)
    assert taken is not None and taken.status == ConversationStatus.WITH_HUMAN
    released = await store.change_conversation_status(cid, "bot", only_from=human)
    assert released is not None and released.status == ConversationStatus.BOT
    assert await store.change_conversation_status(cid, "bot", only_from=human) is None
    with pytest.raises(StoreError, match="no conversation"):
        await store.change_conversation_status(cid + 1, "bot", only_from=human)
    with pytest.raises(StoreError, match="unknown status"):
        await store.change_conversation_status(cid, "bot", only_from=("gone",))


async def test_a_message_is_kept_for_the_agent_only_while_a_human_has_it(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """The compare-and-set where a message becomes the agent's: a release that came
    first leaves it ``received``, for the bot to answer."""
    human = (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN)
    first = await store.intake(make_message("hi"), text="hi")
    cid = first.conversation.id
    await store.set_conversation_status(cid, "with_human")
    kept = await store.intake(make_message("for Ana"), text="for Ana")
    late = await store.intake(make_message("too late"), text="too late")
    finish = InboundFinish(kept.message, language="en", working_text="for Ana!")
    assert await store.finish_inbound(finish, only_while=human)
    released = await store.change_conversation_status(cid, "bot", only_from=human)
    assert released is not None
    assert not await store.finish_inbound(InboundFinish(late.message, "en"), only_while=human)
    stored = {m.text: m for m in await store.messages_after("web", "conv-1", 0, 10)}
    assert stored["for Ana"].status == MessageStatus.ANSWERED
    assert stored["for Ana"].working_text == "for Ana!"
    assert stored["too late"].status == MessageStatus.RECEIVED  # left for the bot
    assert stored["too late"].language is None  # nothing of it written
    assert await store.finish_inbound(InboundFinish(late.message, "en"))  # the bot's finish
    with pytest.raises(StoreError, match="unknown status"):
        await store.finish_inbound(InboundFinish(late.message), only_while=("gone",))


async def test_agent_messages_keep_the_agents_name_and_find_the_customer(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await store.intake(make_message(channel_ids={"chat": "1"}), text="hi")
    first = await store.intake(make_message(channel_ids={"chat": "7", "thread": "t"}), text="hi")
    cid = first.conversation.id
    assert await store.reply_target(cid) == {"chat": "7", "thread": "t"}  # the newest
    sent = await store.append_outbound(cid, "Ana here", agent="Ana")
    bot = await store.append_outbound(cid, "a bot reply")
    unnamed = await store.append_outbound(cid, "someone", agent="")
    assert (sent.agent, bot.agent, unnamed.agent) == ("Ana", None, "")
    stored = await store.messages_after("web", "conv-1", 0)
    assert [m.agent for m in stored] == [None, None, "Ana", None, ""]
    for bad in ("A" * 101, "x\x00y"):
        with pytest.raises(StoreError, match="agent name"):
            await store.append_outbound(cid, "text", agent=bad)
    assert await store.reply_target(cid + 1) == {}


async def test_a_delivered_agent_message_is_stored_once_per_delivery(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    cid = (await store.intake(make_message(key="d1"), text="hi")).conversation.id
    first = await store.append_outbound(cid, "Ana here", agent="Ana", delivery_key="ev-7")
    again = await store.append_outbound(cid, "Ana here", agent="Ana", delivery_key="ev-7")
    assert again == first and first.idempotency_key == "ev-7"
    assert [m.text for m in await store.messages_after("web", "conv-1", 0)] == ["hi", "Ana here"]
    # Keys are shared with customer deliveries of the channel: the same id is not stored
    # a second time as something else either.
    clash = await store.append_outbound(cid, "other", agent="Bo", delivery_key="d1")
    assert clash.text == "hi"
    with pytest.raises(StoreError, match="delivery key"):
        await store.append_outbound(cid, "x", agent="", delivery_key="")


async def test_conversations_by_status_page_after_a_position(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """Keyset paging on (updated_at, id), both orders, ties on updated_at included: the
    position round-trips through the database's timestamp type."""
    ids = []
    for n in range(5):
        cid = (await store.intake(make_message(conversation=f"c{n}"), text="hi")).conversation.id
        await store.set_conversation_status(cid, "waiting_human")
        ids.append(cid)
    for oldest in (True, False):
        seen: list[int] = []
        after = None
        while True:
            page = await store.conversations_with_status(
                ["waiting_human"], limit=2, oldest_first=oldest, after=after
            )
            seen += [c.id for c in page]
            if len(page) < 2:
                break
            last = page[-1]
            at = last.status_since if oldest else last.updated_at
            assert at is not None
            after = (at, last.id)
        assert seen == (ids if oldest else ids[::-1])
    everything = await store.conversations_with_status(["waiting_human"], oldest_first=True)
    tie = everything[2]  # the same time, a smaller id: only the larger ids follow
    assert tie.status_since is not None
    same_time = await store.conversations_with_status(
        ["waiting_human"], oldest_first=True, after=(tie.status_since, tie.id - 1)
    )
    assert same_time[0].id == tie.id


async def test_the_queue_order_is_time_in_the_status_not_activity(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    """A customer who writes again while waiting keeps their place; a status change (an
    agent taking it, the customer going back to the bot and asking again) starts anew,
    and so does a closed conversation reopened by a message."""
    ids = []
    for key in ("early", "late"):
        cid = (await store.intake(make_message(conversation=key), text="hi")).conversation.id
        await store.set_conversation_status(cid, "waiting_human")
        ids.append(cid)
    early, late = ids

    async def queue() -> list[int]:
        found = await store.conversations_with_status(["waiting_human"], oldest_first=True)
        return [c.id for c in found]

    before = await store.conversation_by_id(early)
    await store.intake(make_message("anyone there?", conversation="early"), text="anyone?")
    await store.set_conversation_status(early, "waiting_human")  # the same status again
    after = await store.conversation_by_id(early)
    assert after.updated_at > before.updated_at and after.status_since == before.status_since
    assert await queue() == [early, late]
    newest = await store.conversations_with_status(["waiting_human"])
    assert [c.id for c in newest] == [early, late]  # most recently active first

    await store.change_conversation_status(early, "bot", only_from=["waiting_human"])
    await store.set_conversation_status(early, "waiting_human")
    assert await queue() == [late, early]

    await store.set_conversation_status(late, "closed")
    closed = await store.conversation_by_id(late)
    reopened = await store.intake(make_message("hello again", conversation="late"), text="x")
    assert reopened.conversation.status == ConversationStatus.BOT
    assert reopened.conversation.status_since is not None
    assert closed.status_since is not None
    assert reopened.conversation.status_since > closed.status_since


async def test_a_channel_messages_translation_is_added_once_and_can_be_taken_back(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("hola"), text="hola")
    agent = await store.append_outbound(
        first.conversation.id, "Hi, Ana here.", agent="Ana", delivery_key="Ev1"
    )
    # Two processes translating a redelivery at once: one of them posts.
    async with ConversationStore(store.settings) as other:
        won = await store.add_translation(agent, "es(Hi, Ana here.)", language="es")
        lost = await other.add_translation(agent, "es(Hi, Ana here.)", language="es")
    assert won is not None and lost is None
    assert (won.text, won.working_text, won.language) == (
        "es(Hi, Ana here.)",
        "Hi, Ana here.",
        "es",
    )
    # Its post failed: the message is as written again.
    back = await store.remove_translation(agent)
    assert back is not None and (back.text, back.working_text) == ("Hi, Ana here.", None)
    with pytest.raises(StoreError):
        await store.add_translation(agent, "bad\x00text", language="es")
    assert await store.add_translation(first.message, "x", language="es") is None  # inbound
