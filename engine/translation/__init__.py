"""Encoder-decoder translation on our kernels: Marian (OPUS-MT), M2M100 and NLLB-200.

Typical use::

    translator = await AsyncTranslator.load("Helsinki-NLP/opus-mt-en-de")
    translator.supports("en", "de")                       # True
    await translator.translate(["Where is my order?"], "en", "de")

``TranslationEngine`` is the synchronous, single-thread engine underneath (batched greedy
and beam search, ``transformers``-identical decoding rules). Languages are BCP-47 tags,
mapped here to each model's codes (``es`` -> ``__es__`` / ``spa_Latn`` / ``>>spa<<``).
This package never imports botkit.
"""

from __future__ import annotations

from engine.translation.async_translator import AsyncTranslator
from engine.translation.engine import TranslationEngine
from engine.translation.errors import UnsupportedLanguagePairError
from engine.translation.languages import LanguageTag, PairPlan
from engine.translation.loader import LoadedTranslationModel, load_translation_model
from engine.translation.registry import supported_translation_architectures
from engine.translation.requests import TranslationRequest

__all__ = [
    "AsyncTranslator",
    "LanguageTag",
    "LoadedTranslationModel",
    "PairPlan",
    "TranslationEngine",
    "TranslationRequest",
    "UnsupportedLanguagePairError",
    "load_translation_model",
    "supported_translation_architectures",
]
