"""Ratings of replies on both databases: which reply a rating is for, one rating per
reply and person, the report, and that ratings go with their conversation or person."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from conftest import MakeMessage

from botkit.events import Button, utcnow
from botkit.store import ConversationStore, StoreSettings
from botkit.store.records import StoredMessage

RATE = (Button("👍", "👍"), Button("👎", "👎"))


def offered(reply: StoredMessage) -> bool:
    return RATE[0] in reply.buttons


def is_rating(message: StoredMessage) -> bool:
    return message.text in ("👍", "👎")


async def test_the_newest_reply_that_offered_a_rating_is_rated(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    asked = await store.intake(make_message("where is my parcel?"), text="where is my parcel?")
    conversation_id = asked.conversation.id
    rated = await store.append_outbound(conversation_id, "On its way.", buttons=RATE)
    await store.append_outbound(conversation_id, "Lost reply", buttons=RATE, status="failed")
    thumbs = await store.intake(make_message("👍"), text="👍")
    first = await store.rate_reply(thumbs.message, "good", offered)
    assert first is not None and (first.reply.seq, first.previous) == (rated.seq, None)
    # Changing one's mind replaces the rating; the bot's reply to a rating is passed over.
    await store.append_outbound(conversation_id, "Thanks!", in_reply_to_seq=thumbs.message.seq)
    again = await store.intake(make_message("👎"), text="👎")
    second = await store.rate_reply(again.message, "bad", offered, is_rating=is_rating)
    assert second is not None and (second.reply.seq, second.previous) == (rated.seq, "good")
    report = await store.feedback_report(utcnow() - timedelta(minutes=1))
    assert report.counts == {"web": {"good": 0, "bad": 1}}
    assert [(r.conversation_key, r.reply_seq, r.text) for r in report.latest_bad] == [
        ("conv-1", rated.seq, "On its way.")
    ]
    assert (await store.feedback_report(utcnow() + timedelta(minutes=1))).counts == {}


async def test_nothing_to_rate_stores_nothing(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    thumbs = await store.intake(make_message("👍"), text="👍")
    assert await store.rate_reply(thumbs.message, "good", offered) is None
    await store.append_outbound(thumbs.conversation.id, "A notice without buttons.")
    later = await store.intake(make_message("👍"), text="👍")
    assert await store.rate_reply(later.message, "good", offered) is None
    assert (await store.feedback_report(utcnow() - timedelta(minutes=1))).counts == {}


async def test_a_typed_rating_after_someone_elses_word_rates_nothing(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("where is my parcel?"), text="where is my parcel?")
    conversation_id = first.conversation.id
    await store.append_outbound(conversation_id, "On its way.", buttons=RATE)
    await store.append_outbound(conversation_id, "Ann here, I checked it too.", agent="Ann")
    thumbs = await store.intake(make_message("👍"), text="👍")  # thanks to Ann
    assert await store.rate_reply(thumbs.message, "good", offered, is_rating=is_rating) is None
    # Nor after a fixed reply of the bot's to someone's message (an intent, /lang...).
    other = await store.intake(make_message("hi", conversation="c2"), text="hi")
    await store.append_outbound(other.conversation.id, "Hello!", buttons=RATE)
    hours = await store.intake(make_message("opening hours?", conversation="c2"),
                               text="opening hours?")  # fmt: skip
    await store.append_outbound(other.conversation.id, "9-5", in_reply_to_seq=hours.message.seq)
    thumbs = await store.intake(make_message("👍", conversation="c2"), text="👍")
    assert await store.rate_reply(thumbs.message, "good", offered, is_rating=is_rating) is None
    assert (await store.feedback_report(utcnow() - timedelta(minutes=1))).counts == {}


async def test_ratings_go_with_their_conversation_and_their_person(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    since = utcnow() - timedelta(minutes=1)
    for user, conversation in (("ann", "c-ann"), ("bob", "c-bob")):
        stored = await store.intake(make_message("hi", conversation=conversation, user=user),
                                    text="hi")  # fmt: skip
        await store.append_outbound(stored.conversation.id, "Hello!", buttons=RATE)
        thumbs = await store.intake(make_message("👎", conversation=conversation, user=user),
                                    text="👎")  # fmt: skip
        rated = await store.rate_reply(thumbs.message, "bad", offered)
        assert rated is not None and rated.reply.seq == 2
    # Bob also rates in Ann's conversation (a shared Slack thread).
    shared = await store.intake(make_message("👍", conversation="c-ann", user="bob"), text="👍")
    rated = await store.rate_reply(shared.message, "good", offered)
    assert rated is not None and rated.reply.seq == 2
    assert (await store.feedback_report(since)).counts == {"web": {"good": 1, "bad": 2}}
    await store.forget_contact("web", "bob")
    assert (await store.feedback_report(since)).counts == {"web": {"good": 0, "bad": 1}}
    await store.purge_inactive(utcnow() + timedelta(days=1))
    assert (await store.feedback_report(since)).counts == {}


async def test_a_rating_names_the_answer_it_is_for(
    store: ConversationStore, make_message: MakeMessage
) -> None:
    first = await store.intake(make_message("where is my parcel?"), text="where is my parcel?")
    old = await store.append_outbound(first.conversation.id, "On its way.", buttons=RATE,
                                      in_reply_to_seq=first.message.seq)  # fmt: skip
    second = await store.intake(make_message("and my invoice?"), text="and my invoice?")
    await store.append_outbound(second.conversation.id, "Attached.", buttons=RATE,
                                in_reply_to_seq=second.message.seq)  # fmt: skip
    click = await store.intake(make_message("👎 #1"), text="👎 #1")
    rated = await store.rate_reply(click.message, "bad", offered, answering=first.message.seq)
    assert rated is not None and rated.reply.seq == old.seq
    nothing = await store.rate_reply(click.message, "bad", offered, answering=99)
    assert nothing is None


async def test_replicas_taking_two_clicks_at_once_keep_one_rating(
    migrated_db_url: str, store: ConversationStore, make_message: MakeMessage
) -> None:
    # Two processes on one database, each handling one click of a double click: one
    # statement (an upsert), so neither fails on the other's row.
    stored = await store.intake(make_message("hi"), text="hi")
    await store.append_outbound(stored.conversation.id, "Hello!", buttons=RATE)
    async with ConversationStore(StoreSettings(url=migrated_db_url)) as replica:
        for round_ in range(10):
            one = await store.intake(make_message("👍"), text="👍")
            two = await replica.intake(make_message("👎"), text="👎")
            results = await asyncio.gather(
                store.rate_reply(one.message, "good", offered),
                replica.rate_reply(two.message, "bad", offered),
                return_exceptions=True,
            )
            assert all(not isinstance(r, BaseException) for r in results), (round_, results)
    report = await store.feedback_report(utcnow() - timedelta(minutes=1))
    assert sum(report.counts["web"].values()) == 1
