"""The built-in ``knowledge`` plugin: answers grounded in the company's documents.

Enable it with a ``[plugins.knowledge]`` table naming the files (see ``KnowledgeConfig``
and docs/plugins.md).
"""

from __future__ import annotations

from botkit.knowledge.config import KnowledgeConfig
from botkit.knowledge.documents import Passage
from botkit.knowledge.index import Hit, PassageIndex
from botkit.knowledge.library import Library, load_library
from botkit.knowledge.plugin import KNOWLEDGE_GROUP, KnowledgeHandler, KnowledgePlugin

__all__ = [
    "KNOWLEDGE_GROUP",
    "Hit",
    "KnowledgeConfig",
    "KnowledgeHandler",
    "KnowledgePlugin",
    "Library",
    "Passage",
    "PassageIndex",
    "load_library",
]
