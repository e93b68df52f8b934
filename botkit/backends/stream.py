"""The reply stream the built-in backends return: text deltas, then why the reply ended."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

__all__ = ["GenerationStream"]


class GenerationStream:
    """An async iterator of a reply's text deltas whose ``finish_reason`` is set once the
    reply has ended (``botkit.backends.protocol.ReportsFinish``).

    Args:
        start: makes the deltas' generator (an async generator function's body runs
            only once the first delta is asked for, so a backend's errors still surface
            while iterating), given this stream to set ``finish_reason`` on before the
            generator ends.
    """

    def __init__(self, start: Callable[[GenerationStream], AsyncGenerator[str, None]]) -> None:
        self.finish_reason: str | None = None
        self._deltas = start(self)

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> str:
        return await self._deltas.__anext__()

    async def aclose(self) -> None:
        """Stop the reply: closes the deltas' generator, which releases what the request
        holds (the engine aborts its sequence, an HTTP response is closed)."""
        await self._deltas.aclose()
