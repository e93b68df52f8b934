"""The lifecycle every test's own generation backend shares: nothing to start or close,
always ready. A test backend subclasses ``ScriptBackend`` and gives ``name`` and
``generate`` (a script, a stall, a failure on cue)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import GenerationRequest, finish_reason
from botkit.backends.stream import GenerationStream

__all__ = ["RecordingEcho", "ScriptBackend"]


class ScriptBackend:
    """The non-generating part of a ``GenerationBackend`` for test backends."""

    name = "script"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ready(self) -> bool:
        return True


class RecordingEcho(EchoBackend):
    """The echo backend, keeping every request it gets (what the model was shown)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[GenerationRequest] = []

    @property
    def systems(self) -> list[str]:
        """Each request's system prompt ("" for a request without one)."""
        return [
            r.messages[0].content if r.messages and r.messages[0].role == "system" else ""
            for r in self.requests
        ]

    def generate(self, request: GenerationRequest) -> GenerationStream:
        return GenerationStream(lambda stream: self._recorded(request, stream))

    async def _recorded(
        self, request: GenerationRequest, stream: GenerationStream
    ) -> AsyncGenerator[str, None]:
        # Recorded once the reply is read, as a generator backend would: a reply that
        # never reaches delivery (superseded) leaves no request.
        self.requests.append(request)
        async with contextlib.aclosing(super().generate(request)) as echo:
            async for delta in echo:
                yield delta
        stream.finish_reason = finish_reason(echo)
