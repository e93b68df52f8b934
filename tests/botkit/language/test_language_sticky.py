"""When a conversation gets and leaves a language (review 3, findings 1 and 2; review 4).

1. The working language used as a fallback (nothing detected, no hint, no preference)
   is not stored: the next message needs ``min_letters``, not ``min_letters_to_switch``.
   Nor is a seed (a channel hint, a contact's remembered language): a new conversation
   gets its language from a trusted detection or ``/lang``.
2. An established language is left only after two trusted detections in a row of the
   same other language, a long message, or ``/lang``; a one-off misdetection changes
   nothing.

Through the real Bot, store and langdetect; only the translation model is a stand-in.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Contact, Direction, InboundMessage
from botkit.language.confirm import LONG_MESSAGE_LETTERS, SwitchConfirmation
from botkit.language.default_texts import SWITCH_REPLIES
from botkit.language.policy import LanguageDecision, count_letters
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]
_keys = itertools.count()

DE = "Guten Tag, ich möchte gerne wissen, wo meine Bestellung geblieben ist."
FR = "Bonjour, je voudrais savoir où en est ma commande, elle n'est pas arrivée."
PT = "Olá, gostaria de saber onde está a minha encomenda, ainda não chegou."
ES_QUESTION = "¿Dónde está mi pedido?"  # 17 letters: langdetect es, p ≈ 1.0


def msg(text: str, conversation: str = "c1", hint: str | None = None) -> InboundMessage:
    contact = Contact(channel="test", external_id=f"u-{conversation}", language_hint=hint)
    return InboundMessage("test", conversation, contact, text, f"s{next(_keys)}")


@asynccontextmanager
async def running(
    settings: Settings, translator: MarkingTranslator | None = None
) -> AsyncIterator[tuple[Bot, RecordingConnector]]:
    async with Bot(settings, translator=translator) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        yield bot, rec


async def ask(bot: Bot, rec: RecordingConnector, message: InboundMessage) -> str:
    before = len(rec.replies)
    await bot.submit(message)
    return (await rec.wait_for(before + 1))[before].text


def detector(**extra: Any) -> dict[str, Any]:
    return {"detector": {"kind": "langdetect", "processes": 0}, **extra}


# --- 1. the fallback is not stored -------------------------------------------------------


async def test_question_after_an_undetectable_greeting_is_detected(
    make_settings: MakeSettings,
) -> None:
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert await ask(bot, rec, msg("Hola")) == "echo: Hola"  # working language, labelled so
        assert rec.replies[-1].language == "en"
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None and conversation.language is None
        reply = await ask(bot, rec, msg(ES_QUESTION))
        assert reply.startswith("es("), reply
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
        messages = await bot.store.messages_after("test", "c1", 0, 10)
    assert conversation is not None and conversation.language == "es"
    inbound = [m.language for m in messages if m.direction == Direction.INBOUND]
    # The greeting was answered in the working language; what it is written in is not
    # known, and is not stored as if detected.
    assert inbound == [None, "es"]


async def test_native_mode_too(make_settings: MakeSettings) -> None:
    async with running(make_settings(language=detector(mode="native"))) as (bot, rec):
        await ask(bot, rec, msg("Hola", conversation="e"))
        await ask(bot, rec, msg(ES_QUESTION, conversation="e"))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "e")
    assert conversation is not None and conversation.language == "es"
    assert rec.replies[-1].language == "es"


# --- a hint or a remembered language is a seed, not a settled language (review 4, 1) -----


async def test_a_hint_answers_the_first_message_but_is_not_stored(
    make_settings: MakeSettings,
) -> None:
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert await ask(bot, rec, msg("oi", conversation="h", hint="pt-br")) == (
            "pt-BR(echo: en(oi))"
        )
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "h")
        messages = await bot.store.messages_after("test", "h", 0, 10)
    assert conversation is not None and conversation.language is None
    # Read and answered in it, but "oi" is not known to be Portuguese: the message keeps
    # no language, the reply has the one it is written in.
    assert [m.language for m in messages] == [None, "pt-BR"]


async def test_a_clear_first_message_overrides_the_hint(make_settings: MakeSettings) -> None:
    """A browser or a Telegram app set to English does not make a customer's first
    Spanish message pay the switching price (two detections in a row)."""
    text = "Necesito cambiar la dirección de envío"  # 33 letters, under LONG_MESSAGE_LETTERS
    assert count_letters(text) < LONG_MESSAGE_LETTERS
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert (
            await ask(bot, rec, msg(text, conversation="a", hint="en")) == f"es(echo: en({text}))"
        )
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "a")
    assert conversation is not None and conversation.language == "es"


async def test_a_question_after_a_greeting_overrides_the_hint(
    make_settings: MakeSettings,
) -> None:
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert await ask(bot, rec, msg("Hola", conversation="g", hint="en")) == "echo: Hola"
        assert (await ask(bot, rec, msg(ES_QUESTION, conversation="g", hint="en"))).startswith(
            "es("
        )
        # Settled by detection now: the hint changes nothing, one misdetection neither.
        assert (await ask(bot, rec, msg("ok", conversation="g", hint="en"))).startswith("es(")
        assert (
            await ask(bot, rec, msg("Wann kommt mein Paket an?", conversation="g", hint="en"))
        ).startswith("es(")
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "g")
    assert conversation is not None and conversation.language == "es"


SWITCHED_DE = SWITCH_REPLIES["de"].replace("{language}", "Deutsch")
SWITCHED_FR = SWITCH_REPLIES["fr"].replace("{language}", "français")


async def test_a_remembered_language_is_a_seed_too(make_settings: MakeSettings) -> None:
    """The language a contact chose with /lang in one conversation starts the next one,
    and a clear first message there still decides."""

    def from_ana(text: str, conversation: str) -> InboundMessage:
        contact = Contact(channel="test", external_id="ana")
        return InboundMessage("test", conversation, contact, text, f"s{next(_keys)}")

    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        # The built-in confirmation, in German already.
        assert await ask(bot, rec, from_ana("/lang de", "first")) == SWITCHED_DE
        assert (await ask(bot, rec, from_ana("ok", "second"))).startswith("de(")
        assert (await ask(bot, rec, from_ana(ES_QUESTION, "third"))).startswith("es(")
        assert await bot.drain(30)
        second = await bot.store.get_conversation("test", "second")
        third = await bot.store.get_conversation("test", "third")
    assert second is not None and second.language is None
    assert third is not None and third.language == "es"


@pytest.mark.parametrize(
    ("text", "language"),
    [("मेरा ऑर्डर कहाँ है?", "hi"), ("என் ஆர்டர் எங்கே?", "ta"), ("আমার অর্ডার কোথায়?", "bn")],
)
async def test_a_conversation_opening_in_an_indic_language_gets_it(
    make_settings: MakeSettings, text: str, language: str
) -> None:
    """Vowel signs and viramas count as letters (review 4, finding 3): these used to fall
    short of min_letters and were answered in the working language."""
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert await ask(bot, rec, msg(text, conversation=language)) == (
            f"{language}(echo: en({text}))"
        )


# --- 2. one misdetection does not switch -------------------------------------------------


@pytest.mark.parametrize(
    ("opening", "language", "follow_up"),
    [
        # langdetect is confidently wrong on these (no / sv / fi / it at p ≈ 1.0).
        (DE, "de", "Wann kommt mein Paket an?"),
        (FR, "fr", "Parfait, j'attends alors"),
        (FR, "fr", "J'ai reçu la mauvaise taille"),
        (PT, "pt", "Quero cancelar a assinatura"),
    ],
)
async def test_a_one_off_misdetection_keeps_the_language(
    make_settings: MakeSettings, opening: str, language: str, follow_up: str
) -> None:
    translator = MarkingTranslator()
    async with running(make_settings(language=detector()), translator) as (bot, rec):
        assert (await ask(bot, rec, msg(opening))).startswith(f"{language}(")
        reply = await ask(bot, rec, msg(follow_up))
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "c1")
    assert reply.startswith(f"{language}("), reply
    # Translated in from the conversation's language, never from the misdetected one.
    assert {c.source for c in translator.calls if c.target == "en"} == {language}
    assert conversation is not None and conversation.language == language


async def test_two_short_detections_in_a_row_switch(make_settings: MakeSettings) -> None:
    first, second = "¿Dónde está mi paquete ahora?", "Quiero hablar con alguien hoy"
    assert max(count_letters(first), count_letters(second)) < LONG_MESSAGE_LETTERS
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        assert (await ask(bot, rec, msg(DE))).startswith("de(")
        assert (await ask(bot, rec, msg(first))).startswith("de(")  # one costs a reply
        assert (await ask(bot, rec, msg("ok"))).startswith("de(")  # no detection: no break
        assert (await ask(bot, rec, msg(second))).startswith("es(")


async def test_the_current_language_in_between_cancels_the_switch(
    make_settings: MakeSettings,
) -> None:
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        await ask(bot, rec, msg(DE))
        assert (await ask(bot, rec, msg("¿Dónde está mi paquete ahora?"))).startswith("de(")
        assert (await ask(bot, rec, msg("Wo ist denn mein Paket jetzt?"))).startswith("de(")
        assert (await ask(bot, rec, msg("Quiero hablar con alguien hoy"))).startswith("de(")


async def test_a_long_message_switches_at_once(make_settings: MakeSettings) -> None:
    assert count_letters(FR) >= LONG_MESSAGE_LETTERS
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        await ask(bot, rec, msg(DE))
        assert (await ask(bot, rec, msg(FR))).startswith("fr(")


async def test_lang_command_switches_at_once_and_voids_a_pending_switch(
    make_settings: MakeSettings,
) -> None:
    async with running(make_settings(language=detector()), MarkingTranslator()) as (bot, rec):
        await ask(bot, rec, msg(DE))
        assert (await ask(bot, rec, msg("¿Dónde está mi paquete ahora?"))).startswith("de(")
        assert await ask(bot, rec, msg("/lang fr")) == SWITCHED_FR
        # The Spanish detection before the command does not count any more.
        assert (await ask(bot, rec, msg("Quiero hablar con alguien hoy"))).startswith("fr(")


def _decision(language: str, letters: int = 25, detected: bool = True) -> LanguageDecision:
    return LanguageDecision(language, language if detected else None, "detected", letters)


def test_confirmation_rules_and_bound() -> None:
    c = SwitchConfirmation(max_pending=2)
    # No language yet: the first detection decides.
    assert c.confirm(1, None, _decision("es")).language == "es"
    kept = c.confirm(1, "de", _decision("no"))
    assert (kept.language, kept.detected, kept.reason) == ("de", "no", "unconfirmed")
    assert c.pending(1) == "no"
    # An untrusted message in between leaves the pending detection alone.
    short = LanguageDecision("de", None, "short", 3)
    assert c.confirm(1, "de", short) is short and c.pending(1) == "no"
    # A third language replaces it; the same one twice confirms.
    assert c.confirm(1, "de", _decision("sv")).language == "de"
    assert c.confirm(1, "de", _decision("sv")).language == "sv"
    assert c.pending(1) is None
    # Long messages switch at once; the current language clears a pending switch.
    assert c.confirm(2, "de", _decision("fr", LONG_MESSAGE_LETTERS)).language == "fr"
    c.confirm(3, "de", _decision("fr"))
    assert c.confirm(3, "de", _decision("de")).language == "de" and c.pending(3) is None
    # Same language, other region: not a switch.
    assert c.confirm(4, "pt-BR", _decision("pt-BR")).reason == "detected"
    # Bounded: the least recently touched conversation is dropped first.
    for conversation in range(10, 20):
        c.confirm(conversation, "de", _decision("fr"))
    assert len(c) == 2 and c.pending(10) is None and c.pending(19) == "fr"
