"""botkit's inference engine: continuous batching over a paged KV cache on our kernels.

Typical use::

    engine = await AsyncEngine.load("smollm2", config=EngineConfig(queue_timeout_s=30))
    async for item in engine.submit([{"role": "user", "content": "Hi"}],
                                    SamplingParams(temperature=0.7, max_new_tokens=64)):
        ...  # TextDelta(text) items, then one FinalRecord

``engine`` never imports botkit; ``botkit.backends.local_engine`` adapts it.
"""

from __future__ import annotations

from typing import Any

from engine.async_engine import AsyncEngine, Delta, FinalRecord, TextDelta
from engine.block_manager import BlockManager
from engine.engine_config import EngineConfig
from engine.errors import EngineError, ModelLoadError
from engine.llm_engine import LLMEngine, RequestOutput
from engine.request import FinishReason, Sequence, SequenceStatus
from engine.request_errors import (
    EngineBusyError,
    EngineDeadError,
    EngineRequestError,
    InvalidRequestError,
    StepFailedError,
)
from engine.sampling import SamplingParams
from engine.scheduler import Scheduler, SchedulerConfig, SchedulerOutput
from engine.stats import EngineStats

__all__ = [
    "AsyncEngine",
    "BlockManager",
    "Delta",
    "EngineBusyError",
    "EngineConfig",
    "EngineDeadError",
    "EngineError",
    "EngineRequestError",
    "EngineStats",
    "FinalRecord",
    "FinishReason",
    "InvalidRequestError",
    "LLMEngine",
    "LoadedModel",
    "ModelLoadError",
    "RequestOutput",
    "SamplingParams",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerOutput",
    "Sequence",
    "SequenceStatus",
    "StepFailedError",
    "TextDelta",
    "load_model",
]


def __getattr__(name: str) -> Any:
    # The loader pulls in gguf/safetensors/transformers: import it only when asked for.
    if name in ("load_model", "LoadedModel"):
        from engine import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
