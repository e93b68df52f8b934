"""The entry points are written twice; these tests keep the copies the same.

pyproject.toml declares them for installed distributions, and ``botkit._discovery``
repeats the built-in ones for a source checkout that was never ``pip install``-ed (it has
no entry-point metadata). A connector added to one and not the other would be found in one
kind of install only, so the two are compared here, and every target must import.
"""

from __future__ import annotations

import tomllib
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from botkit import _discovery

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    return project


def _declared() -> dict[str, dict[str, str]]:
    """pyproject's ``[project.entry-points."botkit.*"]`` groups."""
    groups: dict[str, dict[str, str]] = _project()["entry-points"]
    return {name: dict(group) for name, group in groups.items() if name.startswith("botkit.")}


def _targets() -> list[str]:
    """Every ``module:attribute`` pyproject names: entry points and console scripts."""
    scripts: dict[str, str] = _project()["scripts"]
    found = [target for group in _declared().values() for target in group.values()]
    return found + list(scripts.values())


def _resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_the_groups_are_the_discovery_constants() -> None:
    assert set(_declared()) == {_discovery.CONNECTORS, _discovery.PLUGINS}


def test_the_builtin_copy_matches_pyproject() -> None:
    # Names and targets: a renamed class in one copy is as wrong as a missing name.
    assert _discovery._BUILTIN == _declared()


@pytest.mark.parametrize("target", _targets())
def test_every_target_imports(target: str) -> None:
    assert callable(_resolve(target))
