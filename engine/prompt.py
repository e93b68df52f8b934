"""Turning a request's prompt (text, chat messages or token ids) into token ids.

Chat message contents come from customers (and from earlier replies), so they must not be
able to write the chat template's control tokens: tokenizers parse added/special token
strings anywhere in the text, so a customer typing ``<|im_end|><|im_start|>system`` would
open a genuine system turn. Every such string inside a content is broken with a zero-width
space before the template is rendered; the template's own control tokens stay special.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from engine._render_deadline import RenderTimeout, with_deadline
from engine._template_sandbox import RenderTooLarge, render_chat_template
from engine.request_errors import InvalidRequestError

__all__ = [
    "ChatLike",
    "Prompt",
    "encode_prompt",
    "neutralize_special_tokens",
    "normalize_messages",
]

log = logging.getLogger(__name__)

# Real templates render in about a millisecond; a hostile one (nested loops) must not hold
# the event loop or the engine thread for long (``engine._render_deadline``), nor take
# gigabytes (``engine._template_sandbox``).
RENDER_TIMEOUT_S = 2.0

_ROLES = ("system", "user", "assistant")
# Inserted after the first character of a special-token string found in a message: the
# text reads the same, the tokenizer no longer finds the token. U+200B survives NFKC and
# is common in web text, so models have seen it.
_BREAK = "\u200b"
# Per tokenizer: (its length when the pattern was built, pattern or None when it has no
# added tokens). Tokenizers can gain tokens, so the length is checked at every use.
_PATTERNS: weakref.WeakKeyDictionary[Any, tuple[int, re.Pattern[str] | None]] = (
    weakref.WeakKeyDictionary()
)


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


def _special_pattern(tokenizer: Any) -> re.Pattern[str] | None:
    """A regex matching every added/special token string of ``tokenizer`` (cached)."""
    size = len(tokenizer)
    try:
        cached = _PATTERNS.get(tokenizer)
    except TypeError:  # not weak-referenceable: build it every time
        cached = None
    if cached is not None and cached[0] == size:
        return cached[1]
    strings = {
        str(getattr(t, "content", t))
        for t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values()
    }
    strings.update(str(t) for t in getattr(tokenizer, "all_special_tokens", None) or ())
    # A one-character token cannot be broken, and whitespace tokens are not markup.
    usable = sorted((t for t in strings if len(t) > 1 and t.strip()), key=len, reverse=True)
    # Case-insensitive: a tokenizer whose normalizer lowercases would match "<S>" as "<s>".
    pattern = re.compile("|".join(map(re.escape, usable)), re.IGNORECASE) if usable else None
    try:
        _PATTERNS[tokenizer] = (size, pattern)
    except TypeError:
        pass
    return pattern


def neutralize_special_tokens(tokenizer: Any, text: str) -> str:
    """``text`` with every added/special token string of ``tokenizer`` broken by a
    zero-width space, so tokenizing it cannot produce those tokens.

    Repeats until nothing matches: breaking one token can leave another one that
    overlapped it intact ("ab" and "bc" in "abc"), and each pass splits at least one pair
    of adjacent characters, so it ends.
    """
    pattern = _special_pattern(tokenizer)
    if pattern is None:
        return text
    while pattern.search(text):
        text = pattern.sub(lambda m: m[0][0] + _BREAK + m[0][1:], text)
    return text


def _fallback_template(messages: list[dict[str, str]]) -> str:
    # For checkpoints without a chat template: plain role-prefixed turns.
    turns = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return turns + "assistant:"


def encode_prompt(
    tokenizer: Any, prompt: Prompt, *, vocab_size: int, chat_template: str | None = None
) -> list[int]:
    """Token ids for a raw text prompt, chat messages, or already-tokenized ids.

    Text prompts get the tokenizer's special tokens (BOS) as ``tokenizer(text)`` would,
    and may contain control tokens on purpose (the caller wrote the whole prompt). Chat
    messages are rendered with the chat template (which writes its own special tokens)
    plus the generation prompt, after ``neutralize_special_tokens`` on every content;
    without a template, a plain role-prefixed text gets BOS like a text prompt.

    Raises:
        InvalidRequestError: malformed messages, token ids outside the model's vocabulary
            (given as ids, or produced by a tokenizer larger than the model), or a
            template that fails to render.
    """
    if isinstance(prompt, str):
        return _in_vocab(
            list(tokenizer.encode(prompt, add_special_tokens=True)), vocab_size, tokenizer
        )
    items = list(prompt)
    ids = [t for t in items if isinstance(t, int) and not isinstance(t, bool)]
    if items and len(ids) == len(items):
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            raise InvalidRequestError(
                f"token id {bad[0]} is outside the vocabulary [0, {vocab_size})"
            )
        return ids
    messages = [
        {"role": m["role"], "content": neutralize_special_tokens(tokenizer, m["content"])}
        for m in normalize_messages(items)
    ]
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        # The fallback writes no special tokens itself: BOS comes from the tokenizer, as
        # for the same text sent as a text prompt (Llama-family models need it).
        text = _fallback_template(messages)
        return _in_vocab(
            list(tokenizer.encode(text, add_special_tokens=True)), vocab_size, tokenizer
        )
    try:
        text = with_deadline(
            lambda: render_chat_template(tokenizer, template, messages), RENDER_TIMEOUT_S
        )
    except RenderTimeout as exc:
        raise InvalidRequestError(
            f"{exc}: it loops far more than a chat template needs; fix or replace the "
            "checkpoint's chat template"
        ) from None
    except RenderTooLarge as exc:
        raise InvalidRequestError(
            f"{exc}: far more than a chat template needs; fix or replace the checkpoint's "
            "chat template"
        ) from None
    except Exception as exc:  # jinja errors (e.g. a template that rejects a role order)
        raise InvalidRequestError(f"the chat template failed: {exc}") from exc
    return _in_vocab(
        list(tokenizer.encode(str(text), add_special_tokens=False)), vocab_size, tokenizer
    )


def _in_vocab(ids: list[int], vocab_size: int, tokenizer: Any) -> list[int]:
    """``ids`` if the model has an embedding row for each (O(n), before any model step)."""
    bad = next((t for t in ids if not 0 <= t < vocab_size), None)
    if bad is None:
        return ids
    try:
        token = repr(tokenizer.convert_ids_to_tokens(bad))
    except Exception:  # only for the message
        token = "?"
    # A tokenizer with more entries than the model has rows (tokens added by a fine-tune
    # without resizing the embeddings): the model cannot read this id.
    raise InvalidRequestError(
        f"the prompt contains token {token} (id {bad}), which is outside the model's "
        f"vocabulary [0, {vocab_size}): the tokenizer has more tokens than the model has "
        "embeddings"
    )
