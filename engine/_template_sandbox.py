"""Rendering a checkpoint's chat template with bounded memory.

Chat templates are untrusted code. The render deadline (``engine._render_deadline``)
bounds time, not memory: ``{% for i in range(100000) %}{{ 'a' * 10000000 }}{% endfor %}``
allocates 3.5 GB in 0.18 s, one C-level repetition at a time. So the template is compiled
in transformers' own sandboxed environment (its filters, globals and ``generation`` tag)
rebuilt on ``_BoundedSandbox``, less the ``lipsum``, ``cycler`` and ``joiner`` globals (no
chat template uses them; ``lipsum`` loops in Python past the deadline's reach).

Before they run, the sandbox sizes the operations that build a large value out of small
ones: ``*``, ``**``, ``+``, ``~`` and ``%``, ``str.format`` width specs, the string methods
that pad to a width (``center``, ``zfill``...), ``replace`` and ``join``, and the filters
that take a width or a separator (``center``, ``indent``, ``wordwrap``, ``format``,
``join``, ``replace``, ``batch``, ``slice``, ``tojson``'s indent); after they run, every
filter and call's result is sized too, so no value that prints past ``MAX_RENDER_CHARS``
characters is passed on (a list is sized by what it holds, not by its length). The
output is streamed and cut off at ``MAX_RENDER_CHARS``. This bounds each step to a few
times ``MAX_RENDER_CHARS``; it is a list of known ways to grow a value, not a proof that
no other exists. Time is the deadline's to bound.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable
from functools import lru_cache, wraps
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_RENDER_CHARS", "RenderTooLarge", "render_chat_template"]

# A prompt is at most the model's context (tens of thousands of tokens, a few chars each):
# 4 M characters is far past any real one, and a few MB to build and drop.
MAX_RENDER_CHARS = 4 << 20
_MAX_INT_BITS = 1 << 16  # ``**`` on ints: far past any number a template prints
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_DROPPED_GLOBALS = ("lipsum", "cycler", "joiner")
# A printf directive's width and precision (``%-*.3f``, ``%(name)200d``).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?")


class RenderTooLarge(SecurityError):
    """The template built, or was about to build, more than ``MAX_RENDER_CHARS``."""


def _refuse(what: str) -> RenderTooLarge:
    return RenderTooLarge(f"the chat template {what} (more than {MAX_RENDER_CHARS})")


def _size(value: Any) -> int:
    """About the characters ``str(value)`` has: a list of a million references to one
    long string is small in memory, not once printed or joined. Counted up to just past
    the bound, each container once (a list holding itself ends)."""
    total, seen, todo = 0, set(), [value]
    while todo and total <= MAX_RENDER_CHARS:
        v = todo.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, (list, tuple, dict)):
            total += 2 * len(v) + 2  # brackets, separators
            if id(v) not in seen:
                seen.add(id(v))
                todo += [*v.keys(), *v.values()] if isinstance(v, dict) else v
        else:
            total += 8  # a number, None, an object's name
    return total


def _bounded(value: Any, what: str) -> Any:
    size = _size(value)
    if size > MAX_RENDER_CHARS:
        raise _refuse(f"{what} {size} characters")
    return value


def _ints(args: Iterable[Any]) -> list[int]:
    return [a for a in args if isinstance(a, int) and not isinstance(a, bool)]


def _check_width(width: int, what: str) -> None:
    if width > MAX_RENDER_CHARS:
        raise _refuse(f"{what} to {width}")


def _check_printf(fmt: str, args: Any) -> None:
    """``fmt % args``: no width or precision past the bound (``*`` takes one from args)."""
    values = args if isinstance(args, tuple) else (args,)
    for star in _PRINTF.finditer(fmt):
        for spec in star.groups():
            if spec == "*":
                for w in _ints(values):
                    _check_width(abs(w), "pads a value")
            elif spec:
                _check_width(int(spec), "pads a value")


def _check_format(fmt: str, args: Iterable[Any]) -> None:
    """``fmt.format(*args)``: no width or precision in a spec past the bound (a nested
    ``{}`` in a spec takes one from the arguments)."""
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        for digits in re.findall(r"\d+", spec):
            _check_width(int(digits), "pads a value")
        if "{" in spec:
            for w in _ints(args):
                _check_width(abs(w), "pads a value")


def _check_join(items: Any, sep: Any) -> None:
    if isinstance(items, (list, tuple)):
        total = _size(items)
        total += len(sep) * max(0, len(items) - 1) if isinstance(sep, str) else 0
        if total > MAX_RENDER_CHARS:
            raise _refuse(f"joins {total} characters")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        if len(new) > len(old):
            hits = text.count(old) if old else len(text) + 1
            if isinstance(count, int) and count >= 0:
                hits = min(hits, count)
            if len(text) + hits * (len(new) - len(old)) > MAX_RENDER_CHARS:
                raise _refuse(f"replaces {hits} times with {len(new)} characters")


def _lines(text: Any) -> int:
    return str(text).count("\n") + 1


def _check_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Size a filter's result from its arguments, before it runs."""
    params = (*args, *kwargs.values())
    if name in ("center", "truncate", "batch", "slice", "wordwrap"):
        for w in _ints(params):
            _check_width(w, f"passes {name} a width")
    if name == "indent":
        for w in params[:1]:
            per_line = len(w) if isinstance(w, str) else w if isinstance(w, int) else 0
            if per_line * _lines(value) > MAX_RENDER_CHARS:
                raise _refuse(f"indents {_lines(value)} lines by {per_line}")
    elif name == "wordwrap":
        wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else None)
        if isinstance(wrap, str) and len(wrap) * len(str(value)) > MAX_RENDER_CHARS:
            raise _refuse(f"wraps with {len(wrap)} characters")
    elif name == "format" and isinstance(value, str):
        _check_printf(value, tuple(args) or tuple(kwargs.values()))
    elif name == "join":
        _check_join(value, kwargs.get("d", args[0] if args else ""))
    elif name == "replace":
        _check_replace(value, *args, **kwargs)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func``, checked before (``_check_filter``) and sized after; it keeps the
    ``pass_context``/``pass_eval_context`` marks, so it gets what ``func`` got."""
    passes_arg = hasattr(func, "jinja_pass_arg")

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[1], args[2:]) if passes_arg else (args[0], args[1:])
        _check_filter(name, value, rest, kwargs)
        return _bounded(func(*args, **kwargs), f"{name} built")

    return bounded


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' ``tojson`` (``json.dumps`` with these options), built piece by
    piece when indented: the indent repeats once per line and nesting level."""
    kwargs = {"ensure_ascii": ensure_ascii, "separators": separators, "sort_keys": sort_keys}
    if indent is None:
        return json.dumps(x, **kwargs)  # type: ignore[arg-type]
    parts, size = [], 0
    for part in json.JSONEncoder(indent=indent, **kwargs).iterencode(x):  # type: ignore[arg-type]
        size += len(part)
        if size > MAX_RENDER_CHARS:
            raise _refuse("indents its JSON")
        parts.append(part)
    return "".join(parts)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join of parts sized first (``_BoundedSandbox.bounded_concat``)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # CodeGenerator.visit_Concat, with the join handed to the sandbox with its parts.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with the operations that grow a value sized first."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    @staticmethod
    def bounded_concat(join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        """``join(parts)`` (``a ~ b``), sized before it is built."""
        total = _size(parts)
        if total > MAX_RENDER_CHARS:
            raise _refuse(f"concatenates {total} characters")
        return join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if _size(seq) * times > MAX_RENDER_CHARS:
                        raise _refuse(f"repeats {len(seq)} items {times} times")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and left.bit_length() * right > _MAX_INT_BITS:
                raise RenderTooLarge(f"the chat template computes {left} ** {right}")
        elif operator == "+":
            if _size(left) + _size(right) > MAX_RENDER_CHARS:
                raise _refuse(f"adds {_size(left)} and {_size(right)} characters")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _bounded(super().call_binop(context, operator, left, right), operator + " built")

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        method = getattr(__obj, "__wrapped__", __obj)  # str.format: the sandbox's wrapper
        text = getattr(method, "__self__", None)
        if isinstance(text, str):
            name = getattr(method, "__name__", "")
            params = (*args, *kwargs.values())
            if name in _WIDTH_METHODS:
                tabs = max(1, text.count("\t"))
                for w in _ints(params):
                    _check_width(w * tabs, "pads a string")
            elif name in ("format", "format_map"):
                mapping = params[0] if name == "format_map" and params else {}
                extra = mapping.values() if isinstance(mapping, dict) else ()
                _check_format(text, (*params, *extra))
            elif name == "replace":
                _check_replace(text, *args, **kwargs)
            elif name == "join" and args:
                _check_join(args[0], text)
            elif name in ("translate", "maketrans"):
                raise RenderTooLarge(f"the chat template calls str.{name}")
        result = super().call(__context, __obj, *args, **kwargs)
        return _bounded(result, f"{getattr(method, '__name__', 'a call')} built")


@lru_cache(maxsize=8)
def _compile(template: str) -> Template:
    """``template`` in transformers' chat-template environment, rebuilt bounded."""
    env = _environment()
    return env.from_string(template)


def _environment() -> _BoundedSandbox:
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
    env.filters["tojson"] = _tojson
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.tests.update(base.tests)
    env.globals.update(base.globals)
    for name in _DROPPED_GLOBALS:
        env.globals.pop(name, None)
    return env


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
