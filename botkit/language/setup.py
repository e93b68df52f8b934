"""Wiring the language features into a bot: detector, translator, middleware, handler.

``Bot`` creates one ``LanguageSupport``, starts it after the backend (the ``llm``
translator uses the backend), installs it into the pipeline and closes it on shutdown.

Startup checks: in ``pivot`` mode the translator must translate every configured
customer language (``language.languages``) into the working language and back; the
error names every pair that fails, so a deployment never silently passes text through.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from botkit.agent_replies import AgentText
from botkit.backends.protocol import GenerationBackend, Translator
from botkit.config.settings import Settings
from botkit.errors import TranslationError
from botkit.language.codes import is_known_language
from botkit.language.default_texts import BUSY_REPLIES, FALLBACK_REPLIES, default_text_in
from botkit.language.detect import LangdetectDetector, LanguageDetector, create_detector
from botkit.language.protect import Glossary
from botkit.language.settings import Mode
from botkit.language.substitutes import SubstituteTexts
from botkit.language.switch import SWITCH_GROUP, LanguageSwitchHandler
from botkit.language.tags import same_language, try_normalize
from botkit.language.translate import TextTranslator
from botkit.pipeline.chain import Pipeline
from botkit.pipeline.middleware.language import LanguageDetectionMiddleware
from botkit.pipeline.middleware.native import NativeLanguageMiddleware
from botkit.pipeline.middleware.translation import (
    NoticeTranslationMiddleware,
    TranslationMiddleware,
)

__all__ = ["LanguageSupport", "check_pairs", "model_languages"]

_log = logging.getLogger("botkit.language")


def check_pairs(translator: Translator, working: str, languages: tuple[str, ...]) -> None:
    """Make sure ``translator`` translates each language into ``working`` and back.

    Raises:
        TranslationError: naming every unsupported pair.
    """
    missing = [
        f"{a} → {b}"
        for language in languages
        if not same_language(language, working)
        for a, b in ((language, working), (working, language))
        if not translator.supports(a, b)
    ]
    if missing:
        raise TranslationError(
            f"translator {translator.name!r} cannot translate {', '.join(missing)} "
            f"(language.languages with working language {working}); configure a model "
            "for these pairs or remove the languages"
        )


class LanguageSupport:
    """The configured language features of one bot.

    Args:
        settings: the whole settings tree (``[language]`` and ``bot.working_language``).
        translator: use this translator instead of the configured one (tests,
            embedding); it is started and closed like a configured one.
        detector: use this detector instead of the configured one.
        wrap_translator: applied to the started translator before anything uses it
            (the bot's metrics count and time its calls).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        translator: Translator | None = None,
        detector: LanguageDetector | None = None,
        wrap_translator: Callable[[Translator], Translator] | None = None,
    ) -> None:
        self.settings = settings.language
        self._wrap_translator = wrap_translator
        # A known language, normalized: the settings checked it (botkit.config).
        self.working = settings.bot.working_language
        # In the working language: the built-in texts a deployment working in German kept
        # are translated from their German version (the delivery looks them up so).
        bot = settings.bot
        self._substitutes_in = (
            default_text_in(bot.busy_reply, BUSY_REPLIES, self.working),
            default_text_in(bot.fallback_reply, FALLBACK_REPLIES, self.working),
        )
        self._substitute_texts = tuple(text_in(self.working)[1] for text_in in self._substitutes_in)
        self.substitutes: SubstituteTexts | None = None
        # The engine translator's waits end in the busy reply like the chat engine's.
        self._queue_timeout = settings.backend.engine.queue_timeout_seconds
        self._translator_override = translator
        self._detector_override = detector
        self.translator: Translator | None = None
        self.detector: LanguageDetector | None = None
        # The switch command is quoted in replies ("write /lang es"), and so is the
        # hand-off plugin's return command ("Send /bot to talk to the bot again"): never
        # translated.
        command = (self.settings.switch_command,) if self.settings.switch_command else ()
        quoted = (*command, *_handoff_commands(settings.plugins))
        self.glossary = Glossary((*self.settings.glossary, *quoted))
        mode = self.settings.mode
        if mode == "auto" and translator is not None:
            mode = "pivot"
        self.mode: Mode = self.settings.effective_mode if mode == "auto" else mode
        # The chat model's declared languages (its card or GGUF), read in ``start``
        # when "auto" became native: customers in other languages get the working
        # language (NativeLanguageMiddleware). None: not declared, or not used.
        self.model_languages: tuple[str, ...] | None = None
        self._knowledge = "knowledge" in settings.plugins

    async def start(self, backend: GenerationBackend) -> None:
        """Create the detector and translator, load them, check the language pairs.

        Raises:
            ConfigError: the configured detector is not installed.
            TranslationError: the translator cannot be loaded or lacks a pair.
        """
        if self.mode == "off":
            return
        rules = self.settings.detector
        detector = self._detector_override or create_detector(
            rules.kind, seed=rules.seed, max_chars=rules.max_chars, processes=rules.processes
        )
        if isinstance(detector, LangdetectDetector):
            # ~0.3 s once, off the event loop. Texts are detected in this process until
            # the worker pool (if any) is up, and after it failed. The pool starts with
            # `warm_up` (botkit run) or once the bot is busy (botkit.language._detect_pool).
            await asyncio.to_thread(detector.load)
        self.detector = detector
        if self.mode == "native":
            self._check_native(backend)
        if self.mode != "pivot":
            return
        if self._translator_override is not None:
            translator = self._translator_override
        else:
            from botkit.backends.translators import create_translator

            translator = create_translator(self.settings.translator, backend)
        from botkit.backends.local_translator import EngineTranslator

        if isinstance(translator, EngineTranslator) and translator.queue_timeout_seconds is None:
            translator.queue_timeout_seconds = self._queue_timeout
        await _call_optional(translator, "start")
        if self._wrap_translator is not None:
            translator = self._wrap_translator(translator)
        self.translator = translator
        try:
            check_pairs(translator, self.working, self.settings.languages)
        except TranslationError:
            await self.close()
            raise
        if not self.settings.languages:
            _log.info(
                "language: no language.languages configured; translator %r is checked "
                "per message instead of at startup", translator.name,
            )  # fmt: skip

    def _check_native(self, backend: GenerationBackend) -> None:
        """Say at start what native mode does with the chat model's languages, and take
        them for ``mode = "auto"`` (see ``botkit.pipeline.middleware.native``)."""
        declared = model_languages(backend)
        name = getattr(backend, "name", type(backend).__name__)
        auto = self.settings.mode == "auto"
        if self._knowledge:
            _log.warning(
                "language: mode %s: the knowledge plugin searches the customer's own "
                "words, so a question in another language than the working language "
                "(%s) finds none of its pages; a translator (language.translator.kind "
                '= "engine" or "llm") searches in the working language',
                "'auto' without a translator is native" if auto else "'native'",
                self.working,
            )  # fmt: skip
        if declared is None:
            return
        shown = ", ".join(declared)
        if not any(same_language(self.working, m) for m in declared):
            _log.warning(
                "language: the chat model (%s backend) declares only %s, not the working "
                "language %s: expect poor replies", name, shown, self.working,
            )  # fmt: skip
        others = [
            t for t in self.settings.languages if not any(same_language(t, m) for m in declared)
        ]
        if not auto:
            if others or not self.settings.languages:
                _log.warning(
                    "language: mode 'native' asks the chat model (%s backend) to answer in "
                    "the customer's language, but it declares only %s: customers writing "
                    "%s get replies it cannot write well; mode 'auto' answers them in %s",
                    name, shown, ", ".join(others) or "any other language", self.working,
                )  # fmt: skip
            return
        self.model_languages = declared
        if self.settings.languages and not others:
            return
        _log.warning(
            "language: no translator, and the chat model (%s backend) declares only %s: "
            "for customers writing %s it is told to answer in %s (the working language) "
            "rather than in broken text; a very small model (SmolLM2-135M) may still "
            "answer in theirs, poorly. For good replies in their language, configure a "
            'translation model (language.translator.kind = "engine"), or translator '
            '"llm" with a multilingual chat model, or a chat model that writes them',
            name, shown, ", ".join(others) or "any other language", self.working,
        )  # fmt: skip

    async def for_customer(self, text: str, language: str | None) -> AgentText:
        """A human agent's ``text`` (in the working language) as the customer of a
        conversation in ``language`` gets it: translated in ``pivot`` mode when the
        languages differ and the translator has the pair, else as written
        (``AgentReplies``'s ``customer_text``).

        Raises:
            TranslationError: the translator failed or lacks the pair.
            BackendBusyError: an LLM translator's backend is overloaded.
        """
        if self.mode != "pivot" or self.translator is None:
            return AgentText(text)
        # A malformed stored tag counts as no language, as in the pipeline.
        target = try_normalize(language) or self.working
        if same_language(target, self.working):
            return AgentText(text, language=target)
        if not self.translator.supports(self.working, target):
            # As the bot's own replies do: the customer gets the working language.
            _log.info(
                "language: translator %r lacks %s → %s; an agent's message goes as written",
                self.translator.name, self.working, target,
            )  # fmt: skip
            return AgentText(text, language=self.working)
        translator = TextTranslator(self.translator, self.glossary)
        return AgentText(await translator.translate_text(text, self.working, target), text, target)

    def install_outer(self, pipeline: Pipeline) -> None:
        """Add what wraps the whole pipeline: in ``pivot`` mode, the translation of the
        notices given before the language is known (call it before the core middleware)."""
        if self.mode == "pivot" and self.translator is not None:
            notices = TextTranslator(self.translator, self.glossary)
            pipeline.add_middleware(NoticeTranslationMiddleware(notices, self.working))

    def install(self, pipeline: Pipeline) -> None:
        """Add the language middleware (in order) and the switch handler to ``pipeline``.

        Call it after ``start``, where the bot's other core middleware would go, before
        the conversation history is loaded (translated texts are what history holds).
        """
        if self.mode == "off" or self.detector is None:
            return
        pipeline.add_middleware(
            LanguageDetectionMiddleware(self.settings, self.working, self.detector, self.glossary)
        )
        if self.mode == "pivot" and self.translator is not None:
            text_translator = TextTranslator(self.translator, self.glossary)
            self.substitutes = SubstituteTexts(
                text_translator, self.working, self._substitute_texts, built_in=self._built_in
            )
            pipeline.add_middleware(
                TranslationMiddleware(
                    text_translator,
                    self.working,
                    switch_command=self.settings.switch_command,
                    substitutes=self.substitutes,
                )
            )
        elif self.mode == "native":
            pipeline.add_middleware(
                NativeLanguageMiddleware(
                    self.settings.native_instruction,
                    self.working,
                    model_languages=self.model_languages,
                )
            )
        if self.settings.switch_command:
            pipeline.add_handler(
                LanguageSwitchHandler(self.settings, self.working, self.translator),
                group=SWITCH_GROUP,
            )

    def _built_in(self, text: str, language: str) -> bool:
        """Whether a customer writing ``language`` gets the busy or fallback reply whose
        working-language text is ``text`` written for them: a built-in default kept,
        which the table has in their language (the delivery's choice, ``_substitute``),
        so its translation would never be read."""
        same = [t for t in self._substitutes_in if t(self.working)[1] == text]
        return bool(same) and all(same_language(t(language)[0], language) for t in same)

    async def warm_up(self) -> None:
        """Start what a busy bot would otherwise start on its first traffic: the language
        detection worker process (a spawn of ~0.4 s of CPU, which under load showed up as
        the web benchmark's p99). If it cannot start, detection stays in a thread."""
        detector = self.detector
        if isinstance(detector, LangdetectDetector) and detector.pool is not None:
            await detector.pool.start()

    async def close(self) -> None:
        """Close the translator and stop the detector's worker processes (errors are
        logged, not raised)."""
        substitutes, self.substitutes = self.substitutes, None
        if substitutes is not None:
            await substitutes.close()  # before the translator they use
        detector = self.detector
        if isinstance(detector, LangdetectDetector):
            try:
                await detector.close()
            except Exception as exc:
                _log.warning("language detector failed to close: %s", exc)
        translator, self.translator = self.translator, None
        if translator is not None:
            try:
                await _call_optional(translator, "close")
            except Exception as exc:
                _log.warning("translator %r failed to close: %s", translator.name, exc)


def model_languages(backend: object) -> tuple[str, ...] | None:
    """The known languages the backend's chat model declares (``model_languages``: the
    local engine reads its card or GGUF), normalized; None when it declares none, or
    only what names no language ("multilingual": every language, as far as we know)."""
    raw = getattr(backend, "model_languages", None)
    if not isinstance(raw, (tuple, list)) or not raw:
        return None
    tags = [try_normalize(v) if isinstance(v, str) else None for v in raw]
    if any(t is None or not is_known_language(t) for t in tags):
        return None  # "multilingual", "code"...: no list to hold customers to
    return tuple(dict.fromkeys(t for t in tags if t is not None))


def _handoff_commands(plugins: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The hand-off plugin's commands, when it is configured: its replies quote the return
    command, and agents quote any of them ("write /human to reach us again")."""
    table = plugins.get("handoff")
    if table is None:
        return ()
    from botkit.handoff.config import HandoffConfig  # only for its defaults

    fields = HandoffConfig.model_fields
    back = table.get("return_command", fields["return_command"].default)
    commands = table.get("commands", fields["commands"].default)
    values = [back, *commands] if isinstance(commands, (list, tuple)) else [back]
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


async def _call_optional(obj: object, method: str) -> None:
    fn = getattr(obj, method, None)
    if fn is None:
        return
    result = fn()
    if inspect.isawaitable(result):
        await result
