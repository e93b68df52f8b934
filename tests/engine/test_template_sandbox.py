"""Chat templates render in bounded memory: every ``*`` and ``**`` is sized before it
runs, padding methods are bounded, and the output is cut off at ``MAX_RENDER_CHARS``;
real templates render exactly as ``apply_chat_template`` does. Tiny tokenizer, no model."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hf_tiny import build_tokenizer

from engine._template_sandbox import MAX_RENDER_CHARS, render_chat_template
from engine.prompt import encode_prompt
from engine.request_errors import InvalidRequestError

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Where is my order?"},
]
# What real templates use: namespace, tojson, raise_exception, loop controls, the
# ``generation`` tag, special tokens, whitespace control, '*' on short strings.
RICH = (
    "{{ bos_token }}{% set ns = namespace(n=0) %}"
    "{% for m in messages %}{% if m.role not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('bad role') }}{% endif %}{% set ns.n = ns.n + 1 %}"
    "{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content | tojson }}{% endif %}\n"
    "{%- if loop.index > 10 %}{% break %}{% endif %}{% endfor %}"
    "{{ '=' * 8 }}{{ ns.n }}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_tokenizer()


@pytest.mark.parametrize("which", ["tokenizer", "rich"])
def test_real_templates_render_as_transformers_does(tok: Any, which: str) -> None:
    template = tok.chat_template if which == "tokenizer" else RICH
    expected = tok.apply_chat_template(
        MESSAGES, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    assert render_chat_template(tok, template, MESSAGES) == expected


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ 'a' * 100000000 }}", "repeats 1 items 100000000 times"),
        ("{{ 100000000 * [0] }}", "repeats 1 items 100000000 times"),
        ("{% for i in range(100) %}{{ 'a' * 1000000 }}{% endfor %}", "rendered over"),
        ("{{ 'a'.center(100000000) }}", "pads a string to 100000000"),
        ("{{ 'a\t\t'.expandtabs(50000000) }}", "pads a string"),
        ("{{ (7 ** 10000000) | string | length }}", r"computes 7 \*\* 10000000"),
    ],
)
def test_templates_that_build_too_much_are_refused_before_they_do(
    tok: Any, template: str, error: str
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRequestError, match=error):
            encode_prompt(tok, MESSAGES, vocab_size=len(tok), chat_template=template)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_RENDER_CHARS + (16 << 20), peak  # the cut-off output, not 100 MB
