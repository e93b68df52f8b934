"""Booleans, numbers and non-finite floats that pydantic's lax mode would let through.

Lax mode takes ``true`` for an integer (1) or a float (1.0) and ``0``/``1`` for a
boolean, so ``port = true`` or ``enabled = 1`` would pass and mean something the
operator did not write. Strict mode is no cure: it also refuses the strings the README
promises to read (``port = "8080"``, ``enabled = "true"``, every ``${VAR}`` value). So
the loader validates in lax mode and, beside it, walks the raw table along the model's
field types, reporting:

* a boolean where an integer or a float is expected,
* an integer or a float where a boolean is expected,
* NaN or an infinity (a TOML ``nan``/``inf`` or a string like ``"${VAR}"`` that reads
  as one) where a float is expected: no setting means anything by them, and ``inf``
  seconds only overflow a timer once the bot runs.

It runs for the core ``Settings`` and for each enabled connector's and plugin's
``Config``, whatever base class those have, so it is the one place this is decided.
Messages follow ``botkit.config.problems`` and never show a value.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from botkit.config.problems import toml_type
from botkit.errors import ConfigProblem

__all__ = ["mistyped_scalars"]

_SEQUENCES = (list, tuple, set, frozenset, Sequence)
_NOT_FINITE = "must be a finite number"


def _keys(model: type[BaseModel], name: str, alias: str | None) -> list[str]:
    """The keys a field is read from in a raw table."""
    if alias is None:
        return [name]
    by_name = model.model_config.get("populate_by_name") or model.model_config.get(
        "validate_by_name"
    )
    return [alias, name] if by_name else [alias]


def mistyped_scalars(model: type[BaseModel], data: Any, prefix: str = "") -> list[ConfigProblem]:
    """Problems of ``data`` (a raw table for ``model``) that lax validation misses.

    Args:
        model: the settings model the table is validated against.
        data: the table (after ``${VAR}`` expansion); anything else is left to pydantic.
        prefix: key path of the table, for the problems' paths.
    """
    if not isinstance(data, Mapping):
        return []
    found: list[ConfigProblem] = []
    for name, field in model.model_fields.items():
        for key in _keys(model, name, field.alias):
            if key in data:
                path = f"{prefix}.{key}" if prefix else key
                found.extend(_check(field.annotation, data[key], path))
    return found


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):  # pydantic reads "nan", "inf", "-Infinity"... as floats
        try:
            return not math.isfinite(float(value.strip()))
        except ValueError:
            return False
    return False


def _check(annotation: Any, value: Any, path: str) -> list[ConfigProblem]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _check(get_args(annotation)[0], value, path)
    if origin is Union or origin is types.UnionType:
        if value is None:
            return []
        members = [a for a in get_args(annotation) if a is not type(None)]
        # A problem only when no member of the union takes the value.
        results = [_check(member, value, path) for member in members]
        return results[0] if all(results) else []
    if annotation is bool:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return [ConfigProblem(path, f"expected a boolean, got {toml_type(value)}")]
        return []
    if annotation is int or annotation is float:
        if isinstance(value, bool):
            expected = "an integer" if annotation is int else "a number"
            return [ConfigProblem(path, f"expected {expected}, got boolean")]
        if annotation is float and _non_finite(value):
            return [ConfigProblem(path, _NOT_FINITE)]
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return mistyped_scalars(annotation, value, path)
    args = get_args(annotation)
    if origin in _SEQUENCES and isinstance(value, list | tuple) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = list(zip(args, value, strict=False))
        else:
            items = [(args[0], item) for item in value]
        return [
            problem
            for i, (item_type, item) in enumerate(items)
            for problem in _check(item_type, item, f"{path}[{i}]")
        ]
    if origin in (dict, Mapping) and isinstance(value, Mapping) and len(args) == 2:
        return [
            problem
            for key, item in value.items()
            for problem in _check(args[1], item, f"{path}.{key}")
        ]
    return []
