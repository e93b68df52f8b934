"""Validating ``[connectors.NAME]`` and ``[plugins.NAME]`` against installed components.

A section is enabled when present and its ``enabled`` key is not false (a boolean, or a
string read as one: ``"false"``, a ``${VAR}`` that says ``no``). Only enabled
components are imported; each one's ``Config`` class validates its section, and problems
carry full key paths such as ``connectors.web.port``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from botkit import _discovery
from botkit.config._scalars import mistyped_scalars
from botkit.config.problems import problems_from_validation, toml_type, without_paths_of
from botkit.errors import ConfigError, ConfigProblem

__all__ = ["ComponentSpec", "enabled_flag", "resolve_components", "resolve_components_or_raise"]

Kind = Literal["connectors", "plugins"]

_GROUPS: dict[str, str] = {"connectors": _discovery.CONNECTORS, "plugins": _discovery.PLUGINS}
_NOUN = {"connectors": "connector", "plugins": "plugin"}


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """An enabled component: its name, its class and its validated config."""

    name: str
    cls: type[Any]
    config: BaseModel


_BOOL = TypeAdapter(bool)


def enabled_flag(value: Any) -> bool | None:
    """What a section's ``enabled`` value says: a boolean, or a string read as one the
    way every other yes/no setting is (``"true"``, ``"no"``, ``"0"``...); None for
    anything else (a number is no yes/no here either)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return _BOOL.validate_python(value)
        except ValidationError:
            return None
    return None


def _is_enabled(raw: Mapping[str, Any], path: str, problems: list[ConfigProblem]) -> bool:
    enabled = enabled_flag(raw.get("enabled", True))
    if enabled is None:
        found = toml_type(raw.get("enabled"))
        problems.append(ConfigProblem(f"{path}.enabled", f"expected a boolean, got {found}"))
        return False
    return enabled


def resolve_components(
    kind: Kind, sections: Mapping[str, Mapping[str, Any]], *, only: set[str] | None = None
) -> tuple[list[ComponentSpec], list[ConfigProblem]]:
    """Load the enabled components of ``kind`` and validate their sections.

    Args:
        kind: ``"connectors"`` or ``"plugins"``.
        sections: the raw tables from the settings.
        only: if given, resolve just these names (e.g. only the console for ``chat``).

    Returns:
        The specs of the components that resolved, and every problem found.
    """
    group, noun = _GROUPS[kind], _NOUN[kind]
    specs: list[ComponentSpec] = []
    problems: list[ConfigProblem] = []
    for name, raw in sections.items():
        if only is not None and name not in only:
            continue
        path = f"{kind}.{name}"
        if not _is_enabled(raw, path, problems):
            continue
        try:
            cls = _discovery.load(group, name)
        except LookupError:
            known = ", ".join(sorted(_discovery.available(group))) or "none"
            problems.append(
                ConfigProblem(path, f"no {noun} named '{name}' is installed (installed: {known})")
            )
            continue
        except Exception as exc:  # any import failure of third-party code is reported
            problems.append(
                ConfigProblem(path, f"{noun} could not be loaded: {type(exc).__name__}: {exc}")
            )
            continue
        config_cls = getattr(cls, "Config", None)
        if not (isinstance(config_cls, type) and issubclass(config_cls, BaseModel)):
            problems.append(ConfigProblem(path, f"{noun} class has no pydantic Config class"))
            continue
        # Lax validation reads "8080" and "${VAR}" strings; what it would wrongly take
        # (true for a number, 1 for a boolean, nan) is found beside it.
        mistyped = mistyped_scalars(config_cls, raw, path)
        try:
            config = config_cls.model_validate(dict(raw))
        except ValidationError as exc:
            found = problems_from_validation(exc, prefix=path, model=config_cls)
            problems.extend(without_paths_of(mistyped, found))
            continue
        if mistyped:
            problems.extend(mistyped)
            continue
        specs.append(ComponentSpec(name=name, cls=cls, config=config))
    return specs, problems


def resolve_components_or_raise(
    kind: Kind, sections: Mapping[str, Mapping[str, Any]], *, only: set[str] | None = None
) -> list[ComponentSpec]:
    """Like ``resolve_components`` but raises ``ConfigError`` listing every problem."""
    specs, problems = resolve_components(kind, sections, only=only)
    if problems:
        raise ConfigError(problems)
    return specs
