"""The local inference engine as a botkit generation backend.

Imported only when the configuration asks for the engine (it imports torch). The engine
raises its own errors; they are mapped here: ``EngineBusyError`` (queue timeout or full
queue) -> ``BackendBusyError`` so the bot answers politely, everything else ->
``BackendError`` carrying the engine's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator
from typing import Any

from botkit.backends.protocol import GenerationRequest
from botkit.config.settings import EngineSettings
from botkit.errors import BackendBusyError, BackendError
from engine import (
    AsyncEngine,
    EngineBusyError,
    EngineConfig,
    EngineError,
    FinalRecord,
    LLMEngine,
    SamplingParams,
    TextDelta,
)

__all__ = ["LocalEngineBackend", "create_backend"]

log = logging.getLogger("botkit.backends.engine")


class LocalEngineBackend:
    """Streams replies from an in-process ``engine.AsyncEngine``.

    Args:
        settings: the ``[backend.engine]`` settings (model, dtype, device, sampling
            defaults, queue timeout). Fields ``max_num_seqs`` / ``kv_cache_blocks`` are
            read from it too when the settings model has them.
        max_num_seqs: sequences decoding together (``None``: the engine's device default).
        kv_cache_blocks: exact KV pool size (``None``: sized from memory).
        engine_config: full engine knobs; overrides the two above when given.
    """

    name = "engine"

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        max_num_seqs: int | None = None,
        kv_cache_blocks: int | None = None,
        engine_config: EngineConfig | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        s = self.settings
        self.engine_config = engine_config or EngineConfig(
            max_num_seqs=max_num_seqs or getattr(s, "max_num_seqs", None),
            num_kv_blocks=kv_cache_blocks or getattr(s, "kv_cache_blocks", None),
            queue_timeout_s=s.queue_timeout_seconds,
            gpu_memory_utilization=s.gpu_memory_utilization,
            cuda_graphs=s.cuda_graphs,
            overlap_steps=s.overlap_steps,
        )
        self._engine: AsyncEngine | None = None
        self._count_tokenizer: Any = None
        self.last_record: FinalRecord | None = None

    @property
    def engine(self) -> AsyncEngine | None:
        return self._engine

    async def start(self) -> None:
        """Load the model (in a worker thread) and start the engine thread.

        Raises:
            BackendError: the model is missing, unreadable or does not fit, or the
                configured sampling defaults are out of the engine's range.
        """
        if self._engine is not None:
            return
        s = self.settings
        # Settings validation mirrors the engine's bounds; checking the defaults here too
        # (before a model loads) keeps a drifted or hand-built settings object from
        # starting a bot whose every reply would then fail.
        try:
            SamplingParams(
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=s.top_k,
                repetition_penalty=s.repetition_penalty,
                max_new_tokens=s.max_new_tokens,
            )
        except EngineError as exc:
            raise BackendError(f"[backend.engine] has invalid sampling defaults: {exc}") from exc
        try:
            engine = await asyncio.to_thread(
                LLMEngine.from_pretrained,
                s.model,
                dtype=s.dtype,
                device=s.device,
                config=self.engine_config,
            )
        except EngineError as exc:  # the loader's message names the path and the remedy
            raise BackendError(f"the local engine could not load model {s.model!r}: {exc}") from exc
        except Exception as exc:  # out of memory, a broken install, a bad config value...
            raise BackendError(
                f"the local engine could not start model {s.model!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._count_tokenizer = copy.deepcopy(engine.tokenizer)  # the engine thread owns its own
        self._engine = AsyncEngine(engine)
        self._engine.start()
        log.info(
            "engine: %s loaded on %s (%d KV blocks)", s.model, engine.device, engine.num_kv_blocks
        )

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()

    async def ready(self) -> bool:
        return self._engine is not None and self._engine.running

    def engine_report(self) -> dict[str, float] | None:
        """The engine's counters and load for metrics (``botkit.metrics``), None before
        ``start``: ``steps``, ``computed_tokens``, ``prompt_tokens_computed``,
        ``prefix_query_tokens``, ``prefix_hit_tokens``, ``preemptions`` (cumulative),
        and ``running``, ``waiting``, ``kv_blocks``, ``kv_blocks_free`` (now)."""
        engine = self._engine
        if engine is None:
            return None
        stats, load = engine.engine.stats, engine.engine.load
        return {
            "steps": stats.steps,
            "computed_tokens": stats.computed_tokens,
            "prompt_tokens_computed": stats.prompt_tokens_computed,
            "prefix_query_tokens": stats.prefix_query_tokens,
            "prefix_hit_tokens": stats.prefix_hit_tokens,
            "preemptions": stats.preemptions,
            "running": load.running,
            "waiting": load.waiting,
            "kv_blocks": load.kv_blocks,
            "kv_blocks_free": load.kv_blocks_free,
        }

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's tokenizer (for history budgets)."""
        if self._count_tokenizer is None:
            return max(1, len(text) // 4)
        return len(self._count_tokenizer.encode(text, add_special_tokens=False))

    def sampling_params(self, request: GenerationRequest) -> SamplingParams:
        """The request's limits, falling back to the configured defaults.

        Raises:
            BackendError: a value is out of range (the engine's message says which).
        """
        s = self.settings

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        try:
            return SamplingParams(
                temperature=pick(request.temperature, s.temperature),
                top_p=pick(request.top_p, s.top_p),
                top_k=pick(request.top_k, s.top_k),
                repetition_penalty=pick(request.repetition_penalty, s.repetition_penalty),
                max_new_tokens=pick(request.max_new_tokens, s.max_new_tokens),
                stop=tuple(request.stop),
                seed=request.seed,
            )
        except EngineError as exc:
            raise BackendError(str(exc)) from exc

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Stream the reply's text deltas.

        Raises:
            BackendBusyError: the engine queue is full or the request timed out in it.
            BackendError: not started, invalid request, or the engine failed.
        """
        engine = self._engine
        if engine is None:
            raise BackendError("the local engine is not started")
        params = self.sampling_params(request)
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            # aclosing: when our consumer closes us, close the engine stream too, so the
            # sequence is aborted at once instead of whenever the GC finalizes it.
            async with contextlib.aclosing(engine.submit(messages, params)) as stream:
                async for item in stream:
                    if isinstance(item, TextDelta):
                        yield item.text
                    else:
                        self.last_record = item
        except EngineBusyError as exc:
            raise BackendBusyError(str(exc)) from exc
        except EngineError as exc:
            raise BackendError(str(exc)) from exc


def create_backend(settings: EngineSettings) -> LocalEngineBackend:
    """Factory used by ``botkit.backends.create_backend`` (the model loads in ``start``)."""
    return LocalEngineBackend(settings)
