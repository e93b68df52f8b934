"""find_conversations and conversation_messages: an operator finds a customer's
conversation by time, text, status or an unanswered message (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from clock_helpers import host_clock
from conftest import MakeMessage

from botkit.errors import StoreError, UnknownConversationError
from botkit.events import utcnow
from botkit.store import ConversationStore, InboundFinish
from botkit.store._search import MAX_SEARCH_TEXT


async def _say(
    store: ConversationStore, make_message: MakeMessage, text: str, conversation: str,
    *, working_text: str | None = None, channel: str = "web",
) -> int:  # fmt: skip
    stored = await store.intake(
        make_message(text, conversation=conversation, user=conversation, channel=channel),
        text=text,
        working_text=working_text,
        language="de" if working_text else None,
    )
    return stored.conversation.id


async def _keys(store: ConversationStore, **filters: object) -> list[str]:
    result = await store.find_conversations(**filters)  # type: ignore[arg-type]
    return [f.conversation.key for f in result.found]


async def test_text_is_found_ignoring_case_in_either_language(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await _say(store, make_message, "Wo ist meine Bestellung?", "de-1",
               working_text="Where is my ORDER?")  # fmt: skip
    await _say(store, make_message, "my order never came", "en-1")
    await _say(store, make_message, "hello", "en-2")

    assert await _keys(store, text="order") == ["en-1", "de-1"]  # newest first
    assert await _keys(store, text="BESTELLUNG") == ["de-1"]
    found = (await store.find_conversations(text="order")).found
    assert found[1].match is not None and found[1].match.working_text == "Where is my ORDER?"
    assert found[1].messages == 1
    assert await _keys(store, text="refund") == []


async def test_sql_wildcards_match_only_themselves(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    await _say(store, make_message, "a 100% refund", "percent")
    await _say(store, make_message, "a 100 refund", "plain")
    await _say(store, make_message, "file a_b.txt", "underscore")
    await _say(store, make_message, "file axb.txt", "letter")
    await _say(store, make_message, "back\\slash", "backslash")

    assert await _keys(store, text="%") == ["percent"]
    assert await _keys(store, text="100%") == ["percent"]
    assert await _keys(store, text="_") == ["underscore"]
    assert await _keys(store, text="a_b") == ["underscore"]
    assert await _keys(store, text="\\") == ["backslash"]
    assert await _keys(store, text="/") == []  # SQLAlchemy's escape character itself


async def test_text_that_no_message_can_hold_is_refused(store: ConversationStore) -> None:
    for bad in ("a\x00b", "x" * 100_000, "\ud800", ""):
        with pytest.raises(StoreError, match="text to search for"):
            await store.find_conversations(text=bad)
    # The longest allowed is searched (within SQLite's LIKE pattern limit).
    assert (await store.find_conversations(text="é" * MAX_SEARCH_TEXT)).found == []


async def test_a_time_window_finds_the_conversations_written_in_it(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    for hours_ago, key in ((3, "three"), (2, "two"), (1, "one")):
        with host_clock(timedelta(hours=-hours_ago)):
            await _say(store, make_message, f"written {hours_ago}h ago", key)
    await _say(store, make_message, "and again now", "three")  # last active now
    now = utcnow()

    def ago(minutes: int) -> object:
        return now - timedelta(minutes=minutes)

    assert await _keys(store, since=ago(130), until=ago(110)) == ["two"]
    assert await _keys(store, since=ago(190), until=ago(110)) == ["two", "three"]
    assert await _keys(store, since=ago(70)) == ["three", "one"]
    assert await _keys(store, until=ago(170)) == ["three"]
    assert await _keys(store, since=ago(-5)) == []
    naive = (now - timedelta(minutes=130)).replace(tzinfo=None)  # read as UTC
    assert await _keys(store, since=naive, until=ago(110)) == ["two"]
    found = (await store.find_conversations(since=ago(190), until=ago(170))).found
    assert [(f.messages, f.match and f.match.text) for f in found] == [(2, "written 3h ago")]


async def test_unanswered_means_no_reply_reached_the_customer(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    answered = await store.intake(make_message("q1", conversation="answered"), text="q1")
    await store.append_outbound(
        answered.conversation.id, "a1", in_reply_to_seq=1,
        finish=InboundFinish(answered.message),
    )  # fmt: skip
    failed = await store.intake(make_message("q2", conversation="failed"), text="q2")
    await store.append_outbound(failed.conversation.id, "a2", in_reply_to_seq=1,
                                status="failed", error="HTTP 502")  # fmt: skip
    await store.intake(make_message("q3", conversation="silent"), text="q3")
    rescued = await store.intake(make_message("q4", conversation="rescued"), text="q4")
    await store.append_outbound(rescued.conversation.id, "a4", in_reply_to_seq=1,
                                status="failed", error="timeout")  # fmt: skip
    await store.append_outbound(rescued.conversation.id, "sorry, here", agent="Sam")
    # A late reply to the first question does not answer the second one.
    late = await store.intake(make_message("q5", conversation="late"), text="q5")
    await store.intake(make_message("q6", conversation="late"), text="q6")
    await store.append_outbound(late.conversation.id, "a5", in_reply_to_seq=1)

    result = await store.find_conversations(unanswered=True)
    assert [(f.conversation.key, f.match and f.match.text) for f in result.found] == [
        ("late", "q6"),
        ("silent", "q3"),
        ("failed", "q2"),
    ]
    assert await _keys(store, unanswered=True, text="q2") == ["failed"]


async def test_listing_by_channel_and_status_with_limits(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await _say(store, make_message, "one", "w1")
    await _say(store, make_message, "two", "t1", channel="telegram")
    await _say(store, make_message, "three", "w2")
    await store.set_conversation_status(first, "with_human")

    listed = (await store.find_conversations()).found
    assert [f.conversation.key for f in listed] == ["w1", "w2", "t1"]  # by last activity
    assert listed[0].match is not None and listed[0].match.text == "one"
    assert await _keys(store, channel="web") == ["w1", "w2"]
    assert await _keys(store, statuses=["with_human"]) == ["w1"]
    assert await _keys(store, statuses=["bot"], channel="web") == ["w2"]
    assert await _keys(store, limit=1) == ["w1"]
    assert await _keys(store, text="t", channel="web") == ["w2"]
    with pytest.raises(StoreError, match="unknown status"):
        await store.find_conversations(statuses=["open"])


async def test_a_text_search_reads_at_most_max_scan_of_the_newest_messages(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    for n in range(5):
        await _say(store, make_message, f"needle {n}", f"c{n}")
    result = await store.find_conversations(text="needle", max_scan=2)
    assert [f.conversation.key for f in result.found] == ["c4", "c3"]
    assert result.truncated and result.scanned is not None
    assert result.scanned[1] - result.scanned[0] == 1
    whole = await store.find_conversations(text="needle")
    assert len(whole.found) == 5 and not whole.truncated


async def test_conversation_messages_in_order_with_their_writers(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    stored = await store.intake(make_message("hola", conversation="c", user="u-7"), text="hola",
                                working_text="hello", language="es")  # fmt: skip
    conv = stored.conversation.id
    await store.append_outbound(conv, "¡hola!", working_text="hi!", language="es",
                                in_reply_to_seq=1, status="failed", error="HTTP 500")  # fmt: skip
    await store.append_outbound(conv, "soy Ana", agent="Ana")

    shown = await store.conversation_messages(conv)
    assert [(s.message.seq, s.writer, s.message.agent) for s in shown] == [
        (1, "u-7", None),
        (2, None, None),
        (3, None, "Ana"),
    ]
    assert shown[0].writer_name == "Ann"
    assert (shown[1].message.status, shown[1].message.error) == ("failed", "HTTP 500")
    assert shown[1].message.working_text == "hi!"
    assert [
        s.message.seq for s in await store.conversation_messages(conv, after_seq=1, limit=1)
    ] == [2]
    with pytest.raises(UnknownConversationError):
        await store.conversation_messages(conv + 1000)
