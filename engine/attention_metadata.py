"""Per-step attention metadata shared by the model runner and the model layers.

A step's tokens are flattened: all prefill tokens first (sequences packed back to back),
then one token per decoding sequence. Attention layers split queries at
``num_prefill_tokens``: the prefill part goes to ``kernels.prefill_attention``, the decode
part to ``kernels.decode_attention``. Every token's K/V is first written to the paged cache
at ``slot_mapping``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["AttentionMetadata"]


@dataclass
class AttentionMetadata:
    slot_mapping: torch.Tensor  # [T] int64, -1 = don't write
    num_prefill_tokens: int
    # Prefill part (None when the step has no prefill tokens).
    prefill_cu_seqlens_q: torch.Tensor | None = None  # [Bp+1] int32
    prefill_context_lens: torch.Tensor | None = None  # [Bp] int32, cached + new tokens
    prefill_block_tables: torch.Tensor | None = None  # [Bp, max_blocks] int32
    # Decode part (None when no sequence decodes this step).
    decode_context_lens: torch.Tensor | None = None  # [Bd] int32, including the new token
    decode_block_tables: torch.Tensor | None = None  # [Bd, max_blocks] int32
    # Rows of the flattened hidden states whose logits are needed (last token per sequence
    # that samples this step), in output order.
    logits_indices: torch.Tensor | None = None  # [S] int64

    @property
    def num_decode_tokens(self) -> int:
        return 0 if self.decode_context_lens is None else int(self.decode_context_lens.numel())
