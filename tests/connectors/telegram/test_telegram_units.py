"""Pure parts of the connector: splitting, texts, config, buttons, pacing."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from pydantic import ValidationError
from telegram import Update
from tg_helpers import TOKEN

from botkit.errors import ConnectorError
from botkit.testing.telegram_updates import UpdateFactory
from connectors.telegram import TelegramConfig, texts
from connectors.telegram._shape import problem, update_problem
from connectors.telegram.buttons import ButtonCodec
from connectors.telegram.config import FloodLimits
from connectors.telegram.flood import FloodControl
from connectors.telegram.sender import Target
from connectors.telegram.split import split_text, utf16_len
from connectors.telegram.updates import BotIdentity, Kind, classify, unreadable

# -- splitting -------------------------------------------------------------------------


def test_text_that_fits_is_one_unchanged_part() -> None:
    assert split_text("hello  world ", 4096) == ["hello  world "]
    assert split_text("", 10) == [""]


@pytest.mark.parametrize("seed", range(20))
def test_parts_fit_and_nothing_but_whitespace_is_lost(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["a", "b", " ", "\n", ". ", "é", "\U0001f600", "\u0301", "\u200d", "字"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3000)))
    limit = rng.choice([2, 3, 7, 64, 500])
    parts = split_text(text, limit)
    assert all(utf16_len(p) <= limit for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )


def test_split_prefers_paragraphs_then_lines_then_sentences_then_words() -> None:
    text = "a" * 60 + "\n\n" + "b" * 30 + "\n" + "c" * 5 + ". " + "d" * 20
    assert split_text(text, 100)[0] == "a" * 60
    text = "a" * 60 + "\n" + "b" * 30 + ". " + "c" * 20
    assert split_text(text, 100)[0] == "a" * 60
    text = "a" * 60 + ". " + "b" * 30 + " " + "c" * 20
    assert split_text(text, 100)[0] == "a" * 60 + "."
    text = "a" * 55 + " " + "b" * 60
    assert split_text(text, 100) == ["a" * 55, "b" * 60]
    text = "a" * 10 + " " + "b" * 150  # a break only in the first half: cut hard
    assert split_text(text, 100)[0] == text[:100]


def test_hard_cut_keeps_combining_marks_with_their_letter() -> None:
    text = "e\u0301" * 10  # 20 code points, no spaces
    parts = split_text(text, 5)
    assert all(not p.startswith("\u0301") for p in parts)
    assert "".join(parts) == text


@pytest.mark.parametrize(
    "sequence",
    [
        "\u0e01\u0e34",  # Thai KO KAI + SARA I (Mn, combining class 0)
        "\u0915\u093f",  # Devanagari KA + VOWEL SIGN I (Mc)
        "1\ufe0f\u20e3",  # keycap one (variation selector, enclosing mark Me)
        "\U0001f44d\U0001f3fd",  # thumbs up, medium skin tone
        "\U0001f469\u200d\U0001f4bb",  # woman technologist (ZWJ sequence)
        "\u0628\u200c",  # Arabic BEH + zero width non-joiner
    ],
)
def test_hard_cut_keeps_every_kind_of_mark_with_its_character(sequence: str) -> None:
    text = "x" + sequence * 200  # no break anywhere: every cut is a hard cut
    for limit in (7, 10, 25):
        parts = split_text(text, limit)
        assert all(utf16_len(p) <= limit for p in parts)
        assert "".join(parts) == text
        # Every part after the first starts where a sequence starts.
        assert all(p.startswith(sequence) for p in parts[1:]), (limit, parts[:4])


@pytest.mark.parametrize(
    "text",
    [
        "a" + "\u0301" * 5000,  # "zalgo": one letter, 5,000 marks (5,001 units)
        "x\u200d" * 3000,  # 6,000 units joined by ZWJ
        "\U0001f44d" + "\U0001f3fd" * 3000,  # 6,002 units of skin-tone modifiers
    ],
)
def test_a_long_glued_run_is_cut_at_the_limit_not_into_single_characters(text: str) -> None:
    parts = split_text(text)
    assert len(parts) == 2
    assert utf16_len(parts[0]) >= 4096 - 1 and utf16_len(parts[1]) <= 4096
    assert "".join(parts) == text


def test_hard_cut_steps_back_a_little_only() -> None:
    # 20 marks after the limit: the cut steps back before their letter...
    text = "b" * 90 + "e" + "\u0301" * 20 + "c" * 50
    assert split_text(text, 100)[0] == "b" * 90
    # ...but not through 40, nor below half the window.
    text = "b" * 60 + "e" + "\u0301" * 60 + "c" * 50
    assert split_text(text, 100)[0] == text[:100]
    text = "b" * 9 + "e" + "\u0301" * 20  # the letter is below half the window
    assert split_text(text, 20)[0] == text[:20]
    text = "b" * 10 + "e" + "\u0301" * 20  # at half: still kept whole
    assert split_text(text, 20)[0] == "b" * 10


@pytest.mark.parametrize("seed", range(12))
def test_parts_never_decrease_as_a_streamed_text_grows(seed: int) -> None:
    # A streamed answer is shown as it grows; fewer parts would leave a stale message.
    rng = random.Random(seed)
    pieces = ["a", "b", " ", "\n", ". ", "\u0301", "\u0301" * 40, "x\u200d", "\U0001f3fd"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(40, 120)))
    limit = rng.choice([8, 16, 50])
    previous = 0
    for end in range(1, len(text) + 1):
        count = len([p for p in split_text(text[:end], limit) if p.strip()])
        assert count >= previous, (seed, end)
        previous = count


def test_invalid_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("abc", 1)


# -- texts -----------------------------------------------------------------------------


def test_every_table_has_the_same_languages_and_english() -> None:
    assert set(texts.GREETING) == set(texts.HELP) == set(texts.UNSUPPORTED)
    assert "en" in texts.GREETING


@pytest.mark.parametrize(
    ("code", "lang"),
    [("ES", "es"), ("pt_BR", "pt"), ("zz", "en"), ("", "en"), (None, "en"), ("-", "en")],
)
def test_pick_falls_back_to_primary_then_english(code: str | None, lang: str) -> None:
    assert texts.pick(texts.HELP, code) == texts.HELP[lang]


def test_pick_prefers_overrides() -> None:
    assert texts.pick(texts.HELP, "pt-br", {"pt-br": "Oi"}) == "Oi"
    assert texts.pick(texts.HELP, "fr", {"en": "Custom"}) == texts.HELP["fr"]
    assert texts.pick(texts.HELP, "xx", {"en": "Custom"}) == "Custom"


def test_pick_tagged_names_the_language_of_the_text() -> None:
    # The bot stores its "text only" answer with this language, and does not translate it.
    assert texts.pick_tagged(texts.HELP, "pt_BR") == (texts.HELP["pt"], "pt")
    assert texts.pick_tagged(texts.HELP, "pt-br", {"pt-br": "Oi"}) == ("Oi", "pt-br")
    assert texts.pick_tagged(texts.HELP, "zz") == (texts.HELP["en"], "en")


# -- what the bot cannot read --------------------------------------------------------------


PHOTO = [{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}]


@pytest.mark.parametrize(
    ("text", "extra", "cannot"),
    [
        (None, {"photo": PHOTO}, True),
        (None, {"photo": PHOTO, "caption": "is this covered?"}, False),
        (None, {"location": {"latitude": 52.5, "longitude": 13.4}}, True),
        (None, {"contact": {"phone_number": "+1", "first_name": "A"}}, True),
        ("hello", None, False),
    ],
    ids=["photo", "photo-with-caption", "location", "contact", "text"],
)
def test_messages_the_bot_cannot_read(
    text: str | None, extra: dict[str, Any] | None, cannot: bool
) -> None:
    data = UpdateFactory(bot_id=1, bot_username="b").message(5, text, extra=extra)
    action = classify(Update.de_json(data, None), BotIdentity(1, "b"), "all", ButtonCodec())
    assert action.kind is Kind.SUBMIT and action.message is not None
    assert unreadable(action.message) is cannot


# -- config ----------------------------------------------------------------------------


def config(**kw: Any) -> TelegramConfig:
    return TelegramConfig.model_validate({"token": TOKEN, **kw})


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "123:short",
        "${TELEGRAM_TOKEN}",
        "123456:" + "a" * 19,
        " 1:" + "a" * 30,
        "1:a b" + "c" * 30,
    ],
)
def test_bad_tokens_are_refused_without_being_repeated(token: str) -> None:
    with pytest.raises(ValidationError) as err:
        config(token=token)
    message = "".join(e["msg"] for e in err.value.errors())
    assert "BotFather" in message
    if len(token) > 8:
        assert token not in message


def test_token_is_a_secret() -> None:
    cfg = config()
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.model_dump())


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "sms"},
        {"group_replies": "sometimes"},
        {"base_url": "ftp://x"},
        {"poll_timeout_s": 51},
        {"flood": {"per_chat_interval_s": -1}},
        {"flood": {"unknown": 1}},
        {"greeting": {"not a tag!": "x"}},
        {"greeting": {"es": ""}},
        {"help": {"en": "x" * 5000}},
        {"surprise": True},
    ],
)
def test_invalid_settings_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config(**kw)


@pytest.mark.parametrize("timeout", [0, -1])
def test_short_polling_is_refused_with_the_reason(timeout: int) -> None:
    # 0 would call getUpdates in a tight loop (a long poll with 1 s answers at once anyway).
    with pytest.raises(ValidationError) as err:
        config(poll_timeout_s=timeout)
    [problem] = err.value.errors()
    assert problem["loc"] == ("poll_timeout_s",)
    assert "at least 1 second" in problem["msg"] and "non-stop" in problem["msg"]
    assert config(poll_timeout_s=1).poll_timeout_s == 1


def test_text_override_keys_are_normalized() -> None:
    assert config(greeting={"PT_br": "Oi"}).greeting == {"pt-br": "Oi"}


# -- buttons ---------------------------------------------------------------------------


def test_button_values_round_trip() -> None:
    codec = ButtonCodec(capacity=2)
    short, long_value, tricky = "yes", "x" * 65, "#h:looks-like-ours"
    assert codec.encode(short) == short
    long_key = codec.encode(long_value)
    assert long_key != long_value and codec.decode(long_key) == long_value
    assert codec.decode(codec.encode(tricky)) == tricky  # never mistaken for a digest
    assert len(codec.encode("é" * 40).encode()) <= 64  # 80 bytes in UTF-8: hashed
    assert codec.decode("#h:unknown") is None
    assert codec.decode(long_key) is None  # capacity 2: the oldest long value is forgotten


def test_keyboard_has_one_button_per_row() -> None:
    from botkit.events import Button

    markup = ButtonCodec().keyboard((Button("A", "a"), Button("", "b")))
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["A"], ["b"]]
    assert ButtonCodec().keyboard(()) is None


# -- reply targets ---------------------------------------------------------------------


def test_targets_from_keys_and_ids() -> None:
    assert Target.for_reply("42", {}).chat_id == 42
    group = Target.for_reply("-100:7", {"message_id": "9"})
    assert (group.chat_id, group.thread_id, group.reply_to_message_id) == (-100, 7, 9)
    assert Target.for_reply("42", {"message_id": "9"}).reply_to_message_id is None  # private


@pytest.mark.parametrize("key", ["web:abc", "", "12:x", "1e3"])
def test_foreign_conversation_keys_are_refused(key: str) -> None:
    with pytest.raises(ConnectorError):
        Target.for_reply(key, {})


# -- pacing ----------------------------------------------------------------------------


async def test_flood_control_spaces_one_chat_and_pauses_all() -> None:
    flood = FloodControl(FloodLimits(per_chat_interval_s=0.1, global_per_second=1000))
    stamps: list[float] = []

    async def send(chat: int) -> None:
        async with flood.chat_turn(chat), flood.message_slot(chat):
            stamps.append(time.monotonic())

    await asyncio.gather(*(send(1) for _ in range(3)))
    assert stamps[1] - stamps[0] >= 0.099 and stamps[2] - stamps[1] >= 0.099
    flood.pause(0.2)
    start = time.monotonic()
    await send(2)
    assert time.monotonic() - start >= 0.19


# -- field types -------------------------------------------------------------------------


def test_well_formed_updates_of_every_kind_have_no_problem() -> None:
    u = UpdateFactory(bot_id=1, bot_username="b")
    place = {"latitude": 52, "longitude": 13.4}  # a JSON number may lack its point
    updates = [
        u.message(5, "/start@b"),
        u.message(-100, "@b hi", reply_to_bot=True, thread_id=3),
        u.sticker(5),
        u.photo(5, "a caption"),
        u.voice(5, language_code=None),
        u.callback(-100, "yes"),
        u.message(5, extra={"location": place}),
        u.message(5, extra={"venue": {"location": place, "title": "Shop", "address": "Main"}}),
        u.message(5, extra={"contact": {"phone_number": "+1", "first_name": "A"}}),
        u.message(5, extra={"document": {"file_id": "f", "file_unique_id": "u", "file_size": 3}}),
    ]
    for data in updates:
        assert problem(data) is None, data
        assert update_problem(Update.de_json(data, None)) is None, data


def test_a_field_of_the_wrong_type_is_named_without_its_value() -> None:
    u = UpdateFactory(bot_id=1, bot_username="b")
    data = u.message(5, "Card 4111")
    data["message"]["from"]["is_bot"] = 0
    assert problem(data) == "message.from.is_bot is an integer, not a boolean"
    data["message"]["chat"]["id"] = True  # JSON's true is no integer
    assert problem(data) == "message.chat.id is a boolean, not an integer"
    assert problem([data]) == "the update is a list, not an object"
    data = u.message(5, extra={"location": {"latitude": "52", "longitude": 13}})
    assert problem(data) == "message.location.latitude is a string, not a number"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://bot.example/hook", True),
        ("https://bot.example:8443/hook", True),
        ("https://bot.example:88/hook", True),
        ("https://bot.example:9000/hook", False),  # setWebhook would refuse it
        ("https://bot.example:8080/hook", False),
        ("http://127.0.0.1:9000/hook", True),  # a local Bot API server, tests
    ],
)
def test_webhook_url_ports_are_the_ones_telegram_posts_to(url: str, ok: bool) -> None:
    from pydantic import ValidationError

    from connectors.telegram.config import WebhookConfig

    if ok:
        assert WebhookConfig(url=url).url == url
    else:
        with pytest.raises(ValidationError, match="443, 80, 88 and 8443"):
            WebhookConfig(url=url)
