"""The chat template's own special tokens, which end a reply like EOS does.

A chat model ends its turn with EOS (``<|im_end|>``, ``<|eot_id|>``...), and only EOS
stopped generation. A model that writes the next turn's start without ending its own
(ChatML ``<|im_start|>``, Llama-3 ``<|start_header_id|>``, Gemma ``<start_of_turn>``)
would go on into a turn it invents: the detokenizer hides the special token itself, so
the customer would read "user\\n..." and the rest of a fake conversation.

Which tokens those are is read off the model, not a list: every special token (one the
tokenizer registers as special) that the chat template writes literally marks a turn's
structure, and none belongs inside a reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["template_token_ids"]

# Reasoning tags some templates write: a reply may start with them (the backend strips
# the block), so they never end one, special or not.
_NOT_STOPS = frozenset({"<think>", "</think>"})


def template_token_ids(tokenizer: Any, chat_template: str | None) -> frozenset[int]:
    """Ids of the tokenizer's special tokens that ``chat_template`` (or, when None,
    the tokenizer's own template) contains literally.

    Args:
        tokenizer: a transformers tokenizer.
        chat_template: the template the engine renders prompts with.
    """
    template = chat_template if chat_template is not None else _own_template(tokenizer)
    if not template:
        return frozenset()
    ids: set[int] = set()
    for text, token_id in _special_tokens(tokenizer):
        if text not in _NOT_STOPS and text in template:
            ids.add(token_id)
    return frozenset(ids)


def _own_template(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates ("default", "tool_use"...)
        return "\n".join(t for t in template.values() if isinstance(t, str))
    return template if isinstance(template, str) else ""


def _special_tokens(tokenizer: Any) -> Iterable[tuple[str, int]]:
    """(text, id) of each special token: the named ones (bos, eos...) and the added
    tokens flagged special (ChatML's and Llama-3's turn markers are only these)."""
    seen: dict[str, int] = {}
    decoder = getattr(tokenizer, "added_tokens_decoder", None)
    if isinstance(decoder, dict):
        for token_id, added in decoder.items():
            content = getattr(added, "content", None)
            if getattr(added, "special", False) and isinstance(content, str) and content:
                seen[content] = int(token_id)
    for text in getattr(tokenizer, "all_special_tokens", None) or ():
        if isinstance(text, str) and text and text not in seen:
            token_id = tokenizer.convert_tokens_to_ids(text)
            if isinstance(token_id, int) and token_id != getattr(tokenizer, "unk_token_id", None):
                seen[text] = token_id
    return seen.items()
