"""State of one request as it moves through the engine.

A ``Sequence`` owns its token ids (prompt + generated), how many of them already have K/V
in the paged cache (``num_computed_tokens``), and its block table. Preemption by
recompute only resets ``num_computed_tokens`` and the block table: generated tokens are
kept, so the resumed sequence continues exactly where it was.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.sampling import SamplingParams

if TYPE_CHECKING:
    import torch

__all__ = ["FinishReason", "Sequence", "SequenceStatus"]


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class FinishReason(enum.StrEnum):
    """Why a request ended: ``stop`` (EOS / stop string), ``length`` (token limit or context
    full), ``abort`` (cancelled by the caller), ``error`` (the request failed)."""

    STOP = "stop"
    LENGTH = "length"
    ABORT = "abort"
    ERROR = "error"


@dataclass(eq=False)
class Sequence:
    """One request's tokens, cache position and bookkeeping.

    Attributes:
        request_id: caller-chosen id, unique among live requests.
        prompt_token_ids: the tokenized prompt.
        params: validated sampling parameters.
        output_token_ids: generated tokens so far.
        num_computed_tokens: tokens whose K/V are in the cache (prefix hits included).
        block_table: physical KV block ids, in position order.
        num_cached_tokens: prompt tokens served from the prefix cache at first admission.
        max_total_tokens: hard cap on prompt + output (context length / KV pool size).
    """

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    max_total_tokens: int
    eos_token_ids: frozenset[int] = frozenset()
    arrival_time: float = field(default_factory=time.monotonic)
    output_token_ids: list[int] = field(default_factory=list)
    status: SequenceStatus = SequenceStatus.WAITING
    finish_reason: FinishReason | None = None
    error: Exception | None = None
    num_computed_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    # Hashes of this sequence's full blocks, in order (prefix-cache keys); kept across
    # preemption because they depend only on token ids.
    block_hashes: list[bytes] = field(default_factory=list)
    num_cached_tokens: int = 0
    num_preemptions: int = 0
    first_scheduled_time: float | None = None
    first_token_time: float | None = None
    finished_time: float | None = None
    # Device-side sampler state (seeded generator, seen-token mask), owned by the runner.
    generator: torch.Generator | None = None
    seen_mask: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._all_token_ids: list[int] = list(self.prompt_token_ids)

    @property
    def token_ids(self) -> list[int]:
        """Prompt followed by generated tokens (do not mutate; use ``append_token``)."""
        return self._all_token_ids

    @property
    def num_tokens(self) -> int:
        return len(self._all_token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    @property
    def num_uncomputed_tokens(self) -> int:
        return self.num_tokens - self.num_computed_tokens

    def append_token(self, token_id: int) -> None:
        """Record a sampled token (its K/V is computed at the next step)."""
        self.output_token_ids.append(token_id)
        self._all_token_ids.append(token_id)

    def check_token_stop(self) -> FinishReason | None:
        """Token-level stop after the last append: EOS, max_new_tokens or context full."""
        if not self.output_token_ids:
            return None
        last = self.output_token_ids[-1]
        p = self.params
        if not p.ignore_eos and last in self.eos_token_ids:
            return FinishReason.STOP
        if last in p.stop_token_ids:
            return FinishReason.STOP
        if self.num_output_tokens >= p.max_new_tokens or self.num_tokens >= self.max_total_tokens:
            return FinishReason.LENGTH
        return None
