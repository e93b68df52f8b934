"""Token embedding and LM head (optionally tied to the embedding)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers._cpu_gemm import linear

__all__ = ["LMHead", "VocabEmbedding"]


class VocabEmbedding(nn.Module):
    """Token ids [T] int64 -> hidden states [T, H]."""

    def __init__(self, vocab_size: int, hidden_size: int, *, dtype: torch.dtype) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.weight = nn.Parameter(
            torch.empty(vocab_size, hidden_size, dtype=dtype), requires_grad=False
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[T] -> [T, H]."""
        return F.embedding(input_ids, self.weight)


class LMHead(nn.Module):
    """Hidden states [S, H] -> float32 logits [S, V].

    With ``tie_to`` the head reuses the embedding's parameter (one tensor in memory, and
    the checkpoint's ``lm_head.weight``, if any, is not loaded).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        *,
        dtype: torch.dtype,
        tie_to: VocabEmbedding | None = None,
    ) -> None:
        super().__init__()
        self.tied = tie_to is not None
        if tie_to is not None:
            self.weight = tie_to.weight
        else:
            self.weight = nn.Parameter(
                torch.empty(vocab_size, hidden_size, dtype=dtype), requires_grad=False
            )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[S, H] -> [S, V] float32 (samplers want fp32 whatever the model dtype)."""
        return linear(hidden, self.weight, None).float()
