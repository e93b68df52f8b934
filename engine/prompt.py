"""Turning a request's prompt (text, chat messages or token ids) into token ids."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from engine.request_errors import InvalidRequestError

__all__ = ["ChatLike", "Prompt", "encode_prompt", "normalize_messages"]

log = logging.getLogger(__name__)

_ROLES = ("system", "user", "assistant")


class ChatLike(Protocol):
    """Anything with ``role`` and ``content`` attributes (e.g. botkit's ChatMessage)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


Prompt = str | Sequence[int] | Sequence[Mapping[str, str]] | Sequence[ChatLike]


def normalize_messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    """Validate chat messages into ``[{"role", "content"}]`` dicts.

    Raises:
        InvalidRequestError: a message has an unknown role or non-string content.
    """
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        else:
            role, content = getattr(m, "role", None), getattr(m, "content", None)
        if role not in _ROLES:
            raise InvalidRequestError(f"message {i}: role must be one of {_ROLES}, got {role!r}")
        if not isinstance(content, str):
            raise InvalidRequestError(f"message {i}: content must be a string")
        out.append({"role": str(role), "content": content})
    if not out:
        raise InvalidRequestError("the conversation has no messages")
    return out


def _fallback_template(messages: list[dict[str, str]]) -> str:
    # For checkpoints without a chat template: plain role-prefixed turns.
    turns = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return turns + "assistant:"


def encode_prompt(tokenizer: Any, prompt: Prompt, *, vocab_size: int,
                  chat_template: str | None = None) -> list[int]:
    """Token ids for a raw text prompt, chat messages, or already-tokenized ids.

    Text prompts get the tokenizer's special tokens (BOS) as ``tokenizer(text)`` would;
    chat messages are rendered with the chat template (which writes its own special
    tokens) plus the generation prompt.

    Raises:
        InvalidRequestError: malformed messages, token ids outside the vocabulary, or a
            template that fails to render.
    """
    if isinstance(prompt, str):
        return list(tokenizer.encode(prompt, add_special_tokens=True))
    items = list(prompt)
    ids = [t for t in items if isinstance(t, int) and not isinstance(t, bool)]
    if items and len(ids) == len(items):
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            raise InvalidRequestError(
                f"token id {bad[0]} is outside the vocabulary [0, {vocab_size})")
        return ids
    messages = normalize_messages(items)
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        text = _fallback_template(messages)
    else:
        try:
            text = tokenizer.apply_chat_template(
                messages, chat_template=template, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja errors (e.g. a template that rejects a role order)
            raise InvalidRequestError(f"the chat template failed: {exc}") from exc
    return list(tokenizer.encode(str(text), add_special_tokens=False))
