"""What every engine model is: a ``CausalLM`` module with a fixed forward signature."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from engine.attention_metadata import AttentionMetadata
from engine.config import ModelConfig
from engine.layers import KVCache, ShardId

__all__ = ["CausalLM"]


class CausalLM(nn.Module, ABC):
    """Base of the decoder-only models the runner drives.

    Subclasses set ``packed_modules_mapping`` (HF module name -> (our merged module name,
    shard id)) so the loader can fill merged projections from separate HF tensors, and may
    override :meth:`config_from_hf` for architecture rules that live outside config.json.
    """

    packed_modules_mapping: ClassVar[Mapping[str, tuple[str, ShardId]]] = {}
    # Checkpoint tensors that are not parameters here (recomputed buffers of old exports).
    ignored_weight_suffixes: ClassVar[tuple[str, ...]] = ("rotary_emb.inv_freq",)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @classmethod
    def config_from_hf(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Engine config for this architecture from a parsed HF ``config.json``."""
        return ModelConfig.from_hf_config(hf)

    def is_ignored_weight(self, name: str) -> bool:
        """True for checkpoint tensors the loader should skip (e.g. a tied ``lm_head``)."""
        if self.config.tie_word_embeddings and name == "lm_head.weight":
            return True
        return name.endswith(self.ignored_weight_suffixes)

    @abstractmethod
    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_caches: list[KVCache],
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        """Run one step.

        Args:
            input_ids: [T] int64, all prefill tokens first, then one per decoding sequence.
            positions: [T] int64 position of each token in its sequence.
            kv_caches: one (k_cache, v_cache) per layer, each [blocks, block_size, Hk, D];
                an empty list runs without a cache (fresh prompts only, for warm-up).
            meta: the step's attention metadata.

        Returns:
            float32 logits [S, vocab] for the rows ``meta.logits_indices`` (all T rows
            when it is None).
        """
