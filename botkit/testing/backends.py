"""The lifecycle every test's own generation backend shares: nothing to start or close,
always ready. A test backend subclasses ``ScriptBackend`` and gives ``name`` and
``generate`` (a script, a stall, a failure on cue)."""

from __future__ import annotations

__all__ = ["ScriptBackend"]


class ScriptBackend:
    """The non-generating part of a ``GenerationBackend`` for test backends."""

    name = "script"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ready(self) -> bool:
        return True
