"""Chat templates render in bounded memory: the operations that grow a value (``*``,
``**``, ``+``, ``~``, ``%``, format widths, padding, joins, replaces, width filters) are
sized before they run, and the output is cut off at ``MAX_RENDER_CHARS``; real templates
render exactly as ``apply_chat_template`` does, in transformers' own environment settings.
Tiny tokenizer, no model."""

from __future__ import annotations

import inspect
import tracemalloc
from typing import Any

import pytest
from hf_tiny import build_tokenizer

from engine._template_sandbox import MAX_RENDER_CHARS, _compile, render_chat_template
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
# Doubles a string 28 times (to 268 M characters), one bounded step at a time.
DOUBLING = (
    "{{% set ns = namespace(x='a' * 1000) %}}{{% for i in range(28) %}}"
    "{{% set ns.x = ns.x {op} ns.x %}}{{% endfor %}}{{{{ ns.x | length }}}}"
)

# Doubles a list of references to one long string: small in memory until printed.
DOUBLING_LIST = "{% for i in range(20) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l }}"


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
        ("{{ (['a' * 4000000] * 50) | join }}", "repeats 1 items 50 times"),
        ("{{ (['a'] * 500000) | join('b' * 100) }}", r"joins \d+ characters"),
        ("{{ ('b' * 100).join(['a'] * 500000) }}", r"joins \d+ characters"),
        (DOUBLING.format(op="+"), "adds 4096000 and 4096000 characters"),
        (DOUBLING.format(op="~"), "concatenates 8192006 characters"),
        ("{% set s = 'a' * 4000000 %}{{ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s }}", "concatenates"),
        (
            "{% set ns = namespace(l=['a' * 100000]) %}" + DOUBLING_LIST,
            r"adds \d+ and \d+ characters",
        ),
        ("{{ ([['a' * 4000000]] * 50) | join }}", "repeats 1 items 50 times"),
        ("{{ '%200000000d' % 1 }}", "pads a value to 200000000"),
        ("{{ '%*d' % (200000000, 1) }}", "pads a value to 200000000"),
        ("{{ '%200000000d' | format(1) }}", "pads a value to 200000000"),
        ("{{ '{:>200000000}'.format('a') }}", "pads a value to 200000000"),
        ("{{ '{:>{}}'.format('a', 200000000) }}", "pads a value to 200000000"),
        ("{{ messages[0].content | center(200000000) }}", "passes center a width"),
        ("{{ 'a' | center(200000000) }}", "passes center a width"),  # not folded unchecked
        ("{{ 'a\nb' | indent(200000000) }}", "indents 2 lines by 200000000"),
        ("{{ ('a' * 4000000) | replace('a', 'a' * 100) }}", "replaces 4000000 times"),
        ("{{ ('a' * 4000000).replace('a', 'a' * 100) }}", "replaces 4000000 times"),
        ("{{ [[[1, 2] * 100000]] | tojson(indent=100) }}", "indents its JSON"),
        ("{{ [1] | batch(200000000, 'x') | list | length }}", "passes batch a width"),
        ("{{ ('a' * 4000000) | wordwrap(1, wrapstring='x' * 100) }}", "wraps with 100"),
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


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner"])
def test_globals_no_chat_template_uses_are_gone(tok: Any, name: str) -> None:
    # lipsum(20000) loops in Python for ~5 s, out of the render deadline's reach.
    with pytest.raises(InvalidRequestError, match=f"'{name}' is undefined"):
        encode_prompt(tok, MESSAGES, vocab_size=len(tok), chat_template=f"{{{{ {name}() }}}}")


def test_the_environment_is_transformers_own_but_bounded() -> None:
    """Every setting of transformers' chat-template environment is ours too: an upgrade
    that adds one (a finalize, an undefined, a policy) must fail here, not be lost."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    base = _compile_jinja_template("").environment
    ours = _compile("").environment
    settings = [
        "block_start_string",
        "block_end_string",
        "variable_start_string",
        "variable_end_string",
        "comment_start_string",
        "comment_end_string",
        "line_statement_prefix",
        "line_comment_prefix",
        "trim_blocks",
        "lstrip_blocks",
        "newline_sequence",
        "keep_trailing_newline",
        "undefined",
        "finalize",
        "autoescape",
        "optimized",
        "is_async",
        "policies",
        "sandboxed",
    ]
    assert {k: getattr(ours, k) for k in settings} == {k: getattr(base, k) for k in settings}
    assert [type(e) for e in ours.extensions.values()] == [
        type(e) for e in base.extensions.values()
    ]
    assert set(ours.filters) == set(base.filters) and set(ours.tests) == set(base.tests)
    assert all(ours.tests[k] is f for k, f in base.tests.items())
    assert set(base.globals) - set(ours.globals) == {"lipsum", "cycler", "joiner"}
    assert all(ours.globals[k] is f for k, f in ours.globals.items() if k in base.globals)
    # What the sandbox adds on top of transformers' class, and nothing else.
    own = {k for k in vars(type(ours)) if not k.startswith("__")}
    assert own == {
        "code_generator_class",
        "intercepted_binops",
        "bounded_concat",
        "call_binop",
        "call",
    }
    assert type(base) in type(ours).__mro__
    # Every filter is transformers' own, wrapped; tojson is rebuilt (same output).
    wrapped = {k: getattr(f, "__wrapped__", None) for k, f in ours.filters.items()}
    assert all(wrapped[k] is f for k, f in base.filters.items() if k != "tojson")
    assert set(inspect.signature(base.filters["tojson"]).parameters) == set(
        inspect.signature(wrapped["tojson"]).parameters
    )


@pytest.mark.parametrize(
    "value",
    [{"a": [1, "ü", None]}, "x\ny", [{"role": "user", "content": "<b>&</b>"}], [[[]]]],
)
@pytest.mark.parametrize("options", ["", "indent=2", "indent='  ', sort_keys=True"])
def test_tojson_renders_as_transformers_does(tok: Any, value: Any, options: str) -> None:
    template = f"{{{{ value | tojson({options}) }}}}"
    messages = [{"role": "user", "content": "x"}]
    from transformers.utils.chat_template_utils import _compile_jinja_template

    expected = _compile_jinja_template(template).render(value=value)
    assert _compile(template).render(value=value) == expected
    assert render_chat_template(tok, template.replace("value", "messages"), messages) == (
        _compile_jinja_template(template.replace("value", "messages")).render(messages=messages)
    )
