"""The handler for the explicit language switch (``/lang es``; see ``commands``).

It sets the conversation's language and the contact's preferred language (so their
next conversation starts in it), and confirms. A language the deployment cannot serve
(not in ``language.languages`` when that list is set, or one the translator cannot
handle) is refused with the usage text.

Both texts left at their defaults come built in, in the customer's language
(``botkit.language.default_texts``). A customized text is in the working language: in
``pivot`` mode it is translated on the way out like any reply; in ``native`` mode it goes
as written, labelled with the working language (a widget reads a reply out in its
language's voice, and agents and exports see the language: the audit found English
text labelled German).

Later messages are still detected: a long, clearly detected message in another language
switches again (the customer's writing wins over an earlier command).
"""

from __future__ import annotations

from botkit.backends.protocol import Translator
from botkit.language.codes import find_language
from botkit.language.commands import parse_switch
from botkit.language.default_texts import (
    SWITCH_REPLIES,
    SWITCH_UNKNOWN_REPLIES,
    default_text_in,
    language_name_in,
)
from botkit.language.localized import TextIn, set_localized_reply
from botkit.language.settings import LanguageSettings
from botkit.language.tags import conversation_tag, same_language
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
            unknown = self.settings.switch_unknown_reply
            command = {"command": self.settings.switch_command}
            text_in = default_text_in(unknown, SWITCH_UNKNOWN_REPLIES, self.working, command)
            set_localized_reply(ctx, text_in, source=SOURCE)
            raise StopPropagation
        # Stored without a made-up variant, as the configured entry of its language
        # (``conversation_tag``): the customer's argument must not key a cache entry.
        allowed = self.settings.languages
        configured = (*allowed, self.working) if allowed else ()
        language = conversation_tag(language, configured) or language
        ctx.conversation = await ctx.store.set_conversation_language(ctx.conversation.id, language)
        if ctx.inbound.contact_id is not None:
            await ctx.store.set_contact_language(ctx.inbound.contact_id, language)
        ctx.language = language
        ctx.logger.info("%s: language switched to %s by the customer", ctx.describe(), language)
        set_localized_reply(ctx, self._switched(language), source=SOURCE)
        raise StopPropagation

    def _switched(self, language: str) -> TextIn:
        # The confirmation names the language in the text's own language when the text
        # is in it ("a partir de ahora te responderé en español"), else in English.
        text_in = default_text_in(self.settings.switch_reply, SWITCH_REPLIES, self.working)

        def named(customer: str | None) -> tuple[str, str]:
            used, text = text_in(customer)
            return used, text.replace("{language}", language_name_in(used, language))

        return named
