"""/start, /help, /human, and updates the bot cannot read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tg_helpers import MakeTg

from connectors.telegram import texts


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [
        ("es", texts.GREETING["es"]),
        ("pt-br", texts.GREETING["pt"]),
        ("de-AT", texts.GREETING["de"]),
        ("ru", texts.GREETING["ru"]),
        ("xx", texts.GREETING["en"]),
        (None, texts.GREETING["en"]),
        ("<script>" * 20, texts.GREETING["en"]),
    ],
)
async def test_start_greets_in_the_users_language(
    make_tg: MakeTg, language_code: str | None, expected: str
) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(601, "/start", language_code=language_code))
    await tg.wait_answers(1)
    assert tg.answers(601) == [expected]
    assert await tg.history(601) == []  # the connector's own reply; the core is not asked


async def test_greeting_and_help_can_be_overridden(make_tg: MakeTg) -> None:
    tg = await make_tg({"greeting": {"es": "¡Bienvenido a la tienda!"}, "help": {"EN": "Ask."}})
    u = tg.fake.updates
    tg.fake.push(u.message(602, "/start", language_code="es"))
    tg.fake.push(u.message(602, "/help", language_code="en-GB"))
    await tg.wait_answers(2)
    assert tg.answers(602) == ["¡Bienvenido a la tienda!", "Ask."]


async def test_help_and_addressed_commands(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    tg.fake.push(u.message(603, "/help", language_code="fr"))
    tg.fake.push(u.message(-603, "/help@botkit_test_bot", language_code="it"))
    tg.fake.push(u.message(-603, "/help@another_bot", language_code="it"))
    tg.fake.push(u.message(-603, "@botkit_test_bot", language_code="de"))  # mention only
    tg.fake.push(u.message(603, "probe"))
    await tg.fake.wait_until(lambda: "echo: probe" in tg.answers(603), 30)
    # The group's second answer waits out the per-chat send spacing: wait for it too.
    await tg.fake.wait_until(lambda: len(tg.answers(-603)) >= 2, 30)
    await tg.settle()
    assert tg.answers(603) == [texts.HELP["fr"], "echo: probe"]
    assert sorted(tg.answers(-603)) == sorted([texts.HELP["it"], texts.GREETING["de"]])


async def test_human_goes_to_the_core(make_tg: MakeTg) -> None:
    # No handoff plugin exists yet: /human is an ordinary message for the core (and the
    # plugin, once enabled, answers it).
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(604, "/human please"))
    await tg.wait_answers(1)
    assert tg.answers(604) == ["echo: /human please"]
    assert [i.text for i in await tg.history(604)] == ["/human please", "echo: /human please"]


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice"])
async def test_unsupported_updates_get_a_polite_reply_in_the_users_language(
    make_tg: MakeTg, kind: str
) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    update = getattr(u, kind)(605, language_code="de")
    tg.fake.push(update, update, u.message(605, "still fine?"))  # the repeat is ignored
    await tg.fake.wait_until(lambda: len(tg.answers(605)) >= 2, 30)
    await tg.settle()
    assert sorted(tg.answers(605)) == sorted([texts.UNSUPPORTED["de"], "echo: still fine?"])


async def test_media_in_groups_is_ignored_unless_it_answers_the_bot(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    tg.fake.push(u.sticker(-606, language_code="it"), u.sticker(-606, reply_to_bot=True))
    tg.fake.push(u.message(606, "probe"))
    await tg.wait_answers(1, chat_id=606)
    await tg.fake.wait_until(lambda: len(tg.answers(-606)) >= 1, 30)
    await tg.settle()
    assert tg.answers(-606) == [texts.UNSUPPORTED["en"]]


async def test_media_reaches_the_agent_who_has_the_conversation(make_tg: MakeTg) -> None:
    # While a human agent has the conversation, a photo is theirs to look at: stored
    # with its attachment, and the bot does not claim it cannot read it.
    tg = await make_tg(plugins={"handoff": {}})
    u = tg.fake.updates
    tg.fake.push(u.message(609, "/human", language_code="de"))
    await tg.wait_answers(1)
    tg.fake.push(u.photo(609, language_code="de"), u.sticker(609, language_code="de"))
    stored = await tg.bot.store.messages_after("telegram", "609", 0, 10)
    for _ in range(600):  # stored once the updates are read: no answer to wait for
        if len(stored) >= 4:
            break
        await asyncio.sleep(0.05)
        stored = await tg.bot.store.messages_after("telegram", "609", 0, 10)
    await tg.settle()
    assert [(m.text, [a.kind for a in m.attachments]) for m in stored[2:]] == [
        ("", ["image"]),
        ("", ["sticker"]),
    ]
    assert len(tg.answers(609)) == 1 and texts.UNSUPPORTED["de"] not in tg.answers(609)
    # Back with the bot, the polite "text only" reply comes again.
    tg.fake.push(u.message(609, "/bot", language_code="de"))
    await tg.wait_answers(2)
    tg.fake.push(u.voice(609, language_code="de"))
    await tg.fake.wait_until(lambda: texts.UNSUPPORTED["de"] in tg.answers(609), 30)


async def test_photo_with_caption_is_read_as_text(make_tg: MakeTg) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.photo(607, caption="is this scratch covered?"))
    await tg.wait_answers(1)
    assert tg.answers(607) == ["echo: is this scratch covered?"]


async def test_service_messages_and_other_bots_are_ignored(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    joined = u.message(
        -608, extra={"new_chat_members": [{"id": 9, "is_bot": False, "first_name": "B"}]}
    )
    from_bot = u.message(608, "hi from a bot")
    from_bot["message"]["from"]["is_bot"] = True  # type: ignore[index]
    edited = u.message(608, "edited")
    edited["edited_message"] = edited.pop("message")
    tg.fake.push(joined, from_bot, edited, u.message(608, "probe"))
    await tg.wait_answers(1)
    await tg.settle()
    assert tg.answers() == ["echo: probe"]


async def test_a_deep_link_start_reaches_the_core_with_its_payload(make_tg: MakeTg) -> None:
    # t.me/botkit_test_bot?start=order_12345: the payload is the customer's context.
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.message(612, "/start order_12345"))
    await tg.wait_answers(1)
    assert tg.answers(612) == ["echo: /start order_12345"]  # the core answers, not a greeting
    stored = await tg.bot.store.messages_after("telegram", "612", 0, 10)
    assert stored[0].text == "/start order_12345"


async def test_a_hostile_deep_link_payload_is_stored_clean_and_answered(make_tg: MakeTg) -> None:
    # Telegram's payloads have at most 64 characters; a relay (or a fake Telegram)
    # may send anything: NUL, bidi overrides, thousands of characters.
    tg = await make_tg()
    payload = "x\x00\u202e" * 2000
    tg.fake.push(tg.fake.updates.message(614, f"/start {payload}"))
    await tg.wait_answers(1)
    inbound, reply = await tg.bot.store.messages_after("telegram", "614", 0, 10)
    # Kept (cleaned), and answered: too long for bot.max_message_chars, it is told so.
    assert inbound.text.startswith("/start x") and "\x00" not in inbound.text
    assert reply.in_reply_to_seq == inbound.seq and tg.answers(614) == [reply.text]


async def test_start_spam_gets_one_greeting(make_tg: MakeTg) -> None:
    tg = await make_tg()
    u = tg.fake.updates
    spam = [u.message(-613, "/start", language_code="en") for _ in range(8)]
    tg.fake.push(*spam, u.message(-613, "/help", language_code="en"), u.message(613, "probe"))
    await tg.wait_answers(1, chat_id=613)
    await tg.fake.wait_until(lambda: len(tg.answers(-613)) >= 2, 30)
    await asyncio.sleep(0.3)
    await tg.settle()
    assert sorted(tg.answers(-613)) == sorted([texts.GREETING["en"], texts.HELP["en"]])


async def test_no_greeting_in_a_conversation_a_human_has(make_tg: MakeTg) -> None:
    tg = await make_tg(plugins={"handoff": {}})
    u = tg.fake.updates
    tg.fake.push(u.message(614, "/human"))
    await tg.wait_answers(1)
    tg.fake.push(u.message(614, "/start"), u.message(614, "/help"), u.message(615, "probe"))
    await tg.wait_answers(1, chat_id=615)
    await asyncio.sleep(0.5)
    await tg.settle()
    assert len(tg.answers(614)) == 1  # only the hand-off's confirmation


async def test_a_group_photo_captioned_only_with_the_mention_is_a_photo_without_text(
    make_tg: MakeTg,
) -> None:
    tg = await make_tg()
    tg.fake.push(tg.fake.updates.photo(-616, caption="@botkit_test_bot", language_code="de"))
    await tg.wait_answers(1, -616)
    await tg.settle()
    assert tg.answers(-616) == [texts.UNSUPPORTED["de"]]  # not "echo: @botkit_test_bot"
    stored = await tg.bot.store.messages_after("telegram", "-616", 0, 10)
    assert stored[0].text == "" and [a.kind for a in stored[0].attachments] == ["image"]


async def test_in_a_group_only_an_addressed_start_carries_a_payload(make_tg: MakeTg) -> None:
    # Review L8: a bare "/start some words" in a group went to the model. Telegram's
    # startgroup deep links arrive as "/start@bot PAYLOAD"; a bare one is only /start.
    tg = await make_tg()
    u = tg.fake.updates
    bare, addressed = (
        u.message(-650, "/start tell me a joke"),
        u.message(-651, "/start@botkit_test_bot order_77"),
    )
    for update, chat_id in ((bare, -650), (addressed, -651)):
        update["message"]["chat"] = {"id": chat_id, "type": "group", "title": "Shop"}
    tg.fake.push(bare, addressed)
    await tg.wait_answers(2)
    await tg.settle()
    [greeting] = tg.answers(-650)
    assert not greeting.startswith("echo:")
    assert await tg.history(-650) == []  # the connector's own reply; the core is not asked
    assert tg.answers(-651) == ["echo: /start order_77"]


class _SlowFirstLook:
    """The core, whose first "who has this chat?" answer is slow (a busy database)."""

    def __init__(self, inner: Any) -> None:
        self._inner, self._looks = inner, 0

    async def with_human(self, channel: str, conversation_key: str) -> bool:
        self._looks += 1
        if self._looks == 1:
            await asyncio.sleep(0.3)
        return bool(await self._inner.with_human(channel, conversation_key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_greeting_and_help_arrive_in_the_order_asked(make_tg: MakeTg) -> None:
    # Each asks the core whether an agent has the chat first; a slower answer for the
    # first put the help before the greeting.
    tg = await make_tg()
    tg.connector.core = _SlowFirstLook(tg.connector.core)
    u = tg.fake.updates
    tg.fake.push(u.message(603, "/start"), u.message(603, "/help"))
    await tg.wait_answers(2, 603)
    assert tg.answers(603) == [texts.GREETING["en"], texts.HELP["en"]]
