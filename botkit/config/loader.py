"""Reading one TOML file into a validated ``Settings`` tree.

Steps: parse the TOML, expand ``${VAR}`` references, validate the core sections, then
validate each enabled connector's and plugin's section against its own ``Config``. All
problems from all steps are collected and raised together in one ``ConfigError`` so
``botkit check-config`` can list everything at once. A command that needs only some
sections (the database commands: ``[store]``, ``[logging]``) reads only those.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from botkit.config._origins import with_origins
from botkit.config._scalars import mistyped_scalars
from botkit.config.components import enabled_flag, resolve_components
from botkit.config.interpolate import Interpolation, interpolate
from botkit.config.listen import clashes, listeners_of, split_listen
from botkit.config.problems import dedupe, problems_from_validation, without_paths_of
from botkit.config.settings import Settings
from botkit.errors import ConfigError, ConfigProblem

__all__ = ["check_config", "load_settings", "settings_from_mapping"]


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; ``ConfigError`` when it cannot be read or parsed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=str(path)) from None
    try:
        # utf-8-sig: editors on Windows save UTF-8 with a byte-order mark.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file is not UTF-8: {exc}", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML syntax error: {exc}", source=str(path)) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(_TOO_DEEP, source=str(path)) from None


# A config is a few levels deep; interpolation and validation walk the tree recursively,
# so a hostile file of thousands of nested tables (which tomllib parses without
# recursion) must stop here rather than as a RecursionError traceback.
_MAX_DEPTH = 64
_TOO_DEEP = f"the config is nested too deeply (more than {_MAX_DEPTH} levels)"


def _check_depth(data: Mapping[str, Any], source: str | None) -> None:
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > _MAX_DEPTH:
            raise ConfigError(_TOO_DEEP, source=source)
        stack.extend((child, depth + 1) for child in children)


def _without_disabled(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with each connector or plugin table's ``enabled`` made a boolean where it
    says one (``"false"``, ``"${CHAT_ON:-no}"``), and each disabled table reduced to
    ``enabled = false``: nothing in it is used or validated, so its ``${VAR}``
    references need not be set (a channel switched off keeps its token reference for
    when it comes back). Read as a boolean here, the value of an ``enabled`` variable
    is no secret to redact from the logs."""
    tree = dict(data)
    for kind in ("connectors", "plugins"):
        sections = tree.get(kind)
        if isinstance(sections, dict):
            tree[kind] = {
                name: _with_enabled_read(section, f"{kind}.{name}.enabled", environ)
                for name, section in sections.items()
            }
    return tree


def _with_enabled_read(section: Any, path: str, environ: Mapping[str, str]) -> Any:
    if not isinstance(section, dict) or "enabled" not in section:
        return section
    expanded = interpolate(section["enabled"], environ, path)
    flag = None if expanded.problems else enabled_flag(expanded.value)
    if flag is None:  # reported when the section is validated (as it was written)
        return section
    return {"enabled": False} if flag is False else {**section, "enabled": True}


def _validate(
    tree: Mapping[str, Any], check_components: bool
) -> tuple[Settings | None, list[ConfigProblem]]:
    """Validate an expanded tree: the core sections, then (``check_components``) each
    enabled connector's and plugin's section, and the ports their servers listen on."""
    settings: Settings | None = None
    found: list[ConfigProblem] = []
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        found = problems_from_validation(exc, model=Settings)
    problems = without_paths_of(mistyped_scalars(Settings, tree), found)
    if check_components:
        listeners: dict[str, tuple[str, int]] = {}
        if settings is not None and settings.metrics.listen:
            listeners["metrics.listen"] = split_listen(settings.metrics.listen)
        for kind in ("connectors", "plugins"):
            sections = tree.get(kind, {})
            if isinstance(sections, dict):
                valid = {k: v for k, v in sections.items() if isinstance(v, dict)}
                specs, found = resolve_components(kind, valid)
                problems.extend(found)
                for spec in specs:
                    for key, address in listeners_of(spec.config).items():
                        listeners[f"{kind}.{spec.name}.{key}"] = address
        problems.extend(
            ConfigProblem(second, f"listens on port {listeners[second][1]}, as {first} does: "
                          "each server needs a port of its own")
            for first, second in clashes(listeners)
        )  # fmt: skip
    return settings, problems


def _encloses(outer: str, inner: str) -> bool:
    """True when key path ``outer`` is a table or array that holds ``inner``."""
    return outer == "" or inner.startswith((f"{outer}.", f"{outer}["))


def _without_paths(node: Any, paths: set[str], path: str = "") -> Any:
    """``node`` without the values at ``paths`` (key paths as ``interpolate`` names
    them: the same walk)."""
    if isinstance(node, dict):
        return {
            key: _without_paths(value, paths, child)
            for key, value in node.items()
            if (child := f"{path}.{key}" if path else str(key)) not in paths
        }
    if isinstance(node, list):
        return [
            _without_paths(item, paths, f"{path}[{i}]")
            for i, item in enumerate(node)
            if f"{path}[{i}]" not in paths
        ]
    return node


def _not_from_unexpanded(
    found: list[ConfigProblem], expanded: Interpolation, check_components: bool
) -> list[ConfigProblem]:
    """The validation problems in ``found`` that are not a ``${VAR}`` that could not be
    expanded failing again (it became ""; the variable is the problem to report).

    A problem at the value's own path is dropped. One at a table or array holding it
    (a validator of ``agents`` that checks every agent's token) is dropped only when it
    is gone once the unexpanded values are left out: the table's own problems stay.
    """
    unexpanded = {p.path for p in expanded.problems}
    kept = [p for p in found if p.path not in unexpanded]

    def above(problem: ConfigProblem) -> bool:
        return any(_encloses(problem.path, path) for path in unexpanded)

    if any(above(p) for p in kept):
        _, without = _validate(_without_paths(expanded.value, unexpanded), check_components)
        kept = [p for p in kept if not above(p) or p in without]
    return kept


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    source: str | None = None,
    check_components: bool = True,
    sections: Collection[str] | None = None,
) -> Settings:
    """Validate an already parsed TOML tree into ``Settings``.

    Args:
        data: the parsed TOML document.
        environ: variables for ``${VAR}`` (default ``os.environ``).
        source: file name used in the error message.
        check_components: also import enabled connectors/plugins and validate their
            sections (off only where the components are resolved later anyway).
        sections: read only these top-level sections (e.g. ``("store", "logging")``
            for a command that only opens the database); the others are not looked at,
            their ``${VAR}`` references need not be set, and the returned settings hold
            the defaults for them. None (the default): the whole file.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    if sections is not None:
        unknown = set(sections) - set(Settings.model_fields)
        if unknown:
            raise ValueError(f"no such settings sections: {sorted(unknown)}")
        data = {key: value for key, value in data.items() if key in sections}
    _check_depth(data, source)
    environ = os.environ if environ is None else environ
    expanded = interpolate(_without_disabled(data, environ), environ)
    settings, found = _validate(expanded.value, check_components)
    if expanded.problems or found or settings is None:
        found = with_origins(_not_from_unexpanded(found, expanded, check_components), expanded)
        problems = expanded.problems + found
        raise ConfigError(dedupe(problems), source=source)
    return settings.with_secret_values(frozenset(v for v in expanded.substituted if v))


def load_settings(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_components: bool = True,
    sections: Collection[str] | None = None,
) -> Settings:
    """Read and validate a TOML config file (arguments as for ``settings_from_mapping``).

    Raises:
        ConfigError: the file is missing or unreadable, is not valid TOML, or has
            problems (each reported with its key path).
    """
    file = Path(path)
    return settings_from_mapping(
        read_toml(file),
        environ=environ,
        source=str(file),
        check_components=check_components,
        sections=sections,
    )


def check_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> list[ConfigProblem]:
    """Every problem of a config file (empty list when it is valid)."""
    try:
        load_settings(path, environ=environ)
    except ConfigError as exc:
        return exc.problems
    return []
