"""A deterministic backend that echoes the last user message, word by word.

Used by tests, benchmarks and demos on machines without a model. It streams like a real
model (one delta per word) so connectors' streaming paths are exercised too.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from botkit.backends.protocol import GenerationRequest
from botkit.backends.stream import GenerationStream
from botkit.config.settings import EchoSettings

__all__ = ["EchoBackend"]

# A word with the whitespace that follows it, so joining the deltas restores the text.
_WORDS = re.compile(r"\S+\s*|\s+")


class EchoBackend:
    """Replies ``prefix + last user message``, streamed one word per delta."""

    name = "echo"

    def __init__(self, settings: EchoSettings | None = None) -> None:
        self.settings = settings or EchoSettings()
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def ready(self) -> bool:
        return self._started

    def count_tokens(self, text: str) -> int:
        """Whitespace-separated words: the echo backend's notion of a token."""
        return len(text.split())

    def generate(self, request: GenerationRequest) -> GenerationStream:
        """Yield the prefix, then each word of the last user message; the stream's
        ``finish_reason`` is then "stop" (the echo has no token cap)."""
        return GenerationStream(lambda stream: self._words(request, stream))

    async def _words(
        self, request: GenerationRequest, stream: GenerationStream
    ) -> AsyncGenerator[str, None]:
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        delay = self.settings.word_delay_seconds
        if self.settings.prefix:
            yield self.settings.prefix
        for match in _WORDS.finditer(last):
            if delay:
                await asyncio.sleep(delay)
            yield match.group(0)
        stream.finish_reason = "stop"
