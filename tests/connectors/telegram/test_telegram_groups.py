"""Who the bot answers in groups, and how."""

from __future__ import annotations

import pytest
from tg_helpers import MakeTg, TgHarness

GROUP = -1001


async def answers_after(tg: TgHarness, updates: list[dict[str, object]]) -> list[str]:
    """Push ``updates`` then a private probe; once the probe is answered (updates are
    handled in order), return what the group got."""
    fake = tg.fake
    fake.push(*updates, fake.updates.message(999, "probe"))
    await tg.wait_answers(1, chat_id=999)
    await tg.settle()
    return tg.answers(GROUP)


async def test_mention_or_reply_is_the_default(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    got = await answers_after(
        tg,
        [
            u.message(GROUP, "just chatting among ourselves"),
            u.message(GROUP, "@botkit_test_bot where is my order?"),
            u.message(GROUP, "thanks, and the invoice?", reply_to_bot=True),
            u.message(GROUP, "hey @BotKit_Test_Bot, case does not matter"),
            u.message(GROUP, "@someone_else not for the bot"),
            u.message(GROUP, "email me at shop@botkit_test_bot.example"),
            u.message(GROUP, "/lang@other_bot es"),
            u.message(GROUP, "/lang@botkit_test_bot es"),
        ],
    )
    assert got[:3] == [
        "echo: where is my order?",
        "echo: thanks, and the invoice?",
        "echo: hey, case does not matter",
    ]
    # "/lang@botkit_test_bot es" reached the core's language switch as "/lang es"
    # (its built-in confirmation, in Spanish).
    assert got[3:] == ["De acuerdo, a partir de ahora te responderé en español."]


async def test_group_answers_quote_the_question(make_tg: MakeTg) -> None:
    tg = await make_tg()
    question = tg.fake.updates.message(GROUP, "@botkit_test_bot hello", thread_id=77)
    await answers_after(tg, [question])
    [answer] = tg.fake.messages(GROUP)
    assert answer.reply_to == question["message"]["message_id"]  # type: ignore[index]
    assert answer.thread_id == 77
    [private] = tg.fake.messages(999)
    assert private.reply_to is None  # no quoting in a private chat


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("mention", ["echo: mentioned"]),
        ("all", ["echo: plain", "echo: mentioned", "echo: a reply"]),
        ("off", []),
    ],
)
async def test_group_policies(make_tg: MakeTg, policy: str, expected: list[str]) -> None:
    tg = await make_tg({"group_replies": policy})
    u = tg.fake.updates
    got = await answers_after(
        tg,
        [
            u.message(GROUP, "plain"),
            u.message(GROUP, "@botkit_test_bot mentioned"),
            u.message(GROUP, "a reply", reply_to_bot=True),
        ],
    )
    assert got == expected


async def test_topics_are_separate_conversations(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    await answers_after(
        tg,
        [
            u.message(GROUP, "@botkit_test_bot in topic 5", thread_id=5),
            u.message(GROUP, "@botkit_test_bot in topic 6", thread_id=6),
        ],
    )
    five = await tg.bot.history("telegram", f"{GROUP}:5")
    six = await tg.bot.history("telegram", f"{GROUP}:6")
    assert [i.text for i in five] == ["in topic 5", "echo: in topic 5"]
    assert [i.text for i in six] == ["in topic 6", "echo: in topic 6"]


CHANNEL = -1002


@pytest.mark.parametrize(
    ("policy", "chat", "expected"),
    [
        ("off", GROUP, []),  # groups are off: clicks in them too
        ("all", CHANNEL, []),  # a button under a channel post: no customer to answer
        ("mention", GROUP, ["echo: yes"]),  # a click is meant for the bot, like a command
    ],
)
async def test_button_clicks_follow_the_chat_rules_and_stop_the_spinner(
    make_tg: MakeTg, policy: str, chat: int, expected: list[str]
) -> None:
    tg = await make_tg({"group_replies": policy})
    click = tg.fake.updates.callback(GROUP, "yes")
    if chat == CHANNEL:
        click["callback_query"]["message"]["chat"] = {
            "id": CHANNEL,
            "type": "channel",
            "title": "News",
        }
    tg.fake.push(click, tg.fake.updates.message(999, "probe"))
    await tg.wait_answers(1, chat_id=999)
    await tg.settle()
    await tg.fake.wait_until(lambda: bool(tg.fake.calls_to("answerCallbackQuery")), 30)
    [answered] = tg.fake.calls_to("answerCallbackQuery")
    assert answered.params["callback_query_id"] == click["callback_query"]["id"]
    assert tg.answers(chat) == expected
    assert [i.text for i in await tg.history(chat)] == (["yes", *expected] if expected else [])


@pytest.mark.parametrize("policy", ["mention", "mention_or_reply"])
async def test_other_bots_bare_commands_are_ignored(make_tg: MakeTg, policy: str) -> None:
    tg = await make_tg({"group_replies": policy, "group_commands": ["/lang", "/human", "/order"]})
    u = tg.fake.updates
    got = await answers_after(
        tg,
        [
            u.message(GROUP, "/ban @spammer"),
            u.message(GROUP, "/weather Berlin"),
            u.message(GROUP, "/s typo fix"),
            u.message(GROUP, "/order 123"),  # one of the bot's own (group_commands)
            u.message(GROUP, "/weather@botkit_test_bot Berlin"),  # addressed to the bot
        ],
    )
    assert got == ["echo: /order 123", "echo: /weather Berlin"]


async def test_a_bad_group_command_is_a_config_error() -> None:
    from pydantic import ValidationError

    from connectors.telegram.config import TelegramConfig

    with pytest.raises(ValidationError, match="not a command"):
        TelegramConfig.model_validate(
            {"token": "123456789:AAtest-token_0123456789abcdefghijkl", "group_commands": ["human"]}
        )
