"""Showing answers: splitting, streaming by edits (``streaming = "edit"``; drafts are in
test_telegram_drafts.py), typing, quick replies and clicks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from tg_helpers import MakeTg, gaps

from botkit.events import Button
from botkit.feedback import texts as feedback_texts
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler, StopPropagation
from connectors.telegram.split import utf16_len

LONG_VALUE = "order:" + "x" * 100  # longer than Telegram's 64-byte callback data


class Menu(Handler):
    """Answers "menu" with quick replies."""

    def check(self, ctx: Context) -> bool:
        return ctx.text == "menu"

    async def handle(self, ctx: Context) -> None:
        ctx.set_reply("Pick one", buttons=(Button("Yes", "yes"), Button("Order", LONG_VALUE)))
        raise StopPropagation


async def test_long_answer_is_split_at_word_boundaries(make_tg: MakeTg) -> None:
    tg = await make_tg(bot={"max_message_chars": 20_000})
    words = [f"word{i:04d}" for i in range(1000)]  # 9,999 characters
    tg.fake.push(tg.fake.updates.message(501, " ".join(words)))
    parts = [m.text for m in await tg.wait_answers(3)]
    await tg.settle()
    parts = tg.answers(501)
    assert len(parts) == 3
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == ["echo:", *words]  # nothing lost, no word cut


async def test_split_counts_utf16_units(make_tg: MakeTg) -> None:
    tg = await make_tg(bot={"max_message_chars": 20_000})
    emoji = "\U0001f600" * 3000  # 3,000 characters, 6,000 UTF-16 units, no spaces
    tg.fake.push(tg.fake.updates.message(502, emoji))
    await tg.wait_answers(2)
    await tg.settle()
    parts = tg.answers(502)
    assert len(parts) == 2 and all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == "echo: " + emoji  # a hard cut between two emoji


async def test_a_zalgo_answer_is_two_messages_not_hundreds(make_tg: MakeTg) -> None:
    tg = await make_tg(bot={"max_message_chars": 20_000})
    text = "a" + "\u0301" * 5000  # a model repeating a "zalgo" string back: 5,006 units
    tg.fake.push(tg.fake.updates.message(508, text))
    await tg.wait_answers(2)
    await tg.settle()
    parts = tg.answers(508)
    assert len(parts) == 2 and all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parts) == f"echo: {text}"


async def test_streamed_answer_is_edited_at_most_once_per_interval(make_tg: MakeTg) -> None:
    tg = await make_tg(
        {"edit_interval_s": 0.3, "typing_interval_s": 0.5, "streaming": "edit"}, word_delay=0.03
    )
    text = " ".join(f"w{i}" for i in range(60))  # ~1.8 s of streaming
    tg.fake.push(tg.fake.updates.message(503, text))
    await tg.fake.wait_until(lambda: tg.answers(503) == [f"echo: {text}"], within=30)
    await tg.settle()
    [message] = tg.fake.messages(503)
    times = [at for at, _ in message.versions]
    assert len(times) >= 4  # a first message, then several edits
    assert min(gaps(times)) >= 0.29
    # Each version extends the previous one: the answer grows in place.
    texts = [t for _, t in message.versions]
    assert all(b.startswith(a.rstrip()) for a, b in itertools.pairwise(texts))
    typing = tg.fake.calls_to("sendChatAction", 503)
    assert typing and typing[0].params["action"] == "typing"
    assert typing[0].at < times[0]


async def test_short_answer_is_one_message_without_edits(make_tg: MakeTg) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(504, "short"))
    await tg.wait_answers(1)
    await tg.settle()
    assert [len(m.versions) for m in tg.fake.messages(504)] == [1]
    assert not tg.fake.calls_to("editMessageText")


async def test_quick_replies_become_buttons_and_clicks_come_back(make_tg: MakeTg) -> None:
    tg = await make_tg()
    tg.bot.pipeline.add_handler(Menu())
    fake = tg.fake
    fake.push(fake.updates.message(505, "menu"))
    [menu] = await tg.wait_answers(1)
    assert menu.text == "Pick one"
    assert menu.reply_markup is not None
    rows = menu.reply_markup["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["Yes"], ["Order"]]
    data = [row[0]["callback_data"] for row in rows]
    assert data[0] == "yes" and len(data[1].encode()) <= 64

    click, long_click = fake.updates.callback(505, data[0]), fake.updates.callback(505, data[1])
    fake.push(click, long_click, click)  # the first click delivered twice
    await tg.wait_answers(3)
    await tg.settle()
    assert tg.answers(505) == ["Pick one", "echo: yes", f"echo: {LONG_VALUE}"]
    answered = fake.calls_to("answerCallbackQuery")
    ids = {click["callback_query"]["id"], long_click["callback_query"]["id"]}
    assert {c.params["callback_query_id"] for c in answered} == ids


async def test_a_rating_button_under_an_older_answer_rates_that_answer(
    make_tg: MakeTg,
) -> None:
    # The feedback plugin's 👍/👎 stay under every answer on Telegram; each names the
    # message its answer answered, so an old keyboard rates its own answer.
    tg = await make_tg(plugins={"feedback": {}})
    fake = tg.fake
    fake.push(fake.updates.message(508, "Where is my parcel?"))
    [first] = await tg.wait_answers(1)
    fake.push(fake.updates.message(508, "And my invoice?"))
    await tg.wait_answers(2)
    rows = first.reply_markup["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["👍"], ["👎"]]
    fake.push(fake.updates.callback(508, rows[1][0]["callback_data"]))  # 👎 on the first
    await tg.wait_answers(3)
    await tg.settle()
    assert tg.answers(508)[-1] == feedback_texts.SORRY["en"]
    report = await tg.bot.store.feedback_report(datetime(2000, 1, 1, tzinfo=UTC))
    assert [r.text for r in report.latest_bad] == ["echo: Where is my parcel?"]


async def test_unknown_button_data_is_only_acknowledged(make_tg: MakeTg) -> None:
    tg = await make_tg()
    fake = tg.fake
    fake.push(fake.updates.callback(506, "#h:forgotten"), fake.updates.message(506, "probe"))
    await tg.wait_answers(1)
    await fake.wait_until(lambda: bool(fake.calls_to("answerCallbackQuery")), 30)
    assert tg.answers(506) == ["echo: probe"]


async def test_streamed_answer_continues_in_a_new_message_past_the_limit(make_tg: MakeTg) -> None:
    tg = await make_tg(
        {"edit_interval_s": 0.15, "streaming": "edit"},
        bot={"max_message_chars": 20_000},
        word_delay=0.002,
    )
    words = [f"word{i:05d}" for i in range(500)]  # 5,500 characters, streamed word by word
    tg.fake.push(tg.fake.updates.message(507, " ".join(words)))
    await tg.fake.wait_until(lambda: len(tg.answers(507)) == 2, within=30)
    await tg.settle()
    first, second = tg.fake.messages(507)
    assert len(first.versions) >= 2  # it was on screen before the answer was complete
    assert all(utf16_len(t) <= 4096 for m in (first, second) for _, t in m.versions)
    assert f"{first.text} {second.text}".split() == ["echo:", *words]


@pytest.mark.parametrize("previews", [False, True])
async def test_link_previews_are_off_unless_configured(make_tg: MakeTg, previews: bool) -> None:
    settings = {"link_previews": previews, "streaming": "edit", "edit_interval_s": 0.1}
    tg = await make_tg(settings, word_delay=0.03)
    text = "@botkit_test_bot see https://evil.example " + " ".join(["now"] * 30)
    tg.fake.push(tg.fake.updates.message(-640, text))
    await tg.wait_answers(1, -640)
    await tg.settle()
    calls = tg.fake.calls_to("sendMessage", -640) + tg.fake.calls_to("editMessageText", -640)
    assert len(calls) >= 2  # sent and edited: both are checked
    expected = None if previews else {"is_disabled": True}
    assert all(c.params.get("link_preview_options") == expected for c in calls)
