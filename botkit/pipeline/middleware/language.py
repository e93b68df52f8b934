"""Detect the customer's language and keep the conversation's language up to date.

Runs for every message the bot processes, also in conversations a human is handling
(agents and analytics see the language too). The rule deciding when a message changes
the conversation's language is ``botkit.language.policy``; this step feeds it the
detector's guesses, the conversation's current language and, for a conversation without
one, the seed (the contact's preferred language or the channel's hint), then stores the
outcome: the message's language and, when it changed, the conversation's. A fallback
(the seed, or the working language: nothing detected in a conversation without a
language yet) is stored as neither, and leaving a language the conversation has takes a
confirmed detection (``botkit.language.confirm``).

Afterwards ``ctx.language`` is the language to answer in and
``ctx.state["language"]`` the ``LanguageDecision``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from botkit.language.codes import is_known_language
from botkit.language.commands import parse_switch
from botkit.language.confirm import SwitchConfirmation
from botkit.language.detect import (
    AsyncDetector,
    LanguageDetector,
    LanguageGuess,
    NullDetector,
)
from botkit.language.policy import (
    LanguageDecision,
    count_letters,
    decide_language,
    letters_needed,
)
from botkit.language.protect import Glossary, detection_text
from botkit.language.settings import LanguageSettings
from botkit.language.tags import conversation_tag, same_language
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context

__all__ = ["LanguageDetectionMiddleware"]

STATE_KEY = "language"


class LanguageDetectionMiddleware:
    """Sets ``ctx.language`` and stores the message's and the conversation's language.

    Args:
        settings: the ``[language]`` section.
        working_language: ``bot.working_language`` (normalized).
        detector: the language detector.
        glossary: product names, left out of what the detector sees.
    """

    def __init__(
        self,
        settings: LanguageSettings,
        working_language: str,
        detector: LanguageDetector,
        glossary: Glossary | None = None,
    ) -> None:
        self.settings = settings
        self.working = working_language
        self.detector = detector
        self.glossary = glossary or Glossary()
        # A Protocol isinstance check walks its members on every call: once, not per message.
        # (langdetect's detect_async answers a remembered text at once, without a hop.)
        self._async = detector.detect_async if isinstance(detector, AsyncDetector) else None
        self.confirmation = SwitchConfirmation()

    async def _guess(self, ctx: Context, text: str) -> list[LanguageGuess]:
        try:
            if self._async is not None:
                return await self._async(text)  # a worker process or a thread
            return await asyncio.to_thread(self.detector.detect, text)
        except Exception as exc:  # a detector bug must not cost the customer the reply
            ctx.logger.warning(
                "%s: language detector %r failed: %s: %s",
                ctx.describe(), self.detector.name, type(exc).__name__, exc,
            )  # fmt: skip
            return []

    async def _seed(self, ctx: Context) -> str | None:
        # A conversation with no language yet asks on every message: the contact as
        # stored at intake spares a read each time (a third of the core benchmark's
        # throughput with detection off).
        contact = ctx.contact or await ctx.store.get_contact(ctx.conversation.contact_id)
        preferred = None if contact is None else self._reduce(contact.language)
        hint = self._reduce(ctx.message.contact.language_hint)
        return next((tag for tag in (preferred, hint) if self._servable(tag)), None)

    def _reduce(self, tag: str | None) -> str | None:
        """The tag as a conversation's language (``conversation_tag``): no variant a
        customer made up, and the configured entry of its language when ``languages``
        is set. Seeds, the stored language and decisions all pass through it: what a
        customer sends must not become a new key of the caches keyed by language."""
        allowed = self.settings.languages
        return conversation_tag(tag, (*allowed, self.working) if allowed else ())

    def _servable(self, tag: str | None) -> bool:
        """Whether a seed may be used: a real language ("zxx", "und": none; a client's
        "xx": a typo), and one of ``languages`` when that is set (a Telegram app set to
        Russian must not make a bot serving es and fr answer in Russian). The
        remembered preference is checked too: ``languages`` may have changed since."""
        if not is_known_language(tag):
            return False
        allowed = self.settings.languages
        return not allowed or any(same_language(tag, a) for a in (*allowed, self.working))

    async def decide(self, ctx: Context) -> LanguageDecision:
        """The decision for ``ctx``'s message (reads the store, writes nothing to it;
        notes or clears the conversation's pending switch in memory)."""
        current = self._reduce(ctx.conversation.language)
        seed = None if current is not None else await self._seed(ctx)
        rules = self.settings.detector
        if parse_switch(ctx.text, self.settings.switch_command) is not None:
            text = ""  # a command says nothing about the language the customer writes in
            # The customer chose: an earlier unconfirmed detection is void.
            self.confirmation.forget(ctx.conversation.id)
        else:
            text = detection_text(ctx.text[: rules.max_chars * 2], self.glossary)
        letters = count_letters(text)
        # Below the threshold a guess would be ignored anyway: don't pay for it.
        # Detection is CPU-bound Python (langdetect: a few ms); in a worker process (or a
        # thread) it does not stall every other conversation's I/O on the event loop.
        if letters < letters_needed(rules, current) or isinstance(self.detector, NullDetector):
            guesses: list[LanguageGuess] = []
        else:
            guesses = await self._guess(ctx, text)
        decision = decide_language(
            guesses=guesses,
            letters=letters,
            current=current,
            seed=seed,
            working=self.working,
            settings=rules,
            allowed=self.settings.languages,
        )
        decision = self.confirmation.confirm(ctx.conversation.id, current, decision)
        # A detector's tag (a plugin's may carry anything) is reduced like the seed.
        language = self._reduce(decision.language) or decision.language
        detected = self._reduce(decision.detected)
        if (language, detected) != (decision.language, decision.detected):
            decision = dataclasses.replace(decision, language=language, detected=detected)
        return decision

    async def __call__(self, ctx: Context, next: Next) -> None:
        decision = await self.decide(ctx)
        ctx.language = decision.language
        ctx.state[STATE_KEY] = decision
        if decision.reason == "unconfirmed":
            ctx.logger.info(
                "%s: detected %s, keeping %s until a second message confirms it",
                ctx.describe(), decision.detected, decision.language,
            )  # fmt: skip
        # A fallback is no evidence: storing it would make the next message pay
        # min_letters_to_switch to be detected at all (policy module docstring).
        if not decision.fallback and decision.language != ctx.conversation.language:
            ctx.conversation = await ctx.store.set_conversation_language(
                ctx.conversation.id, decision.language
            )
            # DEBUG: every new conversation writes one (201 of 379 INFO lines in a burst
            # of 2,000 messages); the language itself is stored with the conversation.
            ctx.logger.debug(
                "%s: conversation language %s (%s)",
                ctx.describe(), decision.language, decision.reason,
            )  # fmt: skip
        # Stored when the bot is done with it; None when only a fallback chose the
        # language (nothing says the customer wrote in it).
        ctx.inbound_language = decision.message_language
        await next()
