"""The local engine's translation models (Marian, M2M100, NLLB) as a botkit Translator.

This module imports nothing heavy: ``engine.translation`` (torch) is imported in
``start``, and its absence is a ``TranslationError`` that says what to install.

The engine's ``AsyncTranslator`` already speaks BCP-47 (it maps tags to each model's
codes: ``spa_Latn``, ``__es__``, ``>>spa<<``) and batches the sentences of concurrent
requests on a worker thread, so this adapter only loads the configured checkpoints and
routes each pair to one that serves it. One many-to-many model (M2M100, NLLB) serves
every pair of its languages; an OPUS-MT (Marian) checkpoint serves one direction, so
``pivot`` mode with Marian needs two per customer language (``es-en`` and ``en-es``),
configured as a list.

Overload is answered like the chat engine's: a full translation queue
(``EngineBusyError``) and a wait longer than ``queue_timeout_seconds`` both raise
``BackendBusyError``, which the customer gets ``bot.busy_reply`` for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from botkit.errors import BackendBusyError, TranslationError
from botkit.language.settings import TranslatorSettings
from botkit.language.tags import same_language, try_normalize

__all__ = ["ENGINE_TRANSLATION_MODULE", "EngineTranslator"]

_log = logging.getLogger("botkit.backends.translator")

ENGINE_TRANSLATION_MODULE = "engine.translation"


class EngineTranslator:
    """Translates with the encoder-decoder models of the local engine.

    Args:
        settings: ``[language.translator]``: ``model`` (one or more checkpoints: local
            directories or hub ids), ``dtype``, ``device``, ``beam_size``.
        queue_timeout_seconds: the longest a translation may wait and run before the
            customer gets the busy reply (None: no bound). ``LanguageSupport`` sets the
            local engine's ``backend.engine.queue_timeout_seconds``.
    """

    name = "engine"

    def __init__(
        self, settings: TranslatorSettings, *, queue_timeout_seconds: float | None = None
    ) -> None:
        self.settings = settings
        self.queue_timeout_seconds = queue_timeout_seconds
        self._models: list[Any] = []  # engine.translation.AsyncTranslator instances

    async def start(self) -> None:
        """Import the engine and load every configured model.

        Raises:
            TranslationError: the engine's translation models are not installed, or a
                model cannot be loaded (the message names it and says why).
        """
        if self._models:
            return
        try:
            module = import_module(ENGINE_TRANSLATION_MODULE)
            loader = module.AsyncTranslator
        except Exception as exc:  # ImportError, torch failing to load, an older engine
            raise TranslationError(
                "translator 'engine' needs the local engine's translation models "
                f"({ENGINE_TRANSLATION_MODULE}), which are not available "
                f"({type(exc).__name__}: {exc}); install botkit[engine] or use "
                "language.translator.kind = 'llm'"
            ) from exc
        s = self.settings
        for source in s.model:
            try:
                model = await loader.load(
                    source,
                    dtype=s.dtype,
                    device=s.device,
                    beam_size=s.beam_size,
                    cuda_graphs=s.cuda_graphs,
                )
            except Exception as exc:
                await self.close()
                raise TranslationError(
                    f"translation model {source!r} could not be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            self._models.append(model)
            _log.info("translation model %r loaded", source)

    def _route(self, source: str, target: str) -> Any | None:
        return next((m for m in self._models if m.supports(source, target)), None)

    def supports(self, source: str, target: str) -> bool:
        if try_normalize(source) is None or try_normalize(target) is None:
            return False
        return same_language(source, target) or self._route(source, target) is not None

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if same_language(source, target):
            return list(texts)
        model = self._route(source, target)
        if model is None:
            raise TranslationError(f"no loaded translation model translates {source} → {target}")
        timeout = self.queue_timeout_seconds
        try:
            # The bound cancels only our wait: a job the worker already took is finished
            # and its result dropped (the engine cannot stop a batch midway).
            out = await asyncio.wait_for(model.translate(list(texts), source, target), timeout)
        except TimeoutError:
            raise BackendBusyError(
                f"translation {source} → {target} took over {timeout:g} s"
            ) from None
        except Exception as exc:
            if _is_engine_busy(exc):
                raise BackendBusyError(f"translator busy: {exc}") from exc
            raise
        return [str(t) for t in out]

    def stopped_for_good(self) -> str | None:
        """``StopsForGood``: a model's worker crashed, so every pair it serves fails
        until the process restarts; None while all serve (also before ``start`` and
        after ``close``)."""
        for model in self._models:
            reason = getattr(model, "dead_reason", None)
            if reason:
                return f"translation model {model.name!r} stopped: {reason}"
        return None

    async def close(self) -> None:
        """Stop the models' workers (errors are logged, not raised)."""
        models, self._models = self._models, []
        for model in models:
            try:
                await model.close()
            except Exception as exc:
                _log.warning("translation model %r failed to close: %s", model.name, exc)


def _is_engine_busy(exc: Exception) -> bool:
    """Whether ``exc`` is the engine's full-queue error (imported only once the engine
    is in use: an error from it means the engine module is already loaded)."""
    try:
        from engine.request_errors import EngineBusyError
    except ImportError:  # no engine installed: it cannot have raised its error
        return False
    return isinstance(exc, EngineBusyError)
