"""A customer's language tag must not grow memory: variant subtags (``de-a0000001``,
``de-a0000002``...) are valid tags without end, and caches keyed by the tag grew one
entry per tag (the soak audit: ~13.5 KB each in the stopword cache, never freed)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import RecordingConnector, message

from botkit.bot import Bot
from botkit.config import Settings
from botkit.language import Glossary
from botkit.language import stopwords as stopwords_module
from botkit.language.stopwords import stopwords
from botkit.language.substitutes import SubstituteTexts
from botkit.language.tags import conversation_tag
from botkit.language.translate import TextTranslator
from botkit.testing.translator import MarkingTranslator

MakeSettings = Callable[..., Settings]

GERMAN = stopwords("de")


def _cache_entries() -> int:
    """Entries in every functools cache of the stopwords module, whatever it caches."""
    return sum(
        f.cache_info().currsize
        for f in vars(stopwords_module).values()
        if callable(getattr(f, "cache_info", None))
    )


@pytest.mark.parametrize(
    ("tag", "configured", "expected"),
    [
        ("de-a0000001", (), "de"),
        ("de-DE-1996", (), "de-DE"),  # region kept, variant dropped
        ("sr-Latn-RS-rozaj-x-abc", (), "sr-Latn-RS"),
        ("zh-TW", (), "zh-Hant"),
        ("pt_br", (), "pt-BR"),
        ("de-a0000001", ("es", "de", "en"), "de"),  # the configured entry
        ("DE-ch-a0000001", ("de", "en"), "de"),
        ("pt-BR", ("pt-BR", "en"), "pt-BR"),  # an exact entry stays
        ("en-GB", ("es", "en"), "en"),
        ("fr-a0000001", ("es", "en"), "fr"),  # not configured: only reduced
        ("e1", (), None),
        (None, ("en",), None),
    ],
)
def test_conversation_tag_keeps_language_script_region(
    tag: str | None, configured: tuple[str, ...], expected: str | None
) -> None:
    assert conversation_tag(tag, configured) == expected


def test_distinct_variant_tags_do_not_grow_the_stopword_cache() -> None:
    for n in range(5_000):
        assert stopwords(f"de-a{n:07d}") == GERMAN
    assert _cache_entries() <= 16
    # And in bytes: another 5,000 tags (their normal forms' own bounded cache full by
    # now) leave next to nothing behind; keyed by the tag this was ~67 MB.
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(5_000, 10_000):
            stopwords(f"de-a{n:07d}")
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, grown
    assert stopwords("de-AT") == GERMAN and stopwords("xx-a0000001") == frozenset()


async def test_lang_commands_with_variants_keep_one_language_and_a_bounded_cache(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    """One conversation alternates ``/lang de-aNNNNNNN`` and a question, through the
    real bot with the knowledge plugin searching (stopwords per message)."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "versand.md").write_text(
        "# Versand\n\nWir liefern innerhalb von drei Tagen. Der Versand kostet 4 Euro.\n",
        encoding="utf-8",
    )
    plugins: dict[str, Any] = {"knowledge": {"sources": [f"{kb}/*.md"]}}
    settings = make_settings(
        plugins=plugins,
        language={"detector": {"kind": "none"}},
        bot={"rate_limit": {"messages": 1_000_000}},
    )
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        assert bot.plugins.active == ["knowledge"]
        for n in range(300):
            await bot.submit(message(f"/lang de-a{n:07d}", f"s{n}"))
            await bot.submit(message(f"Wann kommt meine Bestellung {n}?", f"q{n}"))
            assert await bot.drain(30)
            assert _cache_entries() <= 16, n
        conversation = await bot.store.get_conversation("test", "c1")
        assert conversation is not None and conversation.language == "de"
        contact = await bot.store.get_contact(conversation.contact_id)
        assert contact is not None and contact.language == "de"


async def test_translated_busy_replies_are_cached_per_language_not_per_variant() -> None:
    """In pivot mode each made-up variant translated the texts anew and pushed a real
    language out of the cache."""
    translator = MarkingTranslator()
    cache = SubstituteTexts(
        TextTranslator(translator, Glossary()), "en", ["Busy. Try later."], max_languages=2
    )
    cache.warm("es")
    await cache.wait()
    for n in range(50):
        cache.warm(f"de-a{n:07d}")
        await cache.wait()
    assert len(translator.calls) == 2  # es, and de once
    assert translator.calls[1].target == "de"
    assert cache.lookup("es", "Busy. Try later.") == "es(Busy.) es(Try later.)"  # kept
    assert cache.lookup("de-a0000999", "Busy. Try later.") == "de(Busy.) de(Try later.)"
