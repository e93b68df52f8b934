"""botkit: a self-hosted, multilingual customer-service bot framework.

Importing ``botkit`` is cheap on purpose: it loads no torch, no Slack or Telegram SDK and
no database driver. The main names are resolved lazily on first use::

    from botkit import Bot, load_settings

    async with Bot(load_settings("botkit.toml")) as bot:
        await bot.run()
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml takes it from here (a dynamic
# version), so a source checkout, an install and `botkit --version` never disagree.
__version__ = "0.1.0"

__all__ = [
    "Bot",
    "Context",
    "Handler",
    "Plugin",
    "PluginConfig",
    "Reply",
    "Settings",
    "StopPropagation",
    "__version__",
    "load_settings",
]

# name -> module that defines it; imported on first attribute access (PEP 562).
_LAZY = {
    "Bot": "botkit.bot",
    "Context": "botkit.pipeline",
    "Handler": "botkit.pipeline",
    "Plugin": "botkit.plugins",
    "PluginConfig": "botkit.plugins",
    "Reply": "botkit.pipeline",
    "Settings": "botkit.config",
    "StopPropagation": "botkit.pipeline",
    "load_settings": "botkit.config",
}

if TYPE_CHECKING:
    from botkit.bot import Bot
    from botkit.config import Settings, load_settings
    from botkit.pipeline import Context, Handler, Reply, StopPropagation
    from botkit.plugins import Plugin, PluginConfig


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'botkit' has no attribute {name!r}")
    return getattr(import_module(module), name)
