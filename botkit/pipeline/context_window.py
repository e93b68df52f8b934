"""Fitting a request into what the backend can take.

A backend with a bounded context (the local engine: its KV cache and the model's max
positions) refuses a prompt longer than it, and says how long one may be
(``botkit.backends.protocol.PromptLimits``). The history is then shortened, oldest turns
first, until system prompt + history + current message fit; the token counts are the
backend's own (chat template included), so what fits here fits there. Backends that
report no bound get the history as it is.

Counting is the backend's chat template and tokenizer: with SmolLM2's, 12-51 ms for a
1.9k-token prompt, ~160 ms for 22k and 310-360 ms for 44k, and a shortening takes
2 + log2(turns) counts (past a second), a slow template up to the render timeout
(2 s) each. A backend whose counting costs that says so with a ``counting_executor``
(the local engine: one thread of its own); ``off_loop`` then runs the whole fitting of
a message there in one call, so the event loop keeps serving the other conversations.
Backends that estimate (OpenAI-compatible: a regex pass, microseconds) count inline.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from botkit.backends.protocol import ChatMessage, PromptLimits
from botkit.config.settings import BotSettings
from botkit.pipeline.context import Context

__all__ = ["fit_history", "fitted", "mark_fitted", "off_loop", "prompt_head", "system_text"]

_FITTED = "context_window.fitted"
_T = TypeVar("_T")


async def off_loop(backend: object, fn: Callable[..., _T], /, *args: Any) -> _T:
    """``fn(*args)`` on the backend's ``counting_executor`` when it has one (its token
    counting is too slow for the event loop), else right here.

    The call sees this task's context variables (the message a log line is about), as
    with ``asyncio.to_thread``.
    """
    executor: Executor | None = getattr(backend, "counting_executor", None)
    if executor is None:
        return fn(*args)
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def system_text(ctx: Context, settings: BotSettings) -> str:
    """The system prompt with this message's extra instructions."""
    return "\n\n".join(p for p in (settings.system_prompt, *ctx.instructions) if p)


def prompt_head(system: str) -> list[ChatMessage]:
    """The messages a request starts with: the system prompt, when there is one."""
    return [ChatMessage("system", system)] if system else []


def fit_history(
    backend: object, system: str, history: Sequence[ChatMessage], current: ChatMessage
) -> list[ChatMessage] | None:
    """The newest turns of ``history`` that fit in the backend's prompt with ``system``
    and ``current`` (all of them when the backend reports no bound).

    Returns:
        The kept turns, oldest first; ``None`` when even ``system`` and ``current``
        alone are over the bound.

    Raises:
        BackendError: the backend cannot count the prompt (e.g. its template refuses it).
    """
    if not isinstance(backend, PromptLimits):
        return list(history)
    limit = backend.max_prompt_tokens()
    if limit is None:
        return list(history)
    head = prompt_head(system)

    def fits(start: int) -> bool:
        return backend.count_prompt_tokens([*head, *history[start:], current]) <= limit

    if fits(0):
        return list(history)
    if not fits(len(history)):
        return None
    # Dropping older turns only shortens the prompt, so the fewest to drop is found by
    # bisection: fits(hi) holds, fits(lo) does not (a few tokenizations, not one a turn).
    lo, hi = 0, len(history)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return list(history[hi:])


def mark_fitted(ctx: Context, system: str, history: Sequence[ChatMessage]) -> None:
    """Remember that ``history`` fits with ``system`` and this message: counting a
    prompt renders the chat template and tokenizes it (about 1 ms for 1,000 tokens),
    and the generation step need not do it again when nothing was added since."""
    ctx.state[_FITTED] = (system, ctx.model_text, len(history))


def fitted(ctx: Context, system: str) -> bool:
    """Whether ``ctx.history`` was fitted with ``system`` (see ``mark_fitted``)."""
    return bool(ctx.state.get(_FITTED) == (system, ctx.model_text, len(ctx.history)))
