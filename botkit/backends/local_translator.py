"""The local engine's translation models (Marian, M2M100, NLLB) as a botkit Translator.

This module imports nothing heavy: ``engine.translation`` (torch) is imported in
``start``, and its absence is a ``TranslationError`` that says what to install.

The adapter maps botkit's BCP-47 tags to each model family's own codes
(``botkit.language.codes``) and routes every pair to a loaded model that serves it: one
many-to-many model (M2M100, NLLB) serves every pair of its languages; OPUS-MT (Marian)
checkpoints serve one direction each, so ``pivot`` mode with Marian needs two per
customer language (``es-en`` and ``en-es``).

What this adapter expects of ``engine.translation`` (the engine never imports botkit,
so the seam is plain names and model codes)::

    load_translation_model(source: str, *, dtype: str = "auto", device: str = "auto")
        -> model        # synchronous (run in a thread here); raises if missing/broken
    model.family: str                       # "marian" | "m2m100" | "nllb"
    model.languages: Collection[str]        # many-to-many: codes it reads and writes
    model.pair: tuple[str, str] | None      # marian: (source code, target code)
    await model.translate(texts: list[str], *, source: str, target: str,
                          beam_size: int = 1) -> list[str]
    model.close()                           # optional; may be a coroutine function
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from botkit.errors import TranslationError
from botkit.language.codes import CodeScheme, model_code
from botkit.language.settings import TranslatorSettings
from botkit.language.tags import same_language, try_normalize

__all__ = ["ENGINE_TRANSLATION_MODULE", "EngineTranslator"]

_log = logging.getLogger("botkit.backends.translator")

ENGINE_TRANSLATION_MODULE = "engine.translation"
_FAMILIES: frozenset[str] = frozenset({"marian", "m2m100", "nllb"})


def _code(tag: str, family: CodeScheme, role: str) -> str | None:
    try:
        return model_code(tag, family, role="source" if role == "source" else "target")
    except TranslationError:
        return None


class EngineTranslator:
    """Translates with the encoder-decoder models of the local engine.

    Args:
        settings: ``[language.translator]``: ``model`` (one or more checkpoints: local
            directories or hub ids), ``dtype``, ``device``, ``beam_size``.
    """

    name = "engine"

    def __init__(self, settings: TranslatorSettings) -> None:
        self.settings = settings
        self._models: list[tuple[str, Any]] = []  # (source name, loaded model)

    async def start(self) -> None:
        """Import the engine and load every configured model.

        Raises:
            TranslationError: the engine's translation models are not installed, or a
                model cannot be loaded (the message names it).
        """
        if self._models:
            return
        try:
            module = import_module(ENGINE_TRANSLATION_MODULE)
            load = module.load_translation_model
        except Exception as exc:  # ImportError, torch failing to load, an older engine
            raise TranslationError(
                "translator 'engine' needs the local engine's translation models "
                f"({ENGINE_TRANSLATION_MODULE}), which are not available "
                f"({type(exc).__name__}: {exc}); install botkit[engine] or use "
                "language.translator.kind = 'llm'"
            ) from exc
        for source in self.settings.model:
            try:
                model = await asyncio.to_thread(
                    load, source, dtype=self.settings.dtype, device=self.settings.device
                )
            except Exception as exc:
                await self.close()
                raise TranslationError(
                    f"translation model {source!r} could not be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            family = getattr(model, "family", None)
            if family not in _FAMILIES:
                await self.close()
                raise TranslationError(
                    f"translation model {source!r} is of unknown family {family!r} "
                    f"(expected one of {', '.join(sorted(_FAMILIES))})"
                )
            self._models.append((source, model))
            _log.info("translation model %r (%s) loaded", source, family)

    def _route(self, source: str, target: str) -> tuple[Any, str, str] | None:
        for _, model in self._models:
            family: CodeScheme = model.family
            src, tgt = _code(source, family, "source"), _code(target, family, "target")
            if src is None or tgt is None:
                continue
            pair = getattr(model, "pair", None)
            if pair is not None:
                if tuple(pair) == (src, tgt):
                    return model, src, tgt
            elif src in model.languages and tgt in model.languages:
                return model, src, tgt
        return None

    def supports(self, source: str, target: str) -> bool:
        if try_normalize(source) is None or try_normalize(target) is None:
            return False
        return same_language(source, target) or self._route(source, target) is not None

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if same_language(source, target):
            return list(texts)
        route = self._route(source, target)
        if route is None:
            raise TranslationError(f"no loaded translation model translates {source} → {target}")
        model, src, tgt = route
        out = await model.translate(
            list(texts), source=src, target=tgt, beam_size=self.settings.beam_size
        )
        return [str(t) for t in out]

    async def close(self) -> None:
        """Release the models (errors are logged, not raised)."""
        models, self._models = self._models, []
        for source, model in models:
            close = getattr(model, "close", None)
            if close is None:
                continue
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                _log.warning("translation model %r failed to close: %s", source, exc)
