"""``pivot`` mode: translate the customer's message into the working language on the way
in, and the reply back into the customer's language on the way out.

Everything inside this middleware (conversation history, plugins, handlers, the model)
works in the working language. On the way in, ``ctx.working_text`` gets the translation
and the store keeps it beside the original. On the way out a streamed reply is wrapped
so that it is translated sentence by sentence as it is generated; the reply's
``working_text`` keeps what the model wrote, and the store keeps both.

Nothing is translated when the two languages are the same (``same_language``), nor the
language switch command. A language the translator cannot handle (only possible for one
missing from ``language.languages``, which are checked at startup) is logged and passed
through: the model sees the original text and answers in the working language.
Translation failures raise ``TranslationError``, answered with the fallback reply;
except on the way in to a conversation a person has or waits for, where the bot does
not answer: the message goes on untranslated, for the agent to read as written.

The busy and fallback replies that may replace a reply while it streams are translated
ahead of time, in the background, once per customer language
(``botkit.language.substitutes``); the cache is left in ``ctx.state`` for the delivery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from botkit.backends.protocol import Translator
from botkit.errors import TranslationError
from botkit.language.commands import parse_switch
from botkit.language.substitutes import STATE_KEY as SUBSTITUTES_KEY
from botkit.language.substitutes import SubstituteTexts
from botkit.language.tags import same_language
from botkit.language.translate import TextTranslator
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context, Reply
from botkit.store.records import ConversationStatus

__all__ = ["NoticeTranslationMiddleware", "TranslationMiddleware", "translates_replies"]

_PIVOT_KEY = "language.pivot"


def translates_replies(ctx: Context) -> bool:
    """Whether a reply labelled with the customer's language but written in the working
    language is translated on its way out (``pivot`` mode), so a handler without a text
    in the customer's language may answer with its working-language one."""
    return ctx.state.get(_PIVOT_KEY) is True


class TranslationMiddleware:
    """Translates in before ``next()`` and wraps the reply after it.

    Args:
        translator: sentence-level translation with protected spans.
        working_language: the language everything inside works in.
        switch_command: the language switch command (never translated).
        substitutes: the busy and fallback replies, translated ahead of time.
    """

    def __init__(
        self,
        translator: TextTranslator,
        working_language: str,
        *,
        switch_command: str = "",
        substitutes: SubstituteTexts | None = None,
    ) -> None:
        self.text_translator = translator
        self.working = working_language
        self.switch_command = switch_command
        self.substitutes = substitutes

    @property
    def translator(self) -> Translator:
        return self.text_translator.translator

    async def __call__(self, ctx: Context, next: Next) -> None:
        source = ctx.language or self.working
        ctx.state[_PIVOT_KEY] = True
        if self.substitutes is not None and self.translator.supports(self.working, source):
            self.substitutes.warm(source)  # a dict lookup once the language is known
        try:
            if (
                not same_language(source, self.working)
                and parse_switch(ctx.text, self.switch_command) is None
            ):
                await self._translate_in_or_keep(ctx, source)
            await next()
            await self._translate_out(ctx)
        except Exception:
            # The fallback reply that answers this error is in the working language:
            # label it so (the pipeline builds it from ctx.language).
            ctx.language = self.working
            raise

    async def _translate_out(self, ctx: Context) -> None:
        reply = ctx.reply
        if reply is None or reply.working_text is not None:
            return  # nothing to send, or already translated by someone else
        target = reply.language
        if target is None or same_language(target, self.working):
            return
        if not self.translator.supports(self.working, target):
            ctx.logger.warning(
                "%s: translator %r cannot translate %s → %s; replying in %s",
                ctx.describe(), self.translator.name, self.working, target, self.working,
            )  # fmt: skip
            reply.language = self.working
            return
        if self.substitutes is not None:
            self.substitutes.warm(target)
            ctx.state[SUBSTITUTES_KEY] = self.substitutes
        if reply.stream is not None:
            reply.stream = self._translate_stream(reply, reply.stream, target)
        elif reply.text is not None:
            translated = await self.text_translator.translate_text(reply.text, self.working, target)
            reply.working_text, reply.text = reply.text, translated

    async def _translate_in_or_keep(self, ctx: Context, source: str) -> None:
        """Translate the message in; when that fails in a conversation a person has or
        waits for, keep the message as written instead: the bot does not answer there,
        so the fallback reply would be a bot message in their conversation, and the
        agent can still read the original."""
        try:
            await self._translate_in(ctx, source)
        except TranslationError as exc:
            status = ctx.conversation.status
            if status not in (ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN):
                raise
            ctx.logger.warning(
                "%s: message not translated for the agent (%s); kept as written: %s",
                ctx.describe(), status, exc,
            )  # fmt: skip

    async def _translate_in(self, ctx: Context, source: str) -> None:
        if not self.translator.supports(source, self.working):
            ctx.logger.warning(
                "%s: translator %r cannot translate %s → %s; the message is used as written",
                ctx.describe(), self.translator.name, source, self.working,
            )  # fmt: skip
            return
        working_text = await self.text_translator.translate_text(ctx.text, source, self.working)
        ctx.working_text = working_text
        ctx.inbound_working_text = working_text  # stored when the bot is done with it

    def _translate_stream(
        self, reply: Reply, stream: AsyncIterator[str], target: str
    ) -> AsyncIterator[str]:
        written: list[str] = []

        def keep(source_text: str) -> None:
            written.append(source_text)
            reply.working_text = "".join(written)

        return self.text_translator.translate_stream(stream, self.working, target, on_source=keep)


class NoticeTranslationMiddleware:
    """Translates the replies given before the language is looked at (the too-long,
    empty-message and slow-down notices) into the conversation's language.

    Installed outermost in ``pivot`` mode. Such a reply is configured text in the working
    language and has no language of its own (``ctx.language`` is unset: detection never
    ran), so it goes out in the conversation's language when that is known, else in the
    contact's (a channel's hint, or what an earlier conversation settled). A
    translation failure leaves the notice in the working language: a notice the
    customer may not read well beats the fallback reply.
    """

    def __init__(self, translator: TextTranslator, working_language: str) -> None:
        self.text_translator = translator
        self.working = working_language

    async def __call__(self, ctx: Context, next: Next) -> None:
        await next()
        reply, target = ctx.reply, ctx.conversation.language
        if target is None and ctx.contact is not None:
            # Nothing detected in this conversation yet: the language the channel or an
            # earlier conversation gave for the person (a seed) beats the working one.
            target = ctx.contact.language
        if reply is None or reply.text is None or ctx.language is not None:
            return  # no notice, or the language middleware handled this message
        if reply.language is not None or reply.working_text is not None or target is None:
            return
        if same_language(target, self.working):
            return
        if not self.text_translator.translator.supports(self.working, target):
            return
        try:
            text = await self.text_translator.translate_text(reply.text, self.working, target)
        except TranslationError as exc:
            ctx.logger.warning(
                "%s: %s reply not translated into %s: %s",
                ctx.describe(), reply.source, target, exc,
            )  # fmt: skip
            return
        reply.working_text, reply.text, reply.language = reply.text, text, target
