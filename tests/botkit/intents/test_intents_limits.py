"""``max_chars`` in pivot mode: the customer's message decides, not its translation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intents_helpers import HOURS_EN, HOURS_ES, SHOP, IntentsBot

from botkit.testing.translator import MarkingTranslator

# In-process langdetect: deterministic, no worker processes.
DETECT = {"detector": {"kind": "langdetect", "processes": 0}}

LONG_ES = (
    "Hola, pedí un sofá hace tres semanas y la empresa de transporte dice que no puede "
    "venir antes de fin de mes; lo necesito antes porque nos mudamos. ¿Cuál es su horario "
    "el sábado? ¿Puedo recogerlo yo mismo en la tienda?"
)
# Its English translation, sentence by sentence: shorter than the limit.
ENGLISH = {
    "Hola, pedí un sofá hace tres semanas y la empresa de transporte dice que no puede "
    "venir antes de fin de mes; lo necesito antes porque nos mudamos.": (
        "I ordered a sofa 3 weeks ago; the carrier can't come before month end and we're moving."
    ),
    "¿Cuál es su horario el sábado?": "What are your opening hours on Saturday?",
    "¿Puedo recogerlo yo mismo en la tienda?": "Can I pick it up at the shop?",
    "¿Trabajan ustedes los domingos?": "What are your opening hours on Sundays, please?",
}


@dataclass
class Shortening(MarkingTranslator):
    """Translates the sentences above into English; marks everything else."""

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if target == "en":
            return [ENGLISH.get(t.strip(), t) for t in texts]
        return await super().translate(texts, source, target)


async def test_a_long_message_is_not_matched_through_its_shorter_translation(
    intents_bot: IntentsBot,
) -> None:
    english = " ".join(ENGLISH[s] for s in list(ENGLISH)[:3])
    assert len(LONG_ES) > 200 >= len(english)  # max_chars' default
    async with intents_bot(language=DETECT, translator=Shortening()) as say:
        reply = await say(LONG_ES)
        assert reply is not None and reply.text not in (HOURS_EN, HOURS_ES), reply
        assert "intent" not in reply.metadata


async def test_a_short_message_is_matched_through_a_longer_translation(
    intents_bot: IntentsBot,
) -> None:
    short, english = "¿Trabajan ustedes los domingos?", ENGLISH["¿Trabajan ustedes los domingos?"]
    assert len(short) <= 40 < len(english)
    async with intents_bot(
        SHOP | {"max_chars": 40}, language=DETECT, translator=Shortening()
    ) as say:
        reply = await say(short)
        assert reply is not None and reply.metadata.get("intent") == "opening_hours", reply
