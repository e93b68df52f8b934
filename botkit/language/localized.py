"""Fixed texts (confirmations, canned answers) in the customer's language.

Plugins keep such texts as tables keyed by language tag. ``pick`` chooses the entry for
a language; ``set_localized_reply`` answers with it, and when the table lacks the
customer's language it lets pivot mode translate the working-language text instead of
answering in English.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from botkit.language.tags import primary_subtag, same_language, script_subtag, try_normalize
from botkit.pipeline.context import Context, Reply
from botkit.pipeline.middleware.translation import translates_replies

__all__ = ["FALLBACK", "TextIn", "fallback_key", "pick", "set_localized_reply", "working_key"]

FALLBACK = "en"
T = TypeVar("T")

# A text's version for a language: (the language it is really in, the text).
TextIn = Callable[[str | None], tuple[str, str]]


def pick(
    table: Mapping[str, T], language: str | None, *, fallback: str = FALLBACK
) -> tuple[str, T]:
    """The entry of ``table`` for ``language``: the exact tag, else its language and
    script ("sr-Latn-RS" -> "sr-Latn"), else its primary language ("pt-BR" -> "pt"),
    else ``fallback``'s.

    Chinese goes by script (``normalize_tag``): "zh", "zh-CN", "zh-SG" and "zh-Hans-*"
    find "zh-Hans"; "zh-TW", "zh-HK", "zh-MO" and "zh-Hant-*" find "zh-Hant", never
    the Simplified entry.

    Returns:
        ``(language of the text, text)``.
    """
    tag = try_normalize(language)
    if tag is not None:
        script = script_subtag(tag)
        primary = primary_subtag(tag)
        for key in (tag, f"{primary}-{script}" if script else primary, primary):
            if key in table:
                return key, table[key]
    return fallback, table[fallback]


def working_key(table: Mapping[str, T], working: str) -> str | None:
    """The key of ``table`` that holds the working language's entry ("en" for a
    working language of "en-GB"), or None."""
    tag = try_normalize(working)
    return next((k for k in (tag, tag and primary_subtag(tag)) if k and k in table), None)


def fallback_key(table: Mapping[str, T], working: str) -> str:
    """The key of ``table`` for a language it lacks: the working language's entry (what
    the deployment speaks, as its agents and system prompt do), else English, else the
    first (a deployment's own table, an intent's reply say, need not have either)."""
    found = working_key(table, working)
    if found is not None:
        return found
    return FALLBACK if FALLBACK in table else next(iter(table))


def set_localized_reply(ctx: Context, text_in: TextIn, *, source: str) -> Reply:
    """Answer with ``text_in(ctx.language)``.

    When that text is not in the customer's language but pivot mode translates replies,
    the working-language text is sent, labelled with the customer's language and
    without ``working_text``, so the translator turns it into the customer's language
    (unless the table lacks the working language too: translating English as if it were
    the working language would garble it, so then it stays English, labelled so). A text
    already in the customer's language carries its working-language version as
    ``working_text``: that stops pivot mode translating it again, and the store keeps
    both.
    """
    customer, working = ctx.language, ctx.settings.bot.working_language
    used, text = text_in(customer)
    if customer is not None and not same_language(used, customer) and translates_replies(ctx):
        in_working, working_text = text_in(working)
        if same_language(in_working, working):
            return ctx.set_reply(working_text, source=source)  # labelled ctx.language
    reply = ctx.set_reply(text, source=source)
    reply.language = used
    if not same_language(used, working):
        reply.working_text = text_in(working)[1]
    return reply
