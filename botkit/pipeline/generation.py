"""The fallback handler: ask the generation backend when no handler answered."""

from __future__ import annotations

from botkit.backends.protocol import ChatMessage, GenerationRequest, PromptLimits
from botkit.config.settings import BotSettings
from botkit.errors import BackendError
from botkit.language.default_texts import TOO_LONG_REPLIES, set_default_reply
from botkit.pipeline.context import Context
from botkit.pipeline.context_window import (
    fit_history,
    fitted,
    off_loop,
    prompt_head,
    system_text,
)
from botkit.pipeline.frame_guard import FrameGuard, frame_words
from botkit.pipeline.handlers import Handler

__all__ = ["MAX_STOP", "GenerationHandler", "build_request", "merge_turns"]

# Stop strings one request carries: OpenAI's chat completions take at most 4.
MAX_STOP = 4


def merge_turns(messages: list[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with consecutive turns of one role joined into one (blank line
    between): some chat templates refuse two user or two assistant turns in a row (they
    insist on alternation), others render them so that a small model loses track."""
    merged: list[ChatMessage] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1] = ChatMessage(message.role, f"{merged[-1].content}\n\n{message.content}")
        else:
            merged.append(message)
    return merged


def build_request(ctx: Context, settings: BotSettings) -> GenerationRequest:
    """System prompt (with this message's extra instructions), bounded history, then the
    current message (in the working language), consecutive turns of one role merged
    (``merge_turns``), with the stop strings handlers asked for (``Context.stop``).

    Sampling values are left to the backend's configured defaults.
    """
    messages = prompt_head(system_text(ctx, settings))
    messages.extend(ctx.history)
    messages.append(ChatMessage("user", ctx.model_text))
    stop = tuple(dict.fromkeys(s for s in ctx.stop if s))[:MAX_STOP]
    return GenerationRequest(messages=tuple(merge_turns(messages)), stop=stop)


def too_long_limits(
    backend: PromptLimits, system: str, model_text: str, text: str
) -> dict[str, str]:
    """The ``{length}`` and ``{limit}`` of ``bot.too_long_reply`` for a message the
    backend's context cannot take even without history: ``text``'s characters, and
    those that would fit (in proportion to ``model_text``'s tokens).

    Raises:
        BackendError: the system prompt and instructions alone fill the context (not
            the customer's doing: the fallback reply, and the error in the log).
    """
    limit = backend.max_prompt_tokens() or 0
    head = prompt_head(system)
    base = backend.count_prompt_tokens([*head, ChatMessage("user", "")])
    whole = backend.count_prompt_tokens([*head, ChatMessage("user", model_text)])
    room = limit - base
    if room <= 0:
        raise BackendError(
            f"the system prompt and this message's instructions take {base} prompt tokens, "
            f"the backend takes at most {limit}: shorten [bot] system_prompt or the "
            "plugins' instructions, or give the backend a longer context"
        )
    chars = len(text) * room // max(1, whole - base)
    return {"length": str(len(text)), "limit": str(chars)}


def _fit_or_limits(
    backend: object, system: str, history: list[ChatMessage], current: ChatMessage, text: str
) -> tuple[list[ChatMessage], dict[str, str] | None]:
    """The history that fits, or the too-long reply's values when the message alone
    does not: every count of one message in one call (``off_loop``)."""
    kept = fit_history(backend, system, history, current)
    if kept is None and isinstance(backend, PromptLimits):
        return [], too_long_limits(backend, system, current.content, text)
    return kept or [], None


class GenerationHandler(Handler):
    """Streams the backend's answer. The stream is consumed when the reply is delivered,
    so a backend failure shows up there and is answered with the fallback reply.

    The history is fitted to the backend's context once more here: handlers before
    this one (knowledge passages, an intent's instruction) may have made the system
    prompt longer since it was loaded. A message that cannot fit even alone gets the
    too-long reply rather than a failed generation.
    """

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    def check(self, ctx: Context) -> bool:
        return ctx.reply is None

    async def handle(self, ctx: Context) -> None:
        backend = ctx.backend
        current = ChatMessage("user", ctx.model_text)
        system = system_text(ctx, self.settings)
        if fitted(ctx, system):  # nothing added since the history was loaded
            history, too_long = ctx.history, None
        else:
            history, too_long = await off_loop(
                backend, _fit_or_limits, backend, system, ctx.history, current, ctx.text
            )
        if too_long is not None:
            reply = self.settings.too_long_reply
            set_default_reply(ctx, reply, TOO_LONG_REPLIES, source="too_long", values=too_long)
            ctx.logger.info("%s: too long for the model's context", ctx.describe())
            return
        ctx.history = history
        request = build_request(ctx, self.settings)
        stream = ctx.backend.generate(request)
        if ctx.frame_text or request.stop:
            # Material framed in the prompt: the reply must not be the frame around it.
            frame = frame_words(ctx.frame_text)
            stream = FrameGuard(stream, frame, request.stop, ctx.logger, ctx.describe())
        ctx.set_stream(stream, source="backend")
