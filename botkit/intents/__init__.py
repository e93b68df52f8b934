"""The built-in ``intents`` plugin: recognizes what a short message asks for (whole-word
keywords, then similarity to example phrasings, in any language) and answers with a
fixed reply, a hand-off, a goodbye, or guidance for the generation model.

Enable it with a ``[plugins.intents]`` table and ``[[plugins.intents.intent]]`` tables
(see ``IntentsConfig``).
"""

from __future__ import annotations

from botkit.intents.config import ButtonConfig, IntentConfig, IntentsConfig
from botkit.intents.matching import IntentMatch, IntentMatcher, IntentPattern
from botkit.intents.plugin import (
    INTENTS_GROUP,
    STATE_KEY,
    IntentsHandler,
    IntentsPlugin,
    LabelReplyMiddleware,
)

__all__ = [
    "INTENTS_GROUP",
    "STATE_KEY",
    "ButtonConfig",
    "IntentConfig",
    "IntentMatch",
    "IntentMatcher",
    "IntentPattern",
    "IntentsConfig",
    "IntentsHandler",
    "IntentsPlugin",
    "LabelReplyMiddleware",
]
