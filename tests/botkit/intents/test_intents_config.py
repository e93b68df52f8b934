"""The ``[plugins.intents]`` section: what a deployment gets wrong is refused with the
key it got wrong."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from intents_helpers import SHOP

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.intents import IntentsConfig
from botkit.intents.config import MAX_EXAMPLES, MAX_EXAMPLES_TOTAL, MAX_INTENTS


def problems(section: dict[str, Any]) -> str:
    """The config problems of ``[plugins.intents]`` = ``section``, one per line."""
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"plugins": {"intents": section}}, environ={})
    return "\n".join(str(p) for p in info.value.problems)


def intent(**fields: Any) -> dict[str, Any]:
    return {"name": "hours", "action": "reply", "examples": ["when are you open"],
            "reply": {"en": "9 to 5"}} | fields  # fmt: skip


def test_the_shop_config_is_valid_and_normalized() -> None:
    config = IntentsConfig.model_validate(
        {"intent": [intent(reply={"EN_us": "9 to 5", "es": "de 9 a 5"})]}
    )
    assert config.min_similarity == 0.45 and config.max_chars == 200
    assert config.intent[0].reply == {"en-US": "9 to 5", "es": "de 9 a 5"}
    IntentsConfig.model_validate(SHOP)


def test_duplicate_names() -> None:
    found = problems({"intent": [intent(), intent(name="Hours")]})
    # One way to write a key path, whichever validator found the problem.
    assert "plugins.intents.intent[1].name: 'Hours' is already the name of intent[0]" in found


def test_neither_examples_nor_keywords() -> None:
    found = problems({"intent": [intent(examples=[], keywords=[])]})
    assert "plugins.intents.intent[0]" in found
    assert "intent 'hours' needs examples or keywords" in found


@pytest.mark.parametrize(
    ("fields", "key", "message"),
    [
        ({"colour": "red"}, "intent[0].colour", "unknown key"),
        ({"examples": ["ok", "  "]}, "intent[0].examples", "has no letters or digits"),
        ({"examples": ["🙂🙂"]}, "intent[0].examples", "has no letters or digits"),
        ({"keywords": ["x" * 101]}, "intent[0].keywords", "at most 100 characters"),
        ({"examples": ["x" * 501]}, "intent[0].examples", "at most 500 characters"),
        # Keywords that, as matched, no longer say what was written.
        ({"keywords": ["A+"]}, "intent[0].keywords", "'A+' is matched as 'a': its '+' is"),
        ({"keywords": ["C++"]}, "intent[0].keywords", "'C++' is matched as 'c': its '+' is"),
        ({"keywords": ["Q&A"]}, "intent[0].keywords", "'Q&A' is matched as 'q a': its '&'"),
        ({"keywords": ["100%"]}, "intent[0].keywords", "'100%' is matched as '100'"),
        ({"keywords": ["X"]}, "intent[0].keywords", "'X' is matched as 'x': a single character"),
        ({"keywords": ["退"]}, "intent[0].keywords", "'退' is matched as '退': in Chinese"),
        ({"keywords": ["退 货"]}, "intent[0].keywords", "in pairs of characters"),
        ({"reply": {"not a tag!": "hi"}}, "intent[0].reply", "is not a language tag"),
        ({"reply": {"en": "hi", "EN": "ho"}}, "intent[0].reply", "are the same language"),
        ({"reply": {"en": "   "}}, "intent[0].reply", "is empty"),
        ({"reply": {}}, "intent[0]", "action 'reply' needs reply"),
        ({"action": "escalate"}, "intent[0].action", "expected one of"),
        ({"name": "opening hours"}, "intent[0].name", "a name is a letter"),
        ({"action": "instruct"}, "intent[0]", "action 'instruct' needs instruction"),
        ({"action": "instruct", "instruction": "Be brief."}, "intent[0]", "reply is not for"),
        ({"instruction": "Be brief."}, "intent[0]", "instruction is only for action 'instruct'"),
        (
            {"action": "close", "buttons": [{"label": {"en": "Yes"}, "value": "yes"}]},
            "intent[0]",
            "buttons are only for action 'reply'",
        ),
        (
            {"buttons": [{"label": {"en": "x" * 76}, "value": "y"}]},
            "intent[0].buttons[0].label",
            "over 75 characters",
        ),
        (
            {"buttons": [{"label": {"en": "Yes"}, "value": ""}]},
            "intent[0].buttons[0].value",
            "at least 1 character",
        ),
        ({"min_similarity": 1.5}, "intent[0].min_similarity", "less than or equal to 1"),
        ({"examples": ["a"] * (MAX_EXAMPLES + 1)}, "intent[0].examples", "at most 200 items"),
    ],
)
def test_intent_errors_name_the_key(fields: dict[str, Any], key: str, message: str) -> None:
    found = problems({"intent": [intent(**fields)]})
    assert f"plugins.intents.{key}" in found and message in found, found


def test_keywords_that_keep_their_meaning() -> None:
    keywords = ["e-mail", "U.S.", "退货", "पता", "5G", "don't", "50/50", "a b", "Fish & Chips"]
    config = IntentsConfig.model_validate({"intent": [intent(keywords=keywords)]})
    assert config.intent[0].keywords == tuple(keywords)


def test_plugin_level_errors() -> None:
    found = problems({"min_similarity": 0, "max_chars": 0, "intents": []})
    for key in ("min_similarity", "max_chars", "intents"):
        assert f"plugins.intents.{key}" in found, found
    assert "did you mean 'intent'" in found


def test_oversize_lists() -> None:
    many = [intent(name=f"i{n}", examples=["a"]) for n in range(MAX_INTENTS + 1)]
    assert "at most 1000 items" in problems({"intent": many})
    per = MAX_EXAMPLES_TOTAL // MAX_EXAMPLES + 1  # intents of MAX_EXAMPLES examples
    heavy = [intent(name=f"i{n}", examples=[f"e{k}" for k in range(MAX_EXAMPLES)])
             for n in range(per)]  # fmt: skip
    found = problems({"intent": heavy})
    assert f"at most {MAX_EXAMPLES_TOTAL} examples in all" in found
    long = [intent(name=f"i{n}", examples=[f"{k} " + "x" * 490 for k in range(200)])
            for n in range(11)]  # fmt: skip
    assert "at most 1000000 characters of examples in all" in problems({"intent": long})
    keywords = [intent(name=f"i{n}", keywords=[f"k{n} {k}" for k in range(50)])
                for n in range(201)]  # fmt: skip
    assert "at most 10000 keywords in all" in problems({"intent": keywords})


def test_shared_keyword() -> None:
    found = problems({"intent": [intent(keywords=["Opening Hours"]),
                                 intent(name="times", keywords=["opening  hours!"])]})  # fmt: skip
    assert found == (
        "plugins.intents.intent[1].keywords[0]: 'opening  hours!' is also a keyword of "
        "intent 'hours' (a keyword must say which intent)"
    )


def test_every_bad_keyword_is_named_at_its_place() -> None:
    found = problems({"intent": [intent(keywords=["C++", "ok go", "X", "退"])]}).splitlines()
    assert [line.split(": ", 1)[0] for line in found] == [
        f"plugins.intents.intent[0].keywords[{n}]" for n in (0, 2, 3)
    ]
    assert "'C++'" in found[0] and "'X'" in found[1] and "'退'" in found[2]


def test_every_repeated_name_and_keyword_is_named_at_its_place() -> None:
    found = problems({"intent": [
        intent(keywords=["order", "refund"]),
        intent(name="b", keywords=["parcel", "ORDER"]),
        intent(name="HOURS", keywords=["Refund"]),
    ]}).splitlines()  # fmt: skip
    assert [line.split(": ", 1)[0] for line in found] == [
        "plugins.intents.intent[1].keywords[1]",
        "plugins.intents.intent[2].name",
        "plugins.intents.intent[2].keywords[0]",
    ]


async def test_missing_working_language_text_disables_the_plugin(
    make_settings: Callable[..., Settings],
) -> None:
    config = copy.deepcopy(SHOP)
    config["intent"].append(intent(name="spanish_only", reply={"es": "de 9 a 5"}))
    async with Bot(make_settings(plugins={"intents": config})) as bot:
        assert bot.plugins.active == []
        failed = bot.plugins.failed["intents"]
    assert "plugins.intents.intent[5].reply" in failed and "'spanish_only'" in failed
    assert "working language 'en'" in failed

    # A button label counts too; a German bot needs German texts.
    settings = make_settings(plugins={"intents": SHOP}, bot={"working_language": "de"})
    async with Bot(settings) as bot:
        assert "plugins.intents.intent[0].reply" in bot.plugins.failed["intents"]
    labels = copy.deepcopy(SHOP)
    labels["intent"][0]["buttons"][0]["label"] = {"es": "Dirección"}
    async with Bot(make_settings(plugins={"intents": labels})) as bot:
        assert "intent[0].buttons[0].label" in bot.plugins.failed["intents"]
    # A regional working language is served by the language's text.
    settings = make_settings(plugins={"intents": SHOP}, bot={"working_language": "en-GB"})
    async with Bot(settings) as bot:
        assert bot.plugins.active == ["intents"]
