"""The built-in ``handoff`` plugin: "/human" hands the conversation to a colleague,
"/bot" gives it back, and an optional webhook tells the agents' tool.

Enable it with a ``[plugins.handoff]`` table (see ``HandoffConfig``).
"""

from __future__ import annotations

from botkit.handoff.config import HandoffConfig
from botkit.handoff.plugin import (
    HANDOFF_GROUP,
    HandoffHandler,
    HandoffPlugin,
    ReturnToBotMiddleware,
)

__all__ = [
    "HANDOFF_GROUP",
    "HandoffConfig",
    "HandoffHandler",
    "HandoffPlugin",
    "ReturnToBotMiddleware",
]
