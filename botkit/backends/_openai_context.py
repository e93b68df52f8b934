"""How much of a chat fits in an OpenAI-compatible server's context, without its tokenizer.

The server's tokenizer is not at hand (``/tokenize`` is not part of the API and not
every server has one), so prompts are measured with ``estimate_tokens``, which counts a
CJK character as a token and leans high, plus what chat templates add per message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from botkit._token_estimate import estimate_tokens
from botkit.backends.protocol import ChatMessage

__all__ = ["prompt_tokens", "trimmed"]

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
