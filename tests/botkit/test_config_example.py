"""config.example.toml says what it does: defaults, except where it says otherwise."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from botkit.config import Settings
from connectors.web.config import WebConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"
NOT_DEFAULT = "Not the default"


def _set_keys(table: dict[str, Any], model: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, value in the file, default) of every core key the file sets."""
    found = []
    for key, value in table.items():
        if key in ("connectors", "plugins"):
            continue
        name = next((n for n, f in type(model).model_fields.items() if key in (n, f.alias)), key)
        default = getattr(model, name)
        if isinstance(value, dict):
            found += _set_keys(value, default, f"{path}{key}.")
        else:
            found.append((f"{path}{key}", value, default))
    return found


def _comment_above(lines: list[str], section: str, key: str) -> str:
    """The comment lines right above ``key = ...`` in ``[section]``."""
    at = lines.index(f"[{section}]")
    at = next(i for i in range(at, len(lines)) if re.match(rf"{re.escape(key)}\s*=", lines[i]))
    above = []
    while lines[at - 1].startswith("#"):
        at -= 1
        above.append(lines[at])
    return "\n".join(reversed(above))


def test_every_core_key_set_to_other_than_its_default_says_so() -> None:
    # The header promised "every core key with its default value" while [metrics]
    # listen, "" by default (off), was set to "127.0.0.1:9464" without a word.
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    differ = [
        path
        for path, value, default in _set_keys(data, Settings())
        if value != (list(default) if isinstance(default, tuple) else default)
    ]
    assert differ == ["metrics.listen"]  # the one the header names
    for path in differ:
        section, key = path.rsplit(".", 1)
        assert NOT_DEFAULT in _comment_above(lines, section, key), path
    assert "[metrics] listen" in "".join(lines[:3])


def test_every_web_key_is_documented_somewhere() -> None:
    # max_tracked_ips and send_queue_size were in neither the example nor docs/web.md.
    example = EXAMPLE.read_text(encoding="utf-8")
    section = re.split(r"\n#? ?\[", example[example.index("[connectors.web]") :])[0]
    docs = (REPO / "docs" / "web.md").read_text(encoding="utf-8")
    undocumented = [
        name
        for name in WebConfig.model_fields
        if not re.search(rf"^#?\s*{name}\s*=", section, re.M) and name not in docs
    ]
    assert undocumented == []


def test_the_example_documents_the_web_keys_it_lists_with_their_defaults() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    section = re.split(r"\n#? ?\[", example[example.index("[connectors.web]") :])[0]
    for name in ("max_tracked_ips", "send_queue_size"):
        match = re.search(rf"^# {name} = (\d+) ", section, re.M)
        assert match, name
        assert int(match.group(1)) == WebConfig.model_fields[name].default
