"""``native`` mode: ask the chat model to answer in the customer's language.

For multilingual chat models. The customer's message goes to the model as written; an
instruction naming the customer's language is added to the system prompt when it
differs from the working language (the language the system prompt is written in).

When the chat model declares the languages it writes (``model_languages``: its card or
GGUF) and the customer's is not among them, the instruction asks for the working
language instead: a clear answer in the working language serves a company better than
a broken one in the customer's (SmolLM2-135M, English only, asked for German wrote "Der
Welt ist nach dem. Ich habe wieder zu den äußere Einflussen..."), and a model that
follows instructions gives it. SmolLM2-135M itself does not: asked for English in the
system prompt, or at the end of the customer's message, it still answered 8 of 9
es/de/fr questions in their language, as badly; only a translator (pivot mode) or a
multilingual chat model gives those customers good replies, which the start log says.
"""

from __future__ import annotations

from botkit.language.codes import english_name
from botkit.language.tags import same_language
from botkit.pipeline.chain import Next
from botkit.pipeline.context import Context

__all__ = ["WORKING_INSTRUCTION", "NativeLanguageMiddleware"]

# For a customer language the chat model does not write (see the module docstring).
WORKING_INSTRUCTION = (
    "The customer writes in {language}, which you cannot write well. Always answer in "
    "{working}, simply and clearly."
)


class NativeLanguageMiddleware:
    """Adds ``instruction`` (``{language}`` filled in) to ``ctx.instructions``.

    Args:
        instruction: the template, e.g. "Always answer in {language}."
        working_language: the working language (no instruction needed for it).
        model_languages: the languages the chat model writes (None: not known, every
            language is asked for); for any other, ``working_instruction`` is added.
        working_instruction: the template used then; ``{language}`` is the customer's
            language, ``{working}`` the working language.
    """

    def __init__(
        self,
        instruction: str,
        working_language: str,
        *,
        model_languages: tuple[str, ...] | None = None,
        working_instruction: str = WORKING_INSTRUCTION,
    ) -> None:
        self.instruction = instruction
        self.working = working_language
        self.model_languages = model_languages
        self.working_instruction = working_instruction

    def writes(self, language: str) -> bool:
        """Whether the chat model writes ``language`` (True when it declares nothing)."""
        declared = self.model_languages
        return declared is None or any(same_language(language, m) for m in declared)

    def instruction_for(self, language: str) -> str:
        """The instruction for ``language`` (its English name and tag filled in)."""
        # str.replace, not str.format: the template is user config and may hold braces.
        if not self.writes(language):
            return self.working_instruction.replace("{language}", _label(language)).replace(
                "{working}", _label(self.working)
            )
        return self.instruction.replace("{language}", _label(language))

    async def __call__(self, ctx: Context, next: Next) -> None:
        language = ctx.language
        if language is not None and self.instruction and not same_language(language, self.working):
            ctx.instructions.append(self.instruction_for(language))
        await next()


def _label(language: str) -> str:
    name = english_name(language)
    return name if name == language else f"{name} ({language})"
