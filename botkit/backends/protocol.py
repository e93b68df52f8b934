"""The seam between the core and whatever produces replies (local engine, echo, HTTP).

The core only ever talks to these protocols, so it runs and is tested without torch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CUT_AT_LIMIT",
    "ChatMessage",
    "GenerationBackend",
    "GenerationRequest",
    "PromptLimits",
    "ReportsFinish",
    "Role",
    "Translator",
    "finish_reason",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What the core asks a backend for: a chat so far and sampling limits.

    ``None`` values mean "the backend's configured default".
    """

    messages: tuple[ChatMessage, ...]
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@runtime_checkable
class GenerationBackend(Protocol):
    """Turns a chat into a stream of text deltas.

    ``generate`` returns an async iterator; closing it (``aclose``) or cancelling the
    consuming task must release the request's resources. Overload is signalled with
    ``BackendBusyError``, anything else with ``BackendError``. An iterator that also
    says why the reply ended (``ReportsFinish``) lets the bot count replies cut at
    ``max_new_tokens`` (``botkit_replies_cut_total``).
    """

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> bool: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[str]: ...


# The finish reason of a reply the backend ended because it reached ``max_new_tokens``:
# the name the engine, OpenAI and every OpenAI-compatible server give it.
CUT_AT_LIMIT = "length"


@runtime_checkable
class ReportsFinish(Protocol):
    """Optional for the iterator ``GenerationBackend.generate`` returns: it says why the
    reply ended once it has (``botkit.backends.stream.GenerationStream`` does; the
    engine, OpenAI-compatible and echo backends return one).

    ``finish_reason`` is None until the stream has ended, and stays None for a stream
    that was closed early or failed. Then ``"stop"`` (the model ended it: end of
    sequence, a stop string) or ``CUT_AT_LIMIT`` (``"length"``: cut at
    ``max_new_tokens``, usually mid-sentence); a server may report others (OpenAI's
    ``"content_filter"``), passed on as it named them.
    """

    @property
    def finish_reason(self) -> str | None: ...


def finish_reason(stream: object) -> str | None:
    """Why the reply ``stream`` (from ``generate``) ended: see ``ReportsFinish``; None
    for a stream that does not say (a plain async generator)."""
    return stream.finish_reason if isinstance(stream, ReportsFinish) else None


@runtime_checkable
class StopsForGood(Protocol):
    """Optional for a generation backend: it can stop for good while the bot runs (the
    local engine, after its steps failed several times in a row: a broken device). Only
    a new process helps then, so the bot stops (``Bot.run`` raises ``BackendError``,
    ``botkit run`` exits 1) for its supervisor to start it again, instead of answering
    every customer with the fallback reply until someone notices."""

    def stopped_for_good(self) -> str | None:
        """Why the backend can no longer answer until the process restarts; None while
        it can (also before ``start`` and after ``close``)."""
        ...


@runtime_checkable
class PromptLimits(Protocol):
    """Optional for a generation backend: its context is bounded and it says by how much.

    The local engine holds a request's prompt and reply in its KV cache, so a prompt too
    long for it fails outright; the core shortens the history to fit (oldest turns first)
    when the backend has these methods. Backends without a known bound (echo, an HTTP
    server) simply do not provide them.
    """

    def max_prompt_tokens(self) -> int | None:
        """The most prompt tokens one request may have, leaving room for the configured
        ``max_new_tokens`` of reply; ``None`` while not known (before ``start``)."""
        ...

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens of the prompt ``messages`` become (chat template included).

        Raises:
            BackendError: the messages cannot be rendered into a prompt.
        """
        ...

    def check_prompt_room(self, system_prompt: str) -> None:
        """Fail when a request with ``system_prompt`` and a one-word message could never
        be answered (the bot calls it once started, with ``[bot] system_prompt``).

        Raises:
            BackendError: naming the setting that makes the context too small.
        """
        ...


@runtime_checkable
class Translator(Protocol):
    """Translates batches of texts between BCP-47 languages."""

    name: str

    def supports(self, source: str, target: str) -> bool: ...

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]: ...
