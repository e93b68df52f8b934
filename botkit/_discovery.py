"""Finding connectors and plugins through entry points.

One entry-point group per kind (``botkit.connectors``, ``botkit.plugins``); a component
is imported only when the config enables it, so a disabled Slack connector never imports
the Slack SDK.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

__all__ = ["CONNECTORS", "PLUGINS", "available", "load"]

CONNECTORS = "botkit.connectors"
PLUGINS = "botkit.plugins"

# The connectors shipped in this repository, used only when no installed distribution
# declares the name: running from a source checkout without ``pip install -e .`` has no
# entry-point metadata. Installed entry points always take precedence. A copy of
# pyproject.toml's [project.entry-points]: tests/botkit/test_entry_points.py keeps them equal.
_BUILTIN: dict[str, dict[str, str]] = {
    CONNECTORS: {
        "console": "connectors.console:ConsoleConnector",
        "web": "connectors.web:WebConnector",
        "slack": "connectors.slack:SlackConnector",
        "telegram": "connectors.telegram:TelegramConnector",
    },
    PLUGINS: {
        "feedback": "botkit.feedback:FeedbackPlugin",
        "handoff": "botkit.handoff:HandoffPlugin",
        "intents": "botkit.intents:IntentsPlugin",
        "knowledge": "botkit.knowledge:KnowledgePlugin",
    },
}


def available(group: str) -> dict[str, str]:
    """Names in ``group`` mapped to their ``module:attribute`` target."""
    found = dict(_BUILTIN.get(group, {}))
    for ep in entry_points(group=group):
        found[ep.name] = ep.value
    return found


def load(group: str, name: str) -> Any:
    """Import and return the object the entry point ``name`` of ``group`` points at.

    Raises:
        LookupError: nothing is registered under that name.
        Exception: whatever importing the component raises (e.g. a missing SDK).
    """
    for ep in entry_points(group=group, name=name):
        return ep.load()
    target = _BUILTIN.get(group, {}).get(name)
    if target is None:
        raise LookupError(name)
    module, _, attr = target.partition(":")
    obj: Any = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
