"""The connector's own texts: every table in the widget's 13 languages, and Telegram's
language codes (lower case, "zh-hans", "zh-tw", "pt-br") finding them."""

from __future__ import annotations

import re

import pytest
from tg_helpers import MakeTg

from botkit.language.default_texts import LANGUAGES
from connectors.telegram import texts

TABLES = {"GREETING": texts.GREETING, "HELP": texts.HELP, "UNSUPPORTED": texts.UNSUPPORTED}

# What a translation must keep as it is: slash commands and {placeholders}.
_KEPT = re.compile(r"/[a-z]+\b|\{[a-z_]+\}")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_speaks_the_widgets_languages(name: str) -> None:
    table = TABLES[name]
    assert sorted(table) == sorted(LANGUAGES)
    kept = sorted(_KEPT.findall(table["en"]))
    for language, text in table.items():
        assert text.strip() == text and text, (name, language)
        assert sorted(_KEPT.findall(text)) == kept, (name, language)
        # A command glued to a letter (CJK has no spaces) is not one Telegram links.
        for command in re.finditer(r"/[a-z]+", text):
            before = text[command.start() - 1] if command.start() else " "
            assert not before.isalnum(), (name, language, before)


@pytest.mark.parametrize(
    ("code", "key"),
    [
        ("zh-hans", "zh-Hans"),
        ("zh-hant", "zh-Hant"),
        ("zh-tw", "zh-Hant"),
        ("zh-hk", "zh-Hant"),
        ("ZH_Hant_TW", "zh-Hant"),
        ("zh", "zh-Hans"),
        ("zh-cn", "zh-Hans"),
        ("pt-br", "pt"),
        ("ja", "ja"),
        ("ar", "ar"),
        ("nl-be", "nl"),
        ("tr", "tr"),
    ],
)
def test_telegram_codes_find_their_entry(code: str, key: str) -> None:
    for table in TABLES.values():
        assert texts.pick_tagged(table, code) == (table[key], key)


def test_an_override_for_the_users_language_beats_the_built_in_text() -> None:
    assert texts.pick_tagged(texts.HELP, "zh-tw", {"zh-tw": "說明"}) == ("說明", "zh-tw")
    assert texts.pick_tagged(texts.HELP, "zh-tw", {"zh-hant": "說明"}) == ("說明", "zh-hant")
    assert texts.pick_tagged(texts.HELP, "zh-cn", {"zh": "说明"}) == ("说明", "zh")
    assert texts.pick_tagged(texts.HELP, "zh", {"zh": "说明"}) == ("说明", "zh")
    assert texts.pick_tagged(texts.HELP, "pt-br", {"pt": "Ajuda"}) == ("Ajuda", "pt")
    assert texts.pick_tagged(texts.HELP, "zh-tw", {"zh-hans": "说明"}) == (
        texts.HELP["zh-Hant"],
        "zh-Hant",
    )
    assert texts.pick_tagged(texts.HELP, "ja", {"en": "Ask."}) == (texts.HELP["ja"], "ja")


@pytest.mark.parametrize("code", ["zh-tw", "zh-hk", "zh-hant", "zh-Hant-TW"])
def test_a_bare_zh_override_does_not_reach_traditional_chinese_users(code: str) -> None:
    # An operator's "zh" greeting is Simplified (their main market): it reached zh-tw
    # and zh-hk users instead of the built-in Traditional text.
    simplified = {"zh": "欢迎来到本店"}
    assert texts.pick_tagged(texts.GREETING, code, simplified) == (
        texts.GREETING["zh-Hant"],
        "zh-Hant",
    )
    # ...unless the operator wrote that script's own text too.
    both = {**simplified, "zh-hant": "歡迎光臨本店"}
    assert texts.pick_tagged(texts.GREETING, code, both) == ("歡迎光臨本店", "zh-hant")


def test_a_bare_zh_override_is_used_where_no_built_in_text_has_the_script() -> None:
    table = {"en": "Hello", "zh-Hans": "您好"}
    assert texts.pick_tagged(table, "zh-tw", {"zh": "您好。"}) == ("您好。", "zh")


@pytest.mark.parametrize(
    ("language_code", "key"),
    [("ja", "ja"), ("zh-hant", "zh-Hant"), ("zh-tw", "zh-Hant"), ("zh-hans", "zh-Hans")],
)
async def test_start_greets_japanese_and_chinese_users_in_their_language(
    make_tg: MakeTg, language_code: str, key: str
) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(701, "/start", language_code=language_code))
    await tg.wait_answers(1)
    assert tg.answers(701) == [texts.GREETING[key]]


async def test_a_sticker_gets_the_text_only_reply_in_traditional_chinese(
    make_tg: MakeTg,
) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.sticker(702, language_code="zh-hant"))
    await tg.wait_answers(1)
    assert tg.answers(702) == [texts.UNSUPPORTED["zh-Hant"]]
