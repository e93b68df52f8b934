"""Translating whole texts and reply streams through a ``Translator``.

Texts are cut into sentences (translation models are trained on sentences and have a
bounded input length), protected spans are replaced by placeholders, and the sentences
that still contain words go to the translator in one batch; the rest (whitespace, code
blocks, a lone order number) pass through untouched. A stream is translated one batch of
completed sentences at a time, so the first translated sentence is delivered while the
rest of the reply is still being generated.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from botkit.backends.protocol import Translator
from botkit.errors import BackendBusyError, TranslationError
from botkit.language.protect import Glossary, Protected, protect, restore
from botkit.language.sentences import SentenceBuffer, split_sentences
from botkit.language.tags import same_language
from botkit.sanitize import sanitize_text

__all__ = ["TextTranslator"]

_log = logging.getLogger("botkit.language")


def _split_space(segment: str) -> tuple[str, str, str]:
    core = segment.strip()
    if not core:
        return segment, "", ""
    lead = segment[: len(segment) - len(segment.lstrip())]
    trail = segment[len(segment.rstrip()) :]
    return lead, core, trail


class TextTranslator:
    """Sentence-level, span-protecting translation on top of a ``Translator``.

    Args:
        translator: the model (or service) that translates plain sentences.
        glossary: terms never translated.
        max_sentence_chars: longest segment sent as one text.
    """

    def __init__(
        self, translator: Translator, glossary: Glossary | None = None, *,
        max_sentence_chars: int = 400,
    ) -> None:  # fmt: skip
        self.translator = translator
        self.glossary = glossary or Glossary()
        self.max_sentence_chars = max_sentence_chars

    async def translate_text(self, text: str, source: str, target: str) -> str:
        """``text`` in ``target`` (unchanged, without a translator call, when the
        languages are the same).

        Raises:
            TranslationError: the translator failed or returned something unusable.
            BackendBusyError: an LLM translator's backend is overloaded.
        """
        if same_language(source, target):
            return text
        segments = split_sentences(text, self.max_sentence_chars, glossary=self.glossary)
        return "".join(await self.translate_segments(segments, source, target))

    async def translate_segments(
        self, segments: Sequence[str], source: str, target: str
    ) -> list[str]:
        """Translate each segment, keeping its surrounding whitespace; one translator
        call for all segments that need it."""
        if same_language(source, target):
            return list(segments)
        pieces = [_split_space(s) for s in segments]
        protected = [protect(core, self.glossary) if core else None for _, core, _ in pieces]
        todo = [i for i, p in enumerate(protected) if p is not None and p.needs_translation]
        results = [core for _, core, _ in pieces]
        if todo:
            batch = [protected[i] for i in todo]
            texts = [p.text for p in batch if p is not None]
            translated = await self._call(texts, source, target)
            for i, p, out in zip(todo, batch, translated, strict=True):
                results[i] = self._restore(out, p, results[i], source, target)
        return [lead + body + trail for (lead, _, trail), body in zip(pieces, results, strict=True)]

    def _restore(
        self, out: str, protected: Protected | None, original: str, source: str, target: str
    ) -> str:
        if protected is None:
            return original
        if not out.strip():
            # An empty translation of a sentence with words is a model failure (or the
            # LLM translator's reply was cut short); the original sentence is more useful
            # to the reader than nothing. Tested before restoring: restore() puts the
            # protected spans back, and "4711" alone would pass for a translation.
            _log.warning(
                "translator %r returned an empty translation (%s → %s); the "
                "original sentence is kept",
                self.translator.name,
                source,
                target,
            )
            return original
        return restore(out.strip(), protected)

    async def _call(self, texts: list[str], source: str, target: str) -> list[str]:
        name = getattr(self.translator, "name", type(self.translator).__name__)
        try:
            out = await self.translator.translate(texts, source, target)
        except (TranslationError, BackendBusyError):
            raise
        except Exception as exc:
            raise TranslationError(
                f"translator {name!r} failed on {source} → {target}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, list) or len(out) != len(texts):
            count = len(out) if isinstance(out, list) else type(out).__name__
            raise TranslationError(
                f"translator {name!r} returned {count} texts for {len(texts)} ({source} → {target})"
            )
        if not all(isinstance(t, str) for t in out):
            raise TranslationError(f"translator {name!r} returned a non-text result")
        # A model's output is outside data: a NUL or a lone surrogate in it could not be
        # stored (or shown) any more than in a customer's message.
        return [sanitize_text(t) for t in out]

    async def translate_stream(
        self,
        deltas: AsyncIterator[str],
        source: str,
        target: str,
        *,
        on_source: Callable[[str], None] | None = None,
    ) -> AsyncIterator[str]:
        """Translate a stream of text deltas, yielding translated sentences as soon as
        each is complete.

        Args:
            deltas: the text in ``source``, in pieces of any size.
            on_source: called with each chunk of source text once it has been taken
                into a translated batch (lets the caller keep the source text).
        """
        buffer = SentenceBuffer(self.max_sentence_chars, glossary=self.glossary)
        try:
            async for delta in deltas:
                segments = buffer.feed(delta)
                if segments:
                    for piece in await self.translate_segments(segments, source, target):
                        yield piece
                    if on_source is not None:
                        on_source("".join(segments))
            rest = buffer.flush()
            if rest:
                for piece in await self.translate_segments([rest], source, target):
                    yield piece
                if on_source is not None:
                    on_source(rest)
        finally:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()
