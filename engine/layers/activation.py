"""SwiGLU on the kernels."""

from __future__ import annotations

import torch
from torch import nn

import kernels

__all__ = ["SiluAndMul"]


class SiluAndMul(nn.Module):
    """``silu(gate) * up`` for the merged ``gate_up`` output [T, 2I] -> [T, I]."""

    def forward(self, gate_up: torch.Tensor) -> torch.Tensor:
        """[T, 2I] -> [T, I]."""
        return kernels.swiglu(gate_up)
