"""The built-in hand-off plugin through the real bot (echo backend, SQLite, aiohttp).

Enabled the way a deployment enables it, a ``[plugins.handoff]`` section; from a source
checkout it is found through the built-in plugin map.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.events import HandoffRequested, SystemEvent
from botkit.handoff import texts
from botkit.handoff.matching import parse_command
from botkit.plugins import available_plugins
from botkit.store import ConversationStatus

SPANISH = "Hola, necesito ayuda con mi pedido, por favor. ¿Dónde está mi paquete?"
ES_HANDOFF = texts.HANDOFF_REPLIES["es"] + " " + texts.RETURN_HINTS["es"].format(command="/bot")


async def _status(bot: Bot, key: str = "c1") -> str:
    conversation = await bot.store.get_conversation("test", key)
    assert conversation is not None
    return conversation.status


async def _say(bot: Bot, text: str, key: str, conversation: str = "c1") -> list[str]:
    """Submit ``text``, wait until the bot is done with it, return all reply texts."""
    await bot.submit(message(text, key, conversation=conversation))
    assert await bot.drain(30)  # returns as soon as the reply is done; generous for slow CI
    return [r.text for r in recorder(bot).replies]


HandoffBot = Callable[..., AbstractAsyncContextManager[Bot]]


@pytest.fixture
def handoff_bot(make_settings: Callable[..., Settings]) -> HandoffBot:
    """``async with handoff_bot(**config) as bot``: a started bot with the plugin."""

    @asynccontextmanager
    async def started(**config: Any) -> AsyncIterator[Bot]:
        async with Bot(make_settings(plugins={"handoff": config})) as bot:
            bot.attach_connector(RecordingConnector(bot))
            yield bot

    return started


def test_found_without_installed_entry_point() -> None:
    assert available_plugins()["handoff"] == "botkit.handoff:HandoffPlugin"


async def test_human_command_hands_off_and_bot_gives_it_back(
    handoff_bot: HandoffBot,
) -> None:
    seen: list[SystemEvent] = []

    async def record(event: SystemEvent) -> None:
        seen.append(event)

    async with handoff_bot() as bot:
        assert bot.plugins.active == ["handoff"]
        bot.events.subscribe(record)
        assert await _say(bot, SPANISH, "k1") == [f"echo: {SPANISH}"]
        # Any case, a Telegram @botname suffix, surrounding spaces.
        replies = await _say(bot, "  /HUMAN@Shop_Bot ", "k2")
        assert replies[-1] == ES_HANDOFF
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN
        (handoff,) = [e for e in seen if isinstance(e, HandoffRequested)]
        assert handoff.reason == "customer sent /human" and handoff.conversation_key == "c1"

        # Waiting for a human: stored, not answered; a second /human is not re-confirmed.
        assert len(await _say(bot, "¿Hay alguien ahí? Sigo esperando mi paquete.", "k3")) == 2
        assert len(await _say(bot, "/human", "k4")) == 2
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        stored = await bot.store.history(conversation.id, max_turns=20, token_budget=10_000)
        assert "¿Hay alguien ahí? Sigo esperando mi paquete." in [m.text for m in stored]

        # Also while an agent has it: the customer may give it back.
        await bot.store.set_conversation_status(conversation.id, ConversationStatus.WITH_HUMAN)
        replies = await _say(bot, "/Bot", "k5")
        assert replies[-1] == texts.RETURN_REPLIES["es"]
        assert await _status(bot) == ConversationStatus.BOT
        # "/human", "/Bot" and their confirmations are left out of the model's history:
        # what the customer wrote while waiting and this message are one user turn.
        assert (await _say(bot, "Gracias, ¿dónde está mi paquete ahora?", "k6"))[-1] == (
            "echo: ¿Hay alguien ahí? Sigo esperando mi paquete.\n\n"
            "Gracias, ¿dónde está mi paquete ahora?"
        )


async def test_second_command_english_and_return_outside_handoff(
    handoff_bot: HandoffBot,
) -> None:
    async with handoff_bot(return_command="/back") as bot:
        # In a conversation the bot answers, the return command is just a message.
        assert await _say(bot, "/back", "k1") == ["echo: /back"]
        replies = await _say(bot, "/agent", "k2")
        assert replies[-1] == (
            texts.HANDOFF_REPLIES["en"] + " " + texts.RETURN_HINTS["en"].format(command="/back")
        )
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN
        assert len(await _say(bot, "/bot", "k3")) == 2  # not this deployment's command
        assert (await _say(bot, "/back", "k4"))[-1] == texts.RETURN_REPLIES["en"]


async def test_configured_replies_and_no_return_command(
    handoff_bot: HandoffBot,
) -> None:
    config = {"return_command": "", "replies": {"en": "One moment, connecting you."}}
    async with handoff_bot(**config) as bot:
        assert await _say(bot, "/human", "k1") == ["One moment, connecting you."]
        assert len(await _say(bot, "/bot", "k2")) == 1  # nothing gives it back
        assert await _status(bot) == ConversationStatus.WAITING_HUMAN


async def test_keywords(handoff_bot: HandoffBot) -> None:
    config = {
        "keywords": {"en": ["talk to a human"], "es": ["hablar con una persona"]},
        "keyword_max_chars": 80,
    }
    async with handoff_bot(**config) as bot:
        # Not whole words, or inside a long message: answered by the bot.
        text = "can I talk to a humanitarian group?"
        assert await _say(bot, text, "k1", "a") == [f"echo: {text}"]
        long = "I have a question about my order. " * 3 + "Do I need to talk to a human?"
        assert (await _say(bot, long, "k2", "a"))[-1] == f"echo: {long}"
        assert await _status(bot, "a") == ConversationStatus.BOT

        replies = await _say(bot, "Can I TALK to a   human, please?", "k3", "b")
        assert replies[-1].startswith(texts.HANDOFF_REPLIES["en"])
        assert await _status(bot, "b") == ConversationStatus.WAITING_HUMAN
        await _say(bot, "Quiero hablar con una persona.", "k4", "c")
        assert await _status(bot, "c") == ConversationStatus.WAITING_HUMAN


async def test_hostile_input_does_not_trigger(handoff_bot: HandoffBot) -> None:
    huge = ("x" * 1990) + " /human " + ("y" * 2002)
    assert len(huge) == 4000
    tricky = [
        huge,
        "/human please",
        "please /human",
        "/humanoid",
        "/human@",
        "/human@bot extra",
        "//human",
        "/human\n/human",
        "\u200b/human",  # a zero-width space in front is not the command
    ]
    async with handoff_bot() as bot:
        for n, text in enumerate(tricky):
            replies = await _say(bot, text, f"k{n}", f"c{n}")
            assert replies[-1] == f"echo: {text}", text
            assert await _status(bot, f"c{n}") == ConversationStatus.BOT
        # Over bot.max_message_chars: refused by the core, never a hand-off.
        await _say(bot, "/human" + " " * 4096, "big", "big")
        assert await _status(bot, "big") == ConversationStatus.BOT


def test_parse_command_is_exact_and_bounded() -> None:
    assert parse_command("/Agent@x") == "/agent"
    assert parse_command("/" + "a" * 33) is None
    assert parse_command("/a@" + "b" * 65) is None
    assert parse_command("/human " * 1000) is None


@pytest.mark.parametrize(
    ("keyword", "why"),
    [
        ("C++ support", "its '+' is ignored"),  # would match any "c support"
        ("100% refund", "its '%' is ignored"),
        ("x", "a single character"),
        ("人", "pairs of characters"),
    ],
)
def test_keywords_that_matching_would_change_are_refused(keyword: str, why: str) -> None:
    # Folded like intent keywords, "C++ support" was looked for as "c support"; the
    # intents plugin refuses such keywords, and so does the hand-off now.
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"plugins": {"handoff": {"keywords": {"en": [keyword]}}}}, environ={})
    ((problem),) = info.value.problems
    assert problem.path == "plugins.handoff.keywords" and why in problem.message, problem


def test_keywords_in_words_and_symbols_alone_are_accepted() -> None:
    keywords = {"en": ["c plus plus support", "🆘", "help!"], "zh": ["人工"]}
    settings = settings_from_mapping({"plugins": {"handoff": {"keywords": keywords}}}, environ={})
    assert settings.plugins["handoff"]["keywords"]["en"] == ["c plus plus support", "🆘", "help!"]


def test_config_errors_name_the_key(make_settings: Callable[..., Settings]) -> None:
    bad = {
        "commands": ["human", "/ok"],
        "return_command": "/bot now",
        "keywords": {"not a tag!": ["x"]},
        "replies": {"es": "   "},
        "webhook_url": "ftp://user:s3cret@agents.example/hook",
        "webhook_timeout_seconds": 0,
    }
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"plugins": {"handoff": bad}}, environ={})
    found = "\n".join(str(p) for p in info.value.problems)
    for key in (
        "commands",
        "return_command",
        "keywords",
        "replies",
        "webhook_url",
        "webhook_timeout_seconds",
    ):
        assert f"plugins.handoff.{key}" in found, found
    assert "s3cret" not in found
    with pytest.raises(ConfigError, match="return_command must differ"):
        settings_from_mapping({"plugins": {"handoff": {"return_command": "/Human"}}}, environ={})


@pytest.fixture
async def agents_tool() -> AsyncIterator[tuple[str, list[dict[str, Any]], asyncio.Event]]:
    """A local agents' tool: ``/hook`` records JSON, ``/broken`` answers 500,
    ``/slow`` takes longer than the plugin waits."""
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        arrived.set()
        return web.Response(status=204)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/broken", broken)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received, arrived
    finally:
        await runner.cleanup()


async def test_webhook_gets_the_event(
    handoff_bot: HandoffBot,
    agents_tool: tuple[str, list[dict[str, Any]], asyncio.Event],
) -> None:
    base, received, arrived = agents_tool
    async with handoff_bot(webhook_url=f"{base}/hook") as bot:
        await _say(bot, "/human", "k1")
        async with asyncio.timeout(30):
            await arrived.wait()
    (body,) = received
    assert body["type"] == "handoff_requested"
    assert body["channel"] == "test" and body["conversation_key"] == "c1"
    assert body["reason"] == "customer sent /human"
    assert body["at"].endswith("+00:00")


@pytest.mark.parametrize("path", ["/broken", "/slow", "/closed"])
async def test_webhook_failure_is_logged_not_fatal(
    handoff_bot: HandoffBot,
    agents_tool: tuple[str, list[dict[str, Any]], asyncio.Event],
    caplog: pytest.LogCaptureFixture,
    unused_tcp_port: int,
    path: str,
) -> None:
    base, _, _ = agents_tool
    url = f"http://u:tok@127.0.0.1:{unused_tcp_port}/hook" if path == "/closed" else base + path
    with caplog.at_level(logging.ERROR, logger="botkit.plugins.handoff"):
        async with handoff_bot(webhook_url=url, webhook_timeout_seconds=0.3) as bot:
            replies = await _say(bot, "/human", "k1")
            assert replies[-1].startswith(texts.HANDOFF_REPLIES["en"])
            assert await _status(bot) == ConversationStatus.WAITING_HUMAN
            assert (await _say(bot, "/human", "k2", "other"))[-1].startswith("Thanks")
        # Shutting down waits for the calls in flight, so both failures are logged.
    failures = [r for r in caplog.records if "hand-off webhook" in r.getMessage()]
    assert len(failures) == 2, caplog.text
    expected = {"/broken": "HTTP 500", "/slow": "TimeoutError", "/closed": "ClientConnector"}
    assert expected[path] in failures[0].getMessage()
    assert "tok" not in caplog.text


# Languages the built-in texts lack (they have the web widget's 13).
KOREAN = "안녕하세요, 제 주문이 아직 도착하지 않았어요. 언제 도착하나요?"
HINDI = "नमस्ते, मैं जानना चाहता हूँ कि मेरा ऑर्डर 4521 कहाँ है, कृपया बताइए"


@pytest.mark.parametrize(("first", "language"), [(KOREAN, "ko"), (HINDI, "hi")])
async def test_pivot_mode_translates_replies_for_languages_without_a_text(
    make_settings: Callable[..., Settings], first: str, language: str
) -> None:
    from botkit.testing.translator import MarkingTranslator

    translator = MarkingTranslator()
    settings = make_settings(
        plugins={"handoff": {}},
        language={"detector": {"kind": "langdetect", "processes": 0}},
    )
    async with Bot(settings, translator=translator) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        await _say(bot, first, "p1")
        replies = await _say(bot, "/human", "p2")
        assert rec.replies[-1].language == language
        english = f"{texts.HANDOFF_REPLIES['en']} {texts.RETURN_HINTS['en']}".format(command="/bot")
        assert replies[-1] == (
            f"{language}(Thanks!) {language}(A colleague will take over and reply here as soon "
            f"as they can.) {language}(Send /bot to talk to the bot again.)"
        )
        # The command went to the translator as a placeholder: it cannot be translated.
        sent = [t for c in translator.calls if c.source == "en" for t in c.texts]
        assert "Send {0} to talk to the bot again." in sent
        assert await bot.drain(30)
        stored = (await bot.store.messages_after("test", "c1", 0, 10))[-1]
        assert (stored.language, stored.working_text) == (language, english)

        replies = await _say(bot, "/bot", "p3")
        assert replies[-1].startswith(f"{language}(You're talking to the bot again.)")
        assert rec.replies[-1].language == language


async def test_native_mode_keeps_english_labelled_english(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        plugins={"handoff": {}},
        language={"mode": "native", "detector": {"kind": "langdetect", "processes": 0}},
    )
    async with Bot(settings) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        await _say(bot, KOREAN, "n1")
        replies = await _say(bot, "/human", "n2")
    assert replies[-1].startswith(texts.HANDOFF_REPLIES["en"])
    assert rec.replies[-1].language == "en"


async def test_native_mode_answers_a_chinese_customer_in_chinese(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        plugins={"handoff": {}},
        language={"mode": "native", "detector": {"kind": "langdetect", "processes": 0}},
    )
    async with Bot(settings) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        await bot.submit(message("你好", "t1", language_hint="zh-TW"))
        await rec.wait_for(1)
        replies = await _say(bot, "/human", "t2")
    assert replies[-1].startswith(texts.HANDOFF_REPLIES["zh-Hant"])
    assert texts.RETURN_HINTS["zh-Hant"].replace("{command}", "/bot") in replies[-1]
    assert rec.replies[-1].language == "zh-Hant"
