"""Counters of what the engine actually computed (for tests, benchmarks and metrics)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineStats"]


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
