"""``native`` mode: ask the chat model to answer in the customer's language.

For multilingual chat models. The customer's message goes to the model as written; an
instruction naming the customer's language is added to the system prompt when it
differs from the working language (the language the system prompt is written in).
"""

from __future__ import annotations

from botkit.language.codes import english_name
from botkit.language.tags import same_language
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context

__all__ = ["NativeLanguageMiddleware"]


class NativeLanguageMiddleware:
    """Adds ``instruction`` (``{language}`` filled in) to ``ctx.instructions``.

    Args:
        instruction: the template, e.g. "Always answer in {language}."
        working_language: the working language (no instruction needed for it).
    """

    def __init__(self, instruction: str, working_language: str) -> None:
        self.instruction = instruction
        self.working = working_language

    def instruction_for(self, language: str) -> str:
        """The instruction for ``language`` (its English name and tag filled in)."""
        name = english_name(language)
        label = name if name == language else f"{name} ({language})"
        # str.replace, not str.format: the template is user config and may hold braces.
        return self.instruction.replace("{language}", label)

    async def __call__(self, ctx: Context, next: Next) -> None:
        language = ctx.language
        if language is not None and self.instruction and not same_language(language, self.working):
            ctx.instructions.append(self.instruction_for(language))
        await next()
