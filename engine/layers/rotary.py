"""Rotary position embedding (HF rotate-half layout) on the kernels."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import kernels

__all__ = ["RotaryEmbedding"]


class RotaryEmbedding(nn.Module):
    """Holds the cos/sin table once per model and rotates q and k in place.

    The table is float32 whatever the model dtype (bf16 angles at long positions lose
    several bits), and it is a non-persistent buffer: never loaded, never saved, and it
    follows the model across devices.
    """

    cos_sin: torch.Tensor

    def __init__(
        self,
        head_dim: int,
        max_position: int,
        theta: float,
        scaling: dict[str, Any] | None,
        *,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        device = device if device is not None else torch.get_default_device()
        table = kernels.rope_cos_sin(head_dim, max_position, theta, scaling, device)
        self.register_buffer("cos_sin", table, persistent=False)  # [max_position, head_dim]

    def forward(self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> None:
        """Rotate q [T, Hq, D] and k [T, Hk, D] in place at positions [T] (int64)."""
        kernels.apply_rope_(q, k, positions, self.cos_sin)
