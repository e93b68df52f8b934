"""Streaming by drafts (``sendMessageDraft``) in private chats: paced drafts, then the
same messages the edit path leaves; groups still edit; the fake validates drafts."""

from __future__ import annotations

import itertools

import pytest
from telegram import Bot
from telegram.error import BadRequest
from tg_helpers import TOKEN, MakeTg, gaps

from botkit.events import Button
from botkit.testing.fake_telegram_drafts import FakeTelegramDrafts
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.config import FloodLimits, RetryPolicy
from connectors.telegram.draft import DraftSupport, DraftWriter
from connectors.telegram.flood import FloodControl
from connectors.telegram.sender import DraftRefused, Sender, Target
from connectors.telegram.split import split_text, utf16_len
from connectors.telegram.stream import ReplyWriter

GROUP = -1001


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


async def test_a_private_reply_streams_as_paced_drafts_then_one_message(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.4, "typing_interval_s": 0.25}, word_delay=0.03)
    fake, text = tg.fake, words(60)  # ~1.8 s of streaming, 61 deltas
    fake.push(fake.updates.message(601, text))
    await tg.wait_answers(1, chat_id=601, within=30)
    await tg.settle()
    drafts = fake.drafts_in(601)
    times = [d.at for d in drafts]
    assert 3 <= len(drafts) <= 6  # paced: not one call per word
    assert min(gaps(times)) >= 0.39
    assert len({d.draft_id for d in drafts}) == 1  # one draft, animated as it grows
    assert all(b.text.startswith(a.text) for a, b in itertools.pairwise(drafts))
    [message] = fake.messages(601)
    assert message.text == f"echo: {text}" and len(message.versions) == 1
    assert message.versions[0][0] > times[-1]
    assert not fake.calls_to("editMessageText")
    assert fake.live_drafts(601) == []  # the message ended the draft
    # "typing" until the first draft shows the reply coming, not after.
    typing = fake.calls_to("sendChatAction", 601)
    assert typing and all(c.at < times[0] for c in typing)
    [_, stored] = await tg.history(601)
    assert (stored.text, stored.status) == (f"echo: {text}", "sent")


async def test_a_reply_finished_within_the_first_interval_is_one_message(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.5})
    tg.fake.push(tg.fake.updates.message(602, "short"))
    await tg.wait_answers(1, chat_id=602)
    await tg.settle()
    assert tg.answers(602) == ["echo: short"]
    assert not tg.fake.calls_to("sendMessageDraft", ok=False)


async def test_group_replies_still_stream_by_edits(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2}, word_delay=0.03)
    fake, text = tg.fake, words(40)
    fake.push(fake.updates.message(GROUP, f"@botkit_test_bot {text}"))
    await fake.wait_until(lambda: tg.answers(GROUP) == [f"echo: {text}"], within=30)
    await tg.settle()
    [message] = fake.messages(GROUP)
    assert len(message.versions) >= 3 and message.reply_to is not None  # quoted, edited
    assert not fake.calls_to("sendMessageDraft", ok=False)


async def test_streaming_edit_turns_drafts_off(make_tg: MakeTg) -> None:
    tg = await make_tg({"edit_interval_s": 0.2, "streaming": "edit"}, word_delay=0.03)
    tg.fake.push(tg.fake.updates.message(603, words(30)))
    await tg.fake.wait_until(lambda: tg.answers(603) == [f"echo: {words(30)}"], within=30)
    await tg.settle()
    assert tg.fake.calls_to("editMessageText", 603)
    assert not tg.fake.calls_to("sendMessageDraft", ok=False)


@pytest.mark.parametrize("streaming", ["auto", "edit"])
async def test_a_10000_character_reply_ends_as_the_edit_path_leaves_it(
    make_tg: MakeTg, streaming: str
) -> None:
    tg = await make_tg(
        {"edit_interval_s": 0.15, "streaming": streaming},
        bot={"max_message_chars": 20_000},
        plugins={"feedback": {}},  # rating buttons under the answer
        word_delay=0.002,
    )
    fake, text = tg.fake, " ".join(f"word{i:04d}" for i in range(1000))  # 9,999 characters
    fake.push(fake.updates.message(604, text))
    await fake.wait_until(lambda: len(tg.answers(604)) == 3, within=15)
    await tg.settle()
    messages = fake.messages(604)
    # What either path leaves: the reply split by split_text, buttons on the last part.
    assert [m.text for m in messages] == [p.strip() for p in split_text(f"echo: {text}")]
    assert [m.reply_markup is not None for m in messages] == [False, False, True]
    drafts = fake.drafts_in(604)
    if streaming == "edit":
        assert not drafts and fake.calls_to("editMessageText", 604)
        return
    assert all(0 < utf16_len(d.text) <= 4096 for d in drafts)
    # Complete parts went out while the rest still streamed, each part its own draft.
    assert messages[0].versions[0][0] < drafts[-1].at
    ids = [d.draft_id for d in drafts]
    assert len(set(ids)) >= 2 and ids == sorted(ids)
    assert not fake.calls_to("editMessageText", 604)  # the parts shown never changed
    assert fake.live_drafts(604) == []


# -- the fake validates drafts as Telegram does ------------------------------------------


@pytest.mark.parametrize(
    ("chat_id", "draft_id", "text", "error"),
    [
        (42, 0, "hello", "draft_id must be non-zero"),
        (-1001, 7, "hello", "TEXTDRAFT_PEER_INVALID"),  # drafts are for private chats
        (43, 7, "hello", "chat not found"),  # never wrote to the bot
        (42, 7, "x" * 4097, "too long"),
        (42, 7, "\U0001f600" * 2049, "too long"),  # 4,098 UTF-16 units
        (42, 7, " ", "non-empty"),
    ],
)
async def test_fake_refuses_drafts_telegram_refuses(
    fake: FakeTelegramDrafts, chat_id: int, draft_id: int, text: str, error: str
) -> None:
    fake.push(fake.updates.message(42, "hi"), fake.updates.message(-1001, "hi"))
    async with Bot(TOKEN, base_url=fake.base_url) as bot:
        assert await bot.send_message_draft(42, 7, "x" * 4096)
        with pytest.raises(BadRequest, match=f"(?i){error}"):
            await bot.send_message_draft(chat_id, draft_id, text)
    assert [len(d.text) for d in fake.drafts] == [4096]


async def test_fake_as_an_older_server_has_no_draft_method(fake: FakeTelegramDrafts) -> None:
    fake.drafts_supported = False
    fake.push(fake.updates.message(42, "hi"))
    async with Bot(TOKEN, base_url=fake.base_url) as bot:
        with pytest.raises(Exception, match="Not Found"):
            await bot.send_message_draft(42, 7, "hello")
        await bot.send_message(42, "a message still works")
    assert [c.status for c in fake.calls_to("sendMessageDraft", ok=False)] == [404]


class OldBot(Bot):
    """python-telegram-bot before 22.6: no ``send_message_draft``."""

    send_message_draft = None


async def test_a_library_without_drafts_counts_as_a_server_without_them(
    fake: FakeTelegramDrafts,
) -> None:
    fake.push(fake.updates.message(42, "hi"))
    async with OldBot(TOKEN, base_url=fake.base_url) as bot:
        sender = Sender(bot, FloodControl(FloodLimits()), RetryPolicy(), str)
        with pytest.raises(DraftRefused, match=r"22\.6") as refused:
            await sender.send_draft(Target(42), 7, "hello")
    assert refused.value.method_missing and not fake.calls_to("sendMessageDraft", ok=False)


async def test_draft_writer_leaves_the_messages_and_ids_the_edit_writer_leaves(
    fake: FakeTelegramDrafts,
) -> None:
    fake.push(fake.updates.message(42, "hi"), fake.updates.message(43, "hi"))
    growing = ["Hello", "Hello, world and", "Hello, world and more", "Hello, world and more!"]
    markup = ButtonCodec().keyboard((Button("Yes", "yes"),))
    async with Bot(TOKEN, base_url=fake.base_url) as bot:
        sender = Sender(bot, FloodControl(FloodLimits(per_chat_interval_s=0)), RetryPolicy(), str)
        drafts = DraftWriter(ReplyWriter(sender, Target(42), limit=20), DraftSupport("auto"))
        edits = ReplyWriter(sender, Target(43), limit=20)
        for text in growing:
            assert await drafts.progress(text) and await edits.progress(text)
        await drafts.finish(growing[-1], markup)
        await edits.finish(growing[-1], markup)
    assert [d.text for d in fake.drafts_in(42)] == ["Hello", "Hello, world and", "more", "more!"]
    drafted, edited = fake.messages(42), fake.messages(43)
    assert [m.text for m in drafted] == [m.text for m in edited] == ["Hello, world and", "more!"]
    assert [m.reply_markup for m in drafted] == [m.reply_markup for m in edited]
    assert drafts.message_ids == [m.message_id for m in drafted]
    assert edits.message_ids == [m.message_id for m in edited]
    assert [len(m.versions) for m in drafted] == [1, 1]  # no edits: sent once complete
