"""Counters of what the engine actually computed (for tests, benchmarks and metrics)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineLoad", "EngineStats"]


@dataclass(frozen=True, slots=True)
class EngineStats:
    """A snapshot of cumulative engine counters since the engine was built.

    Attributes:
        steps: model steps run.
        computed_tokens: tokens whose K/V the model computed (prefill chunks + decodes).
        prompt_tokens_computed: of those, tokens at prompt positions — what prefix caching
            saves. A preempted sequence's recompute counts again.
        prefix_query_tokens: prompt tokens looked up in the prefix cache at first admission.
        prefix_hit_tokens: of those, tokens served from the cache instead of computed.
        preemptions: sequences preempted (by recompute) so far.
    """

    steps: int = 0
    computed_tokens: int = 0
    prompt_tokens_computed: int = 0
    prefix_query_tokens: int = 0
    prefix_hit_tokens: int = 0
    preemptions: int = 0


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """What the engine holds right now.

    Attributes:
        running: sequences being generated (in the running batch).
        waiting: sequences queued for admission (new, or preempted).
        kv_blocks: KV cache blocks in the pool.
        kv_blocks_free: of those, blocks no sequence holds (cached prefixes included:
            they are evicted when a block is needed).
    """

    running: int = 0
    waiting: int = 0
    kv_blocks: int = 0
    kv_blocks_free: int = 0
