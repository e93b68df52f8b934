"""Turning pydantic validation errors into ``ConfigProblem``s with full key paths.

Messages never include the offending value: it may be a secret expanded from the
environment. They name the expected type and the type that was found instead (the
loader then adds where a value came from: ``botkit.config._origins``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from botkit.errors import ConfigProblem

__all__ = [
    "dedupe",
    "format_path",
    "problem_at",
    "problems_from_validation",
    "toml_type",
    "without_paths_of",
]

_WRAPPER = re.compile(r"[a-z][a-z-]*\[.*\]")

_TOML_TYPE = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
}

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "string_type": "a string",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
    "url_type": "a URL string",
}


def format_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """Join a pydantic error location into a dotted key path (``a.b[0].c``)."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _WRAPPER.fullmatch(part):
            # Validator wrappers pydantic inserts into locations; not user-facing keys.
            continue
        else:
            path = f"{path}.{part}" if path else part
    return path


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type (``boolean``, ``integer``, ``table``...)."""
    for py_type, name in _TOML_TYPE.items():
        if type(value) is py_type:
            return name
    return type(value).__name__


def _known_keys(model: type[BaseModel] | None, loc: Sequence[int | str]) -> list[str]:
    """Field names of the (sub)model that owns ``loc``'s last key, for suggestions."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not isinstance(part, str) or fields is None:
            return []
        field = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        if field is None:
            return []
        current = field.annotation
    fields = getattr(current, "model_fields", None)
    if not fields:
        return []
    return [f.alias or name for name, f in fields.items()]


def _message(error: ErrorDetails, model: type[BaseModel] | None) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        message = "unknown key"
        if loc and isinstance(loc[-1], str):
            close = difflib.get_close_matches(loc[-1], _known_keys(model, loc), n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        return message
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {toml_type(error.get('input'))}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("too_short", "too_long"):
        # Pydantic names the Python type ("Tuple should have at least 1 item after
        # validation"); the file has a list, or a table.
        ctx = error.get("ctx", {})
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        if isinstance(bound, int):
            most = "at least" if kind == "too_short" else "at most"
            items = "item" if bound == 1 else "items"
            return f"must have {most} {bound} {items}, not {ctx.get('actual_length', '?')}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}"
    # Range and pattern errors: pydantic's text names the bound, not the input.
    msg = error["msg"]
    if kind == "value_error":  # a validator's own words, without pydantic's "Value error, "
        msg = msg.removeprefix("Value error, ")
    return msg[0].lower() + msg[1:] if msg else kind


def problems_from_validation(
    exc: ValidationError, *, prefix: str = "", model: type[BaseModel] | None = None
) -> list[ConfigProblem]:
    """One ``ConfigProblem`` per pydantic error, with ``prefix`` prepended to each path."""
    return [
        ConfigProblem(format_path(err["loc"], prefix), _message(err, model))
        for err in exc.errors(include_url=False)
    ]


def problem_at(model: type[BaseModel], loc: tuple[str | int, ...], message: str) -> ValidationError:
    """A validation error at key ``loc`` of ``model``'s table, for a model validator to
    raise when a rule between keys is broken: the problem then names the key to change
    (``connectors.telegram.webhook.url``), not the whole table. Pydantic takes a
    ``ValidationError`` raised in a validator as its errors, each under its own ``loc``.

    Args:
        model: the model whose validator raises (its name titles the error).
        loc: the key path inside the model's table, e.g. ``("webhook", "url")``.
        message: what is wrong, without the value (it may be a secret).
    """
    error = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
    return ValidationError.from_exception_data(model.__name__, [error])


def without_paths_of(
    first: Sequence[ConfigProblem], rest: Iterable[ConfigProblem]
) -> list[ConfigProblem]:
    """``first``, then the problems of ``rest`` at key paths ``first`` does not name
    (a sharper message for a value replaces pydantic's: ``nan`` "must be a finite
    number" rather than "input should be less than or equal to 3600")."""
    taken = {p.path for p in first}
    return [*first, *(p for p in rest if p.path not in taken)]


def dedupe(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """Drop repeated problems, keeping order."""
    return list(dict.fromkeys(problems))
