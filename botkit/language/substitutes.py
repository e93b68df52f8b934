"""The busy and fallback replies, translated ahead of time for ``pivot`` mode.

Those replies stand in for a reply while it streams (``botkit._delivery``): the backend
or the translator raised ``BackendBusyError`` or failed. That is after the translation
middleware is done, and exactly when the translator may be the overloaded part, so
translating the notice then could block the customer for the whole queue timeout, or
fail. Instead the configured texts are translated once per customer language, in the
background, the first time the translation middleware sees that language (``warm``),
and kept (``MAX_LANGUAGES``, least recently used dropped first). At substitution time
``lookup`` only reads the cache; a miss (the translation is still running, or failed)
means the working-language text, labelled as such by the delivery.

A failed warm-up is retried on a later ``warm`` after ``RETRY_SECONDS``: a translator
that is overloaded now should not be asked again for every message.

A text the customer gets written for their language (a built-in default kept, which
``botkit.language.default_texts`` has in 13 languages) is not translated for them: the
delivery sends the hand-written text, and a translation nobody reads would only take a
translator call, on the customer's first message, beside their reply's translation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from botkit.language.sentences import split_sentences
from botkit.language.tags import conversation_tag, same_language
from botkit.language.translate import TextTranslator
from botkit.log_context import spawn_detached

__all__ = ["MAX_LANGUAGES", "RETRY_SECONDS", "STATE_KEY", "SubstituteTexts"]

_log = logging.getLogger("botkit.language")

# ``ctx.state`` key under which the translation middleware leaves the cache for the
# reply's delivery (the delivery is built by the bot, outside the middleware).
STATE_KEY = "language.substitutes"
# A deployment serves a few dozen languages at most; two short texts each.
MAX_LANGUAGES = 64
RETRY_SECONDS = 60.0


class SubstituteTexts:
    """Translations of fixed working-language texts, per target language.

    Args:
        translator: the pivot translator (with the deployment's glossary).
        working_language: the language of ``texts``.
        texts: the texts to translate (``bot.busy_reply``, ``bot.fallback_reply``).
        max_languages: how many languages are kept.
        built_in: ``built_in(text, language)`` says whether a customer writing
            ``language`` gets a text written for it in place of ``text`` (the delivery
            picks the built-in default then): ``text`` is not translated into
            ``language``. None: every text is translated.
    """

    def __init__(
        self,
        translator: TextTranslator,
        working_language: str,
        texts: Iterable[str],
        *,
        max_languages: int = MAX_LANGUAGES,
        built_in: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.text_translator = translator
        self.working = working_language
        self.texts = tuple(dict.fromkeys(t for t in texts if t.strip()))
        self._built_in = built_in
        self.max_languages = max(1, max_languages)
        self._cache: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._failed: OrderedDict[str, float] = OrderedDict()  # language -> monotonic time
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def lookup(self, language: str, text: str) -> str | None:
        """``text`` in ``language`` if its translation is ready (never waits)."""
        if same_language(language, self.working):
            return text
        language = _key(language)
        found = self._cache.get(language)
        if found is None:
            return None
        self._cache.move_to_end(language)
        return found.get(text)

    def warm(self, language: str) -> None:
        """Start translating the texts into ``language`` in the background, unless they
        are cached, being translated, failed less than ``RETRY_SECONDS`` ago, or are
        all written for ``language`` (``built_in``)."""
        if self._closed or not self.texts or same_language(language, self.working):
            return
        language = _key(language)
        if language in self._cache or language in self._tasks:
            return
        failed = self._failed.get(language)
        if failed is not None and time.monotonic() - failed < RETRY_SECONDS:
            return
        if len(self._tasks) >= self.max_languages:
            return  # a burst of new languages: the rest wait for a later message
        built_in = self._built_in
        texts = [t for t in self.texts if built_in is None or not built_in(t, language)]
        if not texts:
            return  # checked again at the next message: two table look-ups
        # Detached: it serves every later message in that language, not the one that
        # asked first (its lines must not carry that message's tag).
        task = spawn_detached(self._translate(language, texts), name=f"translate-ahead-{language}")
        self._tasks[language] = task
        task.add_done_callback(lambda _: self._tasks.pop(language, None))

    async def _translate(self, language: str, texts: list[str]) -> None:
        tt = self.text_translator
        per_text = [split_sentences(t, tt.max_sentence_chars, glossary=tt.glossary) for t in texts]
        try:
            # One translator call for all texts: a batch costs about as much as a sentence.
            out = await tt.translate_segments(
                [s for seg in per_text for s in seg], self.working, language
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged; the working-language text is used meanwhile
            _log.warning("busy/fallback replies not translated into %s: %s: %s",
                         language, type(exc).__name__, exc)  # fmt: skip
            self._failed[language] = time.monotonic()
            self._failed.move_to_end(language)
            while len(self._failed) > self.max_languages:
                self._failed.popitem(last=False)
            return
        translated: dict[str, str] = {}
        start = 0
        for text, segments in zip(texts, per_text, strict=True):
            translated[text] = "".join(out[start : start + len(segments)])
            start += len(segments)
        self._failed.pop(language, None)
        self._cache[language] = translated
        while len(self._cache) > self.max_languages:
            self._cache.popitem(last=False)

    async def wait(self) -> None:
        """Wait for the translations in progress (tests; a warm-up before traffic)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the translations in progress; later ``warm`` calls do nothing."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _key(language: str) -> str:
    """What translations are cached under: the tag without variants (``de-a0000001`` is
    ``de``). Keyed by the customer's full tag, every made-up variant was translated anew
    and pushed a real language out of the cache."""
    return conversation_tag(language) or language
