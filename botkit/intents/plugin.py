"""The intents plugin: short messages that express a known request get a known answer.

A handler recognizes the intent of a message in a conversation the bot answers (see
``botkit.intents.matching``: keywords, then similarity to examples; both the
customer's text and, in ``pivot`` mode, its working-language translation) and acts:

* ``reply``: a fixed answer in the customer's language (``set_localized_reply``: the
  table's text for that language; else, in ``pivot`` mode, the working-language text
  translated; else the working-language text), with optional buttons;
* ``handoff``: hands the conversation to a human (reason ``intent NAME``) and confirms;
* ``close``: closes the conversation, with an optional goodbye;
* ``instruct``: adds the intent's instruction to this message's system instructions and
  lets the generation model answer.

The matched intent is kept in ``ctx.state["intents"]`` and in the reply's
``metadata["intent"]`` (for ``instruct`` too: a middleware labels the model's reply).

A large matcher (``THREAD_FROM_POSTINGS``) matches in a worker thread, before the
handlers run (``MatchInThreadMiddleware``), so the event loop keeps serving other
conversations meanwhile; the matcher is built in a worker thread at startup too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from botkit.config.settings import Settings
from botkit.errors import ConfigProblem, PluginError
from botkit.events import Button
from botkit.handoff.desk import request_handoff, warn_without_desk
from botkit.intents.config import IntentConfig, IntentsConfig
from botkit.intents.matching import IntentMatch, IntentMatcher, IntentPattern
from botkit.language.localized import FALLBACK, pick, set_localized_reply, working_key
from botkit.pipeline import Context, Handler, Next, StopPropagation
from botkit.plugins import Plugin, PluginRegistry
from botkit.store.records import ConversationStatus

__all__ = [
    "INTENTS_GROUP",
    "STATE_KEY",
    "THREAD_FROM_POSTINGS",
    "IntentsHandler",
    "IntentsPlugin",
    "LabelReplyMiddleware",
    "MatchInThreadMiddleware",
]

# After the hand-off commands (-200) and the language switch (-100), so "/human" and
# "/lang es" are never taken for an intent; before plugins' handlers in the default
# group 0, so a configured answer is not second-guessed by later handlers.
INTENTS_GROUP = -50

STATE_KEY = "intents"
_MATCH_KEY = "intents.match"  # check() leaves its match for handle()
# A matcher whose index holds this many postings ((example, feature) pairs) matches in
# a worker thread, so the event loop serves other conversations meanwhile. Below, a
# thread hop (50-100 us) costs more than it saves. Measured (the slowest message of
# each): the shop of benchmarks/intents.py, 100 intents x 20 examples (30,000 postings)
# 1.4 ms, 1,000 x 20 (300,000) 7.3 ms; 45 examples each of a 30-word vocabulary, 25
# intents (53,000) 1.9 ms, 400 (870,000) 49 ms, p50 26 ms.
THREAD_FROM_POSTINGS = 50_000


def _working_language_problems(
    config: IntentsConfig, working: str, *, name: str = "intents"
) -> list[ConfigProblem]:
    """A problem for each text table of an intent that lacks the working language
    (what every other language falls back to), with its key path."""
    problems: list[ConfigProblem] = []
    for position, intent in enumerate(config.intent):
        tables: list[tuple[str, Mapping[str, str]]] = [("reply", intent.reply)]
        tables += [(f"buttons[{n}].label", b.label) for n, b in enumerate(intent.buttons)]
        problems += [
            ConfigProblem(
                f"plugins.{name}.intent[{position}].{field}",
                f"intent {intent.name!r} has no text in the working language {working!r} "
                "(bot.working_language), which customers in other languages fall back to",
            )
            for field, table in tables
            if table and working_key(table, working) is None
        ]
    return problems


class IntentsHandler(Handler):
    """Recognizes an intent and acts on it (see the module docstring).

    Args:
        config: the plugin's section.
        working_language: ``bot.working_language``.

    Raises:
        PluginError: a text table lacks the working language.
    """

    def __init__(self, config: IntentsConfig, working_language: str) -> None:
        missing = _working_language_problems(config, working_language)
        if missing:
            raise PluginError("; ".join(map(str, missing)))
        self.intents = config.intent
        self.working = working_language
        self.matcher = IntentMatcher(
            [IntentPattern(i.name, i.examples, i.keywords, i.min_similarity) for i in self.intents],
            min_similarity=config.min_similarity,
            max_chars=config.max_chars,
        )
        # Whether a match runs in a worker thread (MatchInThreadMiddleware), not in check().
        self.in_thread = self.matcher.postings >= THREAD_FROM_POSTINGS
        # One match in a thread at a time: several pure-Python threads would hold the GIL
        # between them and starve the event loop, the very thing the thread avoids.
        self._threads = asyncio.Semaphore(1)

    def wanted(self, ctx: Context) -> bool:
        """Whether ``ctx``'s message is one to match at all."""
        return not ctx.too_long and ctx.conversation.status == ConversationStatus.BOT

    def match(self, ctx: Context) -> IntentMatch | None:
        """The intent of ``ctx``'s message (customer's text, then the working-language
        one), or None. A match made for the same texts (by the middleware, or check())
        is reused."""
        if not self.wanted(ctx):
            return None
        memo = ctx.state.get(_MATCH_KEY)
        if memo is not None and memo[:2] == (ctx.text, ctx.model_text):
            found: IntentMatch | None = memo[2]
            return found
        return self.matcher.match(ctx.text, ctx.model_text)

    async def match_in_thread(self, ctx: Context) -> None:
        """Match ``ctx``'s message in a worker thread and keep the result for check()."""
        texts = (ctx.text, ctx.model_text)
        if not self.wanted(ctx) or len(ctx.text) > self.matcher.max_chars:
            return  # nothing to match: no thread hop
        async with self._threads:
            found = await asyncio.to_thread(self.matcher.match, *texts)
        ctx.state[_MATCH_KEY] = (*texts, found)

    def check(self, ctx: Context) -> bool:
        found = self.match(ctx)
        # Scratch space, so handle() need not match again; keyed by the texts matched.
        ctx.state[_MATCH_KEY] = (ctx.text, ctx.model_text, found)
        return found is not None

    async def handle(self, ctx: Context) -> None:
        found = self.match(ctx)
        ctx.state.pop(_MATCH_KEY, None)
        if found is None:
            return
        intent = self.intents[found.index]
        ctx.state[STATE_KEY] = {
            "intent": intent.name,
            "action": intent.action,
            "via": found.via,
            "score": round(found.score, 3),
        }
        ctx.logger.info(
            "%s: intent %r (%s, score %.2f): %s",
            ctx.describe(), intent.name, found.via, found.score, intent.action,
        )  # fmt: skip
        if intent.action == "instruct":
            ctx.instructions.append(intent.instruction)
            return  # the generation model answers, guided
        if intent.action == "handoff":
            # Through the hand-off plugin when enabled: its office hours, texts and hint.
            await request_handoff(ctx, f"intent {intent.name}", intent.reply or None)
            self._label(ctx, intent)
        elif intent.action == "close":
            await ctx.close_conversation(f"intent {intent.name}")
            if intent.reply:
                self._reply(ctx, intent, intent.reply)
        else:
            self._reply(ctx, intent, intent.reply)
        raise StopPropagation  # the intent's answer is the answer

    def _reply(self, ctx: Context, intent: IntentConfig, table: Mapping[str, str]) -> None:
        # Only the hand-off plugin's table may lack the working language: then English.
        fallback = working_key(table, self.working) or FALLBACK

        def text_in(language: str | None) -> tuple[str, str]:
            return pick(table, language, fallback=fallback)

        set_localized_reply(ctx, text_in, source="intents")
        self._label(ctx, intent)

    def _label(self, ctx: Context, intent: IntentConfig) -> None:
        """The intent's name and buttons on the reply set for it."""
        reply = ctx.reply
        if reply is None:
            return
        reply.metadata["intent"] = intent.name
        reply.buttons = tuple(
            Button(
                pick(b.label, ctx.language, fallback=working_key(b.label, self.working) or "")[1],
                b.value,
            )
            for b in intent.buttons
        )


class LabelReplyMiddleware:
    """Labels the model's reply to an ``instruct`` intent with ``metadata["intent"]``."""

    async def __call__(self, ctx: Context, next: Next) -> None:
        await next()
        matched = ctx.state.get(STATE_KEY)
        if matched is not None and ctx.reply is not None:
            ctx.reply.metadata.setdefault("intent", matched["intent"])


class MatchInThreadMiddleware:
    """Matches the message in a worker thread before the handlers run, for a large
    matcher (``IntentsHandler.in_thread``): check() then finds the match made.

    A middleware, because ``check`` is synchronous; it runs after the translation (the
    working-language text is matched too) and the conversation's loading. Should a
    later middleware change the texts, check() matches them again itself.
    """

    def __init__(self, handler: IntentsHandler) -> None:
        self.handler = handler

    async def __call__(self, ctx: Context, next: Next) -> None:
        await self.handler.match_in_thread(ctx)
        await next()


class IntentsPlugin(Plugin[IntentsConfig]):
    """The built-in ``intents`` plugin (see the module docstring)."""

    Config = IntentsConfig

    def settings_problems(self, settings: Settings) -> list[ConfigProblem]:
        return _working_language_problems(
            self.config, settings.bot.working_language, name=self.name
        )

    async def setup(self, registry: PluginRegistry) -> None:
        # In a worker thread: a large matcher takes seconds to build (18,000 examples:
        # 2-5 s), and the event loop serves the bot's other work meanwhile.
        handler = await asyncio.to_thread(
            IntentsHandler, self.config, registry.settings.bot.working_language
        )
        if any(i.action == "handoff" for i in self.config.intent):
            warn_without_desk(registry, "intents hand conversations over")
        if not self.config.intent:
            registry.logger.warning("no intents configured ([[plugins.intents.intent]])")
        registry.add_handler(handler, group=INTENTS_GROUP)
        if handler.in_thread:
            registry.add_middleware(MatchInThreadMiddleware(handler))
        registry.add_middleware(LabelReplyMiddleware())
        registry.logger.info(
            "%d intents, %d examples, %d keywords",
            len(self.config.intent),
            sum(len(i.examples) for i in self.config.intent),
            sum(len(i.keywords) for i in self.config.intent),
        )
