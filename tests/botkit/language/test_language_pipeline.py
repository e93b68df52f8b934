"""The language pipeline end to end through the real Bot, store and echo backend; only
the translation *model* is a stand-in (``MarkingTranslator`` marks text as ``lang(...)``
so each test sees which text went through which translation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from core_helpers import RecordingConnector

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import GenerationBackend, GenerationRequest, Translator
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import EchoSettings, Settings
from botkit.errors import TranslationError
from botkit.events import Contact, Direction, InboundMessage
from botkit.store import ConversationStatus, StoredMessage
from botkit.testing.backends import RecordingEcho
from botkit.testing.translator import MarkingTranslator

ES = "Hola, quiero saber dónde está mi pedido ORD-2024-0042. Gracias por su ayuda."
EN = "Hello, I would like to know where my order is, it has not arrived yet."
DE = "Guten Tag, ich möchte gerne wissen, wo meine Bestellung geblieben ist."

MakeSettings = Callable[..., Settings]
_counter = 0


def msg(
    text: str, *, conversation: str = "c1", user: str = "u1", hint: str | None = None
) -> InboundMessage:
    global _counter
    _counter += 1
    contact = Contact(channel="test", external_id=user, language_hint=hint)
    return InboundMessage("test", conversation, contact, text, f"k{_counter}")


@asynccontextmanager
async def running(
    settings: Settings,
    translator: Translator | None = None,
    backend: GenerationBackend | None = None,
    connector: type[RecordingConnector] = RecordingConnector,
) -> AsyncIterator[tuple[Bot, RecordingConnector]]:
    async with Bot(settings, translator=translator, backend=backend) as bot:
        recording = connector(bot)
        bot.attach_connector(recording)
        yield bot, recording


async def ask(bot: Bot, rec: RecordingConnector, message: InboundMessage) -> str:
    before = len(rec.replies)
    await bot.submit(message)
    replies = await rec.wait_for(before + 1)
    return replies[before].text


async def stored(bot: Bot, conversation: str = "c1") -> list[StoredMessage]:
    # A reply reaches the channel before the bot records what it learned about the
    # message (its language, its working-language text): wait for the bot to finish.
    assert await bot.drain(30)
    return await bot.store.messages_after("test", conversation, 0, 1000)


async def test_pivot_round_trip_stores_both_texts(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(), translator) as (bot, rec):
        reply = await ask(bot, rec, msg(ES))
        inbound, outbound = await stored(bot)
        conversation = await bot.store.get_conversation("test", "c1")
    assert translator.started == 1 and translator.closed == 1
    # In: one batch of two sentences, the order id replaced by a placeholder.
    first = translator.calls[0]
    assert (first.source, first.target) == ("es", "en")
    assert first.texts == (
        "Hola, quiero saber dónde está mi pedido {0}.",
        "Gracias por su ayuda.",
    )
    working_in = (
        "en(Hola, quiero saber dónde está mi pedido ORD-2024-0042.) en(Gracias por su ayuda.)"
    )
    # The model (echo) saw the working-language text; its reply went back sentence by sentence.
    working_out = "echo: " + working_in
    assert reply == (
        "es(echo: en(Hola, quiero saber dónde está mi pedido ORD-2024-0042.)) "
        "es(en(Gracias por su ayuda.))"
    )
    assert rec.deltas[0] == [
        "es(echo: en(Hola, quiero saber dónde está mi pedido ORD-2024-0042.)) ",
        "es(en(Gracias por su ayuda.))",
    ]
    assert (inbound.direction, inbound.language, inbound.text, inbound.working_text) == (
        Direction.INBOUND, "es", ES, working_in
    )  # fmt: skip
    assert (outbound.direction, outbound.language, outbound.text, outbound.working_text) == (
        Direction.OUTBOUND, "es", reply, working_out
    )  # fmt: skip
    assert conversation is not None and conversation.language == "es"
    assert rec.replies[0].language == "es"


async def test_same_language_never_calls_the_translator(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(bot={"working_language": "en-US"}), translator) as (bot, rec):
        assert await ask(bot, rec, msg(EN)) == "echo: " + EN
        assert await ask(bot, rec, msg("ok")) == "echo: ok"
        messages = await stored(bot)
    assert translator.calls == []
    for message in messages:
        assert message.working_text is None
        assert message.language == "en-US"  # the more specific known tag is kept


async def test_short_messages_keep_the_language(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(), translator) as (bot, rec):
        await ask(bot, rec, msg(ES))
        for text in ("ok", "thanks!", "ORD-2024-0042", "👍", "gracias"):
            reply = await ask(bot, rec, msg(text))
            assert reply.startswith("es("), (text, reply)
        # A long, clear message in another language switches.
        assert (await ask(bot, rec, msg(DE))).startswith("de(")
        assert (await ask(bot, rec, msg("ok"))).startswith("de(")
        messages = await stored(bot)
    languages = [m.language for m in messages if m.direction == Direction.INBOUND]
    assert languages == ["es", "es", "es", "es", "es", "es", "de", "de"]
    # The order id alone needs no translation at all: it went through untouched.
    assert all("ORD-2024-0042" not in t for c in translator.calls for t in c.texts)


async def test_channel_hint_seeds_a_new_conversation(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(), translator) as (bot, rec):
        # Too short to detect: the hint decides (Telegram sends e.g. "pt-br").
        assert await ask(bot, rec, msg("oi", conversation="a", user="x", hint="pt-br")) == (
            "pt-BR(echo: en(oi))"
        )
        # A clear message beats the hint of a new conversation.
        reply = await ask(bot, rec, msg(DE, conversation="b", user="y", hint="fr"))
        assert reply.startswith("de(")
        # A malformed hint is ignored: working language, no translation.
        assert await ask(bot, rec, msg("ok", conversation="c", user="z", hint="<b>")) == "echo: ok"
        conversation = await bot.store.get_conversation("test", "a")
    # A seed answers, but only a detection or /lang settles the conversation's language.
    assert conversation is not None and conversation.language is None


async def test_explicit_switch(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    # Customized texts (the built-in ones are not translated: test_language_switch_labels).
    settings = make_settings(
        language={
            "switch_command": "/idioma",
            "switch_reply": "Okay, I will answer in {language} from now on.",
            "switch_unknown_reply": "Sorry, not that language. Write {command} and a "
            "language, for example: {command} es",
        }
    )
    async with running(settings, translator) as (bot, rec):
        await ask(bot, rec, msg(ES))
        calls_before = len(translator.calls)
        reply = await ask(bot, rec, msg("/idioma Deutsch"))
        # The command itself is not translated in; the confirmation is translated out.
        assert translator.calls[calls_before:][0].texts == (
            "Okay, I will answer in German from now on.",
        )
        assert reply == "de(Okay, I will answer in German from now on.)"
        assert (await ask(bot, rec, msg("ok"))).startswith("de(")
        # Unknown language: usage reply, in the current language; nothing changes.
        unknown = await ask(bot, rec, msg("/IDIOMA@shopbot klingon"))
        assert unknown == (
            "de(Sorry, not that language.) "
            "de(Write /idioma and a language, for example: /idioma es)"
        )
        assert translator.calls[-1].texts[1] == "Write {0} and a language, for example: {1} es"
        # Not the command: "/idiomas" is just text.
        assert not (await ask(bot, rec, msg("/idiomas"))).startswith("de(Okay")
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None and conversation.language == "de"
        contact = await bot.store.get_contact(conversation.contact_id)
        assert contact is not None and contact.language == "de"
        # The contact's next conversation starts in German (preference beats the hint).
        assert (await ask(bot, rec, msg("hi", conversation="c2", hint="fr"))).startswith("de(")


async def test_switch_refuses_languages_the_deployment_cannot_serve(
    make_settings: MakeSettings,
) -> None:
    translator = MarkingTranslator(pairs={("es", "en"), ("en", "es"), ("fr", "en"), ("en", "fr")})
    settings = make_settings(language={"languages": ["es", "fr"]})
    async with running(settings, translator) as (bot, rec):
        assert (await ask(bot, rec, msg("/lang ja"))).startswith("Sorry, I cannot answer")
        assert (await ask(bot, rec, msg("/lang"))).startswith("Sorry, I cannot answer")
        # The built-in confirmation, in French already: not translated again.
        confirmation = await ask(bot, rec, msg("/lang fr"))
        assert confirmation == "D'accord, je vous répondrai désormais en français."


async def test_first_translated_sentence_arrives_before_generation_ends(
    make_settings: MakeSettings,
) -> None:
    class TrackedEcho(EchoBackend):
        finished_at: float | None = None

        async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
            async for delta in super().generate(request):
                yield delta
            self.finished_at = time.monotonic()

    class Timed(RecordingConnector):
        first_at: float | None = None

        async def send_stream(self, stream: ReplyStream) -> None:
            parts = []
            async for delta in stream:
                if self.first_at is None:
                    self.first_at = time.monotonic()
                parts.append(delta)
            self.deltas.append(parts)
            self.replies.append(await stream.final())
            async with self._changed:
                self._changed.notify_all()

    backend = TrackedEcho(EchoSettings(prefix="", word_delay_seconds=0.03))
    text = "Primera frase corta aquí. " + " ".join(["Otra frase más larga que sigue."] * 4)
    async with running(make_settings(), MarkingTranslator(), backend, Timed) as (bot, rec):
        await ask(bot, rec, msg(text))
    assert isinstance(rec, Timed)
    assert rec.first_at is not None and backend.finished_at is not None
    assert rec.first_at < backend.finished_at - 0.2  # ~20 words of 30 ms still to come
    assert rec.deltas[0][0] == "es(en(Primera frase corta aquí.)) "
    assert len(rec.deltas[0]) == 5  # one delta per translated sentence


async def test_unsupported_configured_pair_fails_at_startup(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator(pairs={("es", "en"), ("en", "es"), ("fr", "en")})
    settings = make_settings(language={"languages": ["es", "fr", "de", "en-GB"]})
    with pytest.raises(TranslationError) as info:
        async with Bot(settings, translator=translator):
            pass
    message = str(info.value)
    assert "en → fr" in message and "de → en" in message and "en → de" in message
    assert "es →" not in message and "fr → en" not in message and "en-GB" not in message
    assert translator.closed == 1


async def test_translation_failure_gets_the_fallback_reply(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator(fail_with=RuntimeError("model exploded"))
    settings = make_settings()
    async with running(settings, translator) as (bot, rec):
        await bot.submit(msg(ES))
        reply = (await rec.wait_for(1))[0]
    assert reply.text == settings.bot.fallback_reply
    assert reply.language == "en"  # labelled as what it is: working-language text


async def test_mangled_placeholders_keep_the_spans(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator(drop_placeholders=True)
    async with running(make_settings(), translator) as (bot, rec):
        reply = await ask(
            bot, rec, msg("Mi pedido ORD-2024-0042 no llegó, escríbanme a ana@example.com")
        )
    assert "ORD-2024-0042" in reply and "ana@example.com" in reply


async def test_glossary_terms_are_not_translated(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator()
    settings = make_settings(language={"glossary": ["Botkit Pro"]})
    async with running(settings, translator) as (bot, rec):
        await ask(bot, rec, msg("Quiero cancelar mi suscripción a botkit pro, por favor."))
    assert translator.calls[0].texts == ("Quiero cancelar mi suscripción a {0}, por favor.",)


async def test_human_handled_conversation_is_still_translated_for_the_agent(
    make_settings: MakeSettings,
) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(), translator) as (bot, rec):
        await ask(bot, rec, msg(ES))
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        await bot.store.set_conversation_status(conversation.id, ConversationStatus.WITH_HUMAN)
        await bot.submit(msg("¿Hay alguien ahí? Necesito hablar con una persona."))
        assert await bot.drain(30)
        last = (await stored(bot))[-1]
    assert last.direction == Direction.INBOUND and last.language == "es"
    assert last.working_text == "en(¿Hay alguien ahí?) en(Necesito hablar con una persona.)"
    assert len(rec.replies) == 1


@pytest.mark.parametrize(
    "status", [ConversationStatus.WITH_HUMAN, ConversationStatus.WAITING_HUMAN]
)
async def test_a_translation_failure_with_a_person_keeps_the_message_and_sends_nothing(
    make_settings: MakeSettings, status: ConversationStatus
) -> None:
    # The failure became the bot's fallback reply ("Sorry, something went wrong"),
    # sent into a conversation the bot must stay out of, and the message was stored as
    # answered by it. The agent is the one to answer; they read the original.
    translator = MarkingTranslator()
    async with running(make_settings(), translator) as (bot, rec):
        await ask(bot, rec, msg(ES))
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None
        await bot.store.set_conversation_status(conversation.id, status)
        translator.fail_with = TranslationError("translation service down")
        text = "¿Hay alguien ahí? Necesito hablar con una persona."
        await bot.submit(msg(text))
        assert await bot.drain(30)
        messages = await stored(bot)
        after = await bot.store.get_conversation("test", "c1")
    assert after is not None and after.status == status
    assert len(rec.replies) == 1  # the first message's reply only
    last = messages[-1]  # no reply stored after it either
    assert last.direction == Direction.INBOUND and last.text == text
    assert last.working_text is None and last.language == "es"


async def test_native_mode_asks_the_model_to_answer_in_the_customers_language(
    make_settings: MakeSettings,
) -> None:
    backend = RecordingEcho()
    async with running(make_settings(language={"mode": "native"}), None, backend) as (bot, rec):
        assert await ask(bot, rec, msg(ES)) == "echo: " + ES  # untranslated
        await ask(bot, rec, msg(EN, conversation="c2"))
        inbound = (await stored(bot))[0]
    spanish, english = backend.requests
    assert spanish.messages[0].role == "system"
    assert spanish.messages[0].content.endswith(
        "The customer writes in Spanish (es). Always answer in Spanish (es), even though "
        "these instructions are in another language."
    )
    assert "customer writes in" not in english.messages[0].content
    assert rec.replies[0].language == "es"
    assert (inbound.language, inbound.working_text) == ("es", None)


async def test_off_mode_does_nothing(make_settings: MakeSettings) -> None:
    async with running(make_settings(language={"mode": "off"}), None) as (bot, rec):
        assert await ask(bot, rec, msg(ES)) == "echo: " + ES
        inbound = (await stored(bot))[0]
    assert inbound.language is None and rec.replies[0].language is None


async def test_llm_translator_end_to_end(make_settings: MakeSettings) -> None:
    # The "llm" translator asks the generation backend; with echo, a "translation" is
    # the echo of the sentence, which shows the request path without a model.
    settings = make_settings(language={"translator": {"kind": "llm"}})
    async with running(settings) as (bot, rec):
        reply = await ask(bot, rec, msg("Hola, ¿dónde está mi pedido número 12345?"))
        inbound = (await stored(bot))[0]
    assert inbound.working_text == "echo: Hola, ¿dónde está mi pedido número 12345?"
    assert reply == "echo: echo: echo: Hola, ¿dónde está mi pedido número 12345?"


def test_settings_examples(make_settings: MakeSettings) -> None:
    assert make_settings().language.effective_mode == "native"
    llm: dict[str, Any] = {"translator": {"kind": "llm"}}
    assert make_settings(language=llm).language.effective_mode == "pivot"


async def test_concurrent_conversations_keep_their_languages(make_settings: MakeSettings) -> None:
    translator = MarkingTranslator(delay=0.01)
    async with running(make_settings(), translator) as (bot, rec):
        for i, text in enumerate([ES, DE, EN, ES, DE, EN]):
            await bot.submit(msg(text, conversation=f"x{i}", user=f"u{i}"))
        await rec.wait_for(6)
        await asyncio.sleep(0)
    by_key = {r.conversation_key: r for r in rec.replies}
    assert [by_key[f"x{i}"].language for i in range(6)] == ["es", "de", "en", "es", "de", "en"]


async def test_control_characters_from_the_translator_or_the_model_are_never_stored(
    make_settings: MakeSettings,
) -> None:
    """Both models' output is outside data: a NUL or a lone surrogate in a translation or
    in the chat model's words (the working-language side of the reply) must neither fail
    the reply nor reach the store or the customer."""

    class DirtyTranslator(MarkingTranslator):
        async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
            return [f"\x00{t}\ud800" for t in await super().translate(texts, source, target)]

    class DirtyEcho(EchoBackend):
        async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
            yield "Sure\x00, "
            async for delta in super().generate(request):
                yield delta.replace("\x00", "").replace("\ud800", "") + "\ud800"

    async with running(make_settings(), DirtyTranslator(), DirtyEcho()) as (bot, rec):
        reply = await ask(bot, rec, msg(ES))
        inbound, outbound = await stored(bot)
    assert outbound.status == "sent" and outbound.text == reply
    texts = [inbound.working_text, outbound.text, outbound.working_text]
    for text in texts:
        assert text and "\x00" not in text and "\ud800" not in text, texts
    assert inbound.working_text is not None and inbound.working_text.startswith("en(Hola")
    assert outbound.working_text is not None and outbound.working_text.startswith("Sure, echo: ")
