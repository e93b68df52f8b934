"""How much of a chat fits in an OpenAI-compatible server's context, without its tokenizer.

The server's tokenizer is not at hand (``/tokenize`` is not part of the API and not
every server has one), so prompts are measured with ``estimate_tokens``, which counts a
CJK character as a token and leans high, plus what chat templates add per message.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from botkit._token_estimate import estimate_tokens
from botkit.backends.protocol import ChatMessage
from botkit.errors import BackendError

__all__ = ["prompt_tokens", "shorter_prompt", "trimmed"]

log = logging.getLogger("botkit.backends.openai")

# Chat templates wrap each message in a few special tokens ("<|im_start|>user\n" ...
# "<|im_end|>\n" is 5 with Qwen, Llama 3's header 4-5); the reply's header adds some.
_PER_MESSAGE = 8
_PRIMER = 8
# The estimate can be low for digits, code and URLs: a tenth more, to stay under.
_MARGIN = 1.1


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """About how many tokens ``messages`` make once templated (erring high)."""
    text = sum(estimate_tokens(m.content) for m in messages)
    return math.ceil(text * _MARGIN) + _PER_MESSAGE * len(messages) + _PRIMER


def trimmed(messages: Sequence[ChatMessage], room: int | None) -> list[ChatMessage]:
    """``messages`` without their oldest turns, so that the prompt fits in ``room`` tokens
    (all turns but the last when ``room`` is unknown). The leading system messages and
    the last message are always kept, even when they alone do not fit: the server has
    the last word.
    """
    if not messages:
        return []
    head = 0
    while head < len(messages) - 1 and messages[head].role == "system":
        head += 1
    keep = list(messages[:head])
    turns, last = list(messages[head:-1]), messages[-1]
    if room is None:
        return [*keep, last]
    while turns and prompt_tokens([*keep, *turns, last]) > room:
        turns.pop(0)
    return [*keep, *turns, last]


def shorter_prompt(
    messages: Sequence[ChatMessage],
    context: int | None,
    reply_tokens: int,
    error: BackendError,
    where: str,
) -> list[ChatMessage]:
    """The messages to send again after the server at ``where`` refused them as over its
    ``context`` (``None``: it did not say how long), keeping ``reply_tokens`` free.

    Raises:
        BackendError: ``error``, explained, when a shorter prompt cannot help: the reply
            alone fills the context, or there is no history left to drop.
    """
    if context is not None and context <= reply_tokens:
        raise BackendError(
            f"{error} (the reply's {reply_tokens} tokens alone fill the server's context "
            f"of {context}: lower [backend.openai] max_new_tokens)"
        ) from error
    shorter = trimmed(messages, None if context is None else context - reply_tokens)
    if len(shorter) == len(messages):  # it fits by our estimate, not by theirs
        shorter = trimmed(messages, None)
    if len(shorter) == len(messages):
        raise BackendError(
            f"{error} (the message is longer than the server's context even without "
            "history; set [backend.openai] context_tokens so that such messages get "
            "too_long_reply)"
        ) from error
    log.warning(
        "openai: %s refused the prompt as longer than its context%s; sending it again "
        "without its %d oldest turns (set [backend.openai] context_tokens to fit prompts "
        "before sending)",
        where,
        f" of {context} tokens" if context else "",
        len(messages) - len(shorter),
    )
    return shorter
