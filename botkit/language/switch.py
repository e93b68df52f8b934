"""The handler for the explicit language switch (``/lang es``; see ``commands``).

It sets the conversation's language and the contact's preferred language (so their
next conversation starts in it), and confirms: the confirmation is written in the
working language and, in ``pivot`` mode, translated on the way out like any reply; in
``native`` mode it goes as written, labelled with the working language. A language the
deployment cannot serve (not in ``language.languages`` when that list is set, or one the
translator cannot handle) is refused with the usage text (translated or labelled alike).

Later messages are still detected: a long, clearly detected message in another language
switches again (the customer's writing wins over an earlier command).
"""

from __future__ import annotations

from botkit.backends.protocol import Translator
from botkit.language.codes import english_name, find_language
from botkit.language.commands import parse_switch
from botkit.language.localized import set_localized_reply
from botkit.language.settings import LanguageSettings
from botkit.language.tags import same_language
from botkit.pipeline.context import Context
from botkit.pipeline.handlers import Handler, StopPropagation

__all__ = ["SWITCH_GROUP", "LanguageSwitchHandler"]

# Before plugins' handlers (group 0 by default): the command is the bot's own.
SWITCH_GROUP = -100
SOURCE = "language-switch"


class LanguageSwitchHandler(Handler):
    """Answers the switch command and stops the pipeline there.

    Args:
        settings: the ``[language]`` section (command, replies, allowed languages).
        working_language: the working language (always allowed).
        translator: in ``pivot`` mode, the translator that must handle the language.
    """

    def __init__(
        self,
        settings: LanguageSettings,
        working_language: str,
        translator: Translator | None = None,
    ) -> None:
        self.settings = settings
        self.working = working_language
        self.translator = translator

    def check(self, ctx: Context) -> bool:
        return parse_switch(ctx.text, self.settings.switch_command) is not None

    def servable(self, language: str) -> bool:
        """Whether replies can be given in ``language`` here."""
        if same_language(language, self.working):
            return True
        allowed = self.settings.languages
        if allowed and not any(same_language(language, a) for a in allowed):
            return False
        t = self.translator
        return t is None or (
            t.supports(language, self.working) and t.supports(self.working, language)
        )

    async def handle(self, ctx: Context) -> None:
        request = parse_switch(ctx.text, self.settings.switch_command)
        language = None if request is None else find_language(request.argument)
        if language is None or not self.servable(language):
            command = self.settings.switch_command
            self._reply(ctx, self.settings.switch_unknown_reply.replace("{command}", command))
            raise StopPropagation
        ctx.conversation = await ctx.store.set_conversation_language(ctx.conversation.id, language)
        if ctx.inbound.contact_id is not None:
            await ctx.store.set_contact_language(ctx.inbound.contact_id, language)
        ctx.language = language
        ctx.logger.info("%s: language switched to %s by the customer", ctx.describe(), language)
        self._reply(ctx, self.settings.switch_reply.replace("{language}", english_name(language)))
        raise StopPropagation

    def _reply(self, ctx: Context, text: str) -> None:
        # The texts are configured in the working language. Pivot mode translates them
        # into the customer's; in native mode they go as written, and are labelled so:
        # a widget reads a reply out in its language's voice, and agents and exports
        # see the language (the audit found English text labelled German).
        set_localized_reply(ctx, lambda _customer: (self.working, text), source=SOURCE)
