"""Rendering a checkpoint's chat template with bounded memory.

Chat templates are untrusted code. The render deadline (``engine._render_deadline``)
bounds time, not memory: ``{% for i in range(100000) %}{{ 'a' * 10000000 }}{% endfor %}``
allocates 3.5 GB in 0.18 s, one C-level repetition at a time. So the template is compiled
in transformers' own sandboxed environment (its filters, globals and ``generation`` tag)
rebuilt on ``_BoundedSandbox``, which checks the size of every ``*`` and ``**`` before
computing it and refuses the few string methods that pad to a given width past the
bound; and the output is streamed and cut off at ``MAX_RENDER_CHARS``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_RENDER_CHARS", "RenderTooLarge", "render_chat_template"]

# A prompt is at most the model's context (tens of thousands of tokens, a few chars each):
# 4 M characters is far past any real one, and a few MB to build and drop.
MAX_RENDER_CHARS = 4 << 20
_MAX_INT_BITS = 1 << 16  # ``**`` on ints: far past any number a template prints
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class RenderTooLarge(SecurityError):
    """The template built, or was about to build, more than ``MAX_RENDER_CHARS``."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` checked before they allocate."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > MAX_RENDER_CHARS:
                        raise RenderTooLarge(
                            f"the chat template repeats {len(seq)} items {times} times "
                            f"(more than {MAX_RENDER_CHARS})"
                        )
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and left.bit_length() * right > _MAX_INT_BITS:
                raise RenderTooLarge(f"the chat template computes {left} ** {right}")
        return super().call_binop(context, operator, left, right)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if (
            isinstance(getattr(__obj, "__self__", None), str)
            and getattr(__obj, "__name__", "") in _WIDTH_METHODS
        ):
            widths = [a for a in (*args, *kwargs.values()) if isinstance(a, int)]
            text: str = __obj.__self__
            if any(w * max(1, text.count("\t")) > MAX_RENDER_CHARS for w in widths):
                raise RenderTooLarge(f"the chat template pads a string to {max(widths)}")
        return super().call(__context, __obj, *args, **kwargs)


@lru_cache(maxsize=8)
def _compile(template: str) -> Template:
    """``template`` in transformers' chat-template environment, rebuilt bounded."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    # The environment of an empty template: compiling ``template`` itself there would
    # fold its constant expressions ('a' * 10**9) at compile time, unchecked.
    base = _compile_jinja_template("").environment
    env = _BoundedSandbox(
        trim_blocks=base.trim_blocks,
        lstrip_blocks=base.lstrip_blocks,
        extensions=[type(e) for e in base.extensions.values()],
    )
    env.filters.update(base.filters)
    env.tests.update(base.tests)
    env.globals.update(base.globals)
    return env.from_string(template)


def render_chat_template(tokenizer: Any, template: str, messages: list[dict[str, str]]) -> str:
    """What ``tokenizer.apply_chat_template(messages, chat_template=template,
    tokenize=False, add_generation_prompt=True)`` renders, in bounded memory.

    Raises:
        RenderTooLarge: the output, or one repetition in it, passes ``MAX_RENDER_CHARS``.
        jinja2.TemplateError: the template fails (a syntax error, ``raise_exception``).
    """
    variables = {
        **getattr(tokenizer, "special_tokens_map", {}),
        "messages": [dict(m) for m in messages],
        "tools": None,
        "documents": None,
        "add_generation_prompt": True,
    }
    parts: list[str] = []
    size = 0
    for chunk in _compile(template).generate(**variables):
        size += len(chunk)
        if size > MAX_RENDER_CHARS:
            raise RenderTooLarge(f"the chat template rendered over {MAX_RENDER_CHARS} characters")
        parts.append(chunk)
    return "".join(parts)
