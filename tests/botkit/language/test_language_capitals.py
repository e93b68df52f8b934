"""Messages written in capitals are detected like the same text in lower case (audit:
multilingual, finding 1): langdetect skips words in capitals, so a shouted French or
Spanish message came out English at p=1.0 and switched an established conversation."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector

from botkit.bot import Bot
from botkit.config import Settings
from botkit.events import Contact, InboundMessage
from botkit.language import LangdetectDetector, detection_text
from botkit.language.tags import same_language
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]
_keys = itertools.count()
DATA = Path(__file__).parents[2] / "data" / "customer_service_parallel.jsonl"

FR = "Bonjour, je voudrais savoir où en est ma commande, s'il vous plaît."
FR_SHOUTED = (
    "C'EST INADMISSIBLE, J'ATTENDS MA COMMANDE DEPUIS DEUX SEMAINES ET PERSONNE NE ME RÉPOND !"
)
ES_SHOUTED = "¿DÓNDE ESTÁ MI PEDIDO? LLEVO DOS SEMANAS ESPERANDO Y NADIE ME RESPONDE."


@pytest.fixture(scope="module")
def detector() -> LangdetectDetector:
    found = LangdetectDetector(seed=0)
    found.load()
    return found


@pytest.mark.parametrize(("text", "language"), [(FR_SHOUTED, "fr"), (ES_SHOUTED, "es")])
def test_a_shouted_message_is_detected_in_its_language(
    detector: LangdetectDetector, text: str, language: str
) -> None:
    assert detector.detect(text)[0].language == language


def test_lines_in_capitals_are_detected_about_as_well_as_as_written(
    detector: LangdetectDetector,
) -> None:
    # Measured: 507/511 as written, 502/511 in capitals (before: 305/511, es 0/54).
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    lines = [r for r in rows if len(r["text"]) >= 20]
    right = 0
    for row in lines:
        guesses = detector.detect(detection_text(row["text"].upper()))
        right += bool(guesses) and same_language(guesses[0].language, row["lang"])
    assert right / len(lines) >= 0.97


async def test_a_shouted_message_does_not_switch_a_french_conversation(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(
        language={"detector": {"kind": "langdetect", "processes": 0}, "languages": ["es", "fr"]}
    )
    contact = Contact(channel="test", external_id="u-caps")
    async with Bot(settings, translator=MarkingTranslator()) as bot:
        rec = RecordingConnector(bot)
        bot.attach_connector(rec)
        for n, text in enumerate((FR, FR_SHOUTED), 1):
            await bot.submit(InboundMessage("test", "caps", contact, text, f"k{next(_keys)}"))
            await rec.wait_for(n)
        assert await bot.drain(30)
        conversation = await bot.store.get_conversation("test", "caps")
    assert [r.language for r in rec.replies] == ["fr", "fr"]
    assert conversation is not None and conversation.language == "fr"
