"""``${VAR}`` references in config values, expanded from the environment after parsing.

Expanding after TOML parsing (not on the file text) means a secret can hold any
character, quotes and newlines included, without breaking the file's syntax.

Syntax inside string values: ``${NAME}`` (NAME must be set), ``${NAME:-default}``
(default when unset or empty), ``$${`` for a literal ``${``. Keys are never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botkit.errors import ConfigProblem

__all__ = ["Interpolation", "interpolate"]

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Interpolation:
    """Result of ``interpolate``: the expanded tree, problems, substituted values, and
    the variables each value's references name (by key path, in order), so a problem
    with an expanded value can say which variable it came from without showing it."""

    value: Any
    problems: list[ConfigProblem] = field(default_factory=list)
    substituted: set[str] = field(default_factory=set)
    references: dict[str, list[str]] = field(default_factory=dict)


def interpolate(tree: Any, environ: Mapping[str, str], path: str = "") -> Interpolation:
    """Expand ``${VAR}`` references in every string of a parsed TOML tree.

    Args:
        tree: the parsed TOML (dicts, lists, scalars).
        environ: where variables are looked up (``os.environ`` in production).
        path: key path of ``tree`` itself, used in problem messages.

    Returns:
        The expanded copy of the tree, one problem per undefined or malformed reference
        (each naming its key path and the variable), and the substituted values.
    """
    result = Interpolation(value=None)
    result.value = _walk(tree, environ, path, result)
    return result


def _walk(node: Any, environ: Mapping[str, str], path: str, out: Interpolation) -> Any:
    if isinstance(node, dict):
        return {
            key: _walk(value, environ, f"{path}.{key}" if path else str(key), out)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_walk(item, environ, f"{path}[{i}]", out) for i, item in enumerate(node)]
    if isinstance(node, str) and "$" in node:
        return _expand(node, environ, path, out)
    return node


def _expand(text: str, environ: Mapping[str, str], path: str, out: Interpolation) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            out.problems.append(ConfigProblem(path, "unterminated '${' (escape it as '$${')"))
            return whole
        name, sep, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            out.problems.append(
                ConfigProblem(path, f"invalid environment variable reference '${{{body}}}'")
            )
            return whole
        if "${" in default:
            out.problems.append(
                ConfigProblem(
                    path,
                    f"the default of ${{{name}}} contains '${{': references cannot be nested "
                    "(write a literal '${' as '$${')",
                )
            )
            return whole
        named = out.references.setdefault(path, [])
        if name not in named:
            named.append(name)
        value = environ.get(name)
        if value is None or (sep and value == ""):
            if sep:
                return default
            out.problems.append(ConfigProblem(path, f"environment variable {name} is not set"))
            return ""
        out.substituted.add(value)
        return value

    return _REF.sub(replace, text)
