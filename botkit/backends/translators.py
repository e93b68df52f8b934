"""Translators the ``[language.translator]`` settings can name: ``none``, ``llm``, ``engine``.

Every translator implements ``botkit.backends.protocol.Translator`` (``supports`` and a
batched ``translate``); the optional ``start``/``close`` coroutines are called by the bot
around its lifetime. Texts reach a translator one sentence each, with protected spans
already replaced by ``{0}``-style placeholders (``botkit.language.protect``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from botkit.backends.protocol import (
    CUT_AT_LIMIT,
    ChatMessage,
    GenerationBackend,
    GenerationRequest,
    Translator,
    finish_reason,
)
from botkit.errors import TranslationError
from botkit.language.codes import english_name, is_known_language
from botkit.language.settings import TranslatorSettings
from botkit.language.tags import same_language

__all__ = ["LLM_TRANSLATION_PROMPT", "LLMTranslator", "NoTranslator", "create_translator"]

_log = logging.getLogger("botkit.backends.translators")

LLM_TRANSLATION_PROMPT = (
    "You translate customer-service messages from {source} into {target}. Reply with the "
    "translation only: no notes, no quotation marks, no explanations. Copy every "
    "placeholder such as {{0}} or {{1}} exactly as it is, where it belongs in the "
    "sentence, and keep the formatting."
)


class NoTranslator:
    """Translates nothing: only a language into itself is supported."""

    name = "none"

    def supports(self, source: str, target: str) -> bool:
        return same_language(source, target)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if not same_language(source, target):
            raise TranslationError(f"no translator is configured ({source} → {target})")
        return list(texts)


class LLMTranslator:
    """Translation by the chat model, with a translation prompt and greedy decoding.

    For deployments with one multilingual model. Any pair of known languages is
    accepted (``codes.is_known_language``: a typo such as "xx" is not): how well a
    language is served depends on the model. The sentences of one
    batch are requested concurrently, so a batching backend runs them together. A
    sentence whose translation the backend reports cut at the token cap (a stream with
    ``finish_reason == "length"``, as the engine's and the OpenAI-compatible backend's)
    comes back empty, so the original sentence is kept.

    Args:
        backend: the bot's generation backend.
        max_new_tokens: cap per sentence (default: from the sentence's length).
    """

    name = "llm"

    def __init__(self, backend: GenerationBackend, *, max_new_tokens: int | None = None) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens

    def supports(self, source: str, target: str) -> bool:
        return is_known_language(source) and is_known_language(target)

    def request_for(self, text: str, source: str, target: str) -> GenerationRequest:
        """The generation request that translates one sentence."""
        prompt = LLM_TRANSLATION_PROMPT.format(source=_label(source), target=_label(target))
        # Translations run longer than their source in tokens for many pairs (and CJK
        # takes about a token per character): allow one token per source character.
        budget = self.max_new_tokens or min(1024, len(text) + 32)
        return GenerationRequest(
            messages=(ChatMessage("system", prompt), ChatMessage("user", text)),
            max_new_tokens=budget,
            temperature=0.0,
        )

    async def _one(self, text: str, source: str, target: str) -> str:
        request = self.request_for(text, source, target)
        stream = self.backend.generate(request)
        parts = [delta async for delta in stream]
        # A backend that reports why the reply ended (``ReportsFinish``: the engine and
        # OpenAI-compatible ones) says "length" when the token cap cut it: half a
        # sentence reads as a whole one, so it counts as no translation and the
        # original is kept (``TextTranslator``).
        if finish_reason(stream) == CUT_AT_LIMIT:
            _log.warning(
                "the %s → %s translation of a %d-character sentence was cut at %d tokens; "
                "the original sentence is kept",
                source,
                target,
                len(text),
                request.max_new_tokens,
            )
            return ""
        return "".join(parts).strip()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if same_language(source, target):
            return list(texts)
        tasks = [asyncio.ensure_future(self._one(t, source, target)) for t in texts]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # The first error is raised as itself (BackendBusyError stays a busy
            # signal); the sentences still running are not needed any more.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def _label(tag: str) -> str:
    name = english_name(tag)
    return name if name == tag else f"{name} ({tag})"


def create_translator(settings: TranslatorSettings, backend: GenerationBackend) -> Translator:
    """The translator ``settings.kind`` names (not started).

    The ``engine`` translator's module imports nothing heavy; it imports the engine only
    in ``start``.
    """
    if settings.kind == "llm":
        return LLMTranslator(backend)
    if settings.kind == "engine":
        from botkit.backends.local_translator import EngineTranslator

        return EngineTranslator(settings)
    return NoTranslator()
