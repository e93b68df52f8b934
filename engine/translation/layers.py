"""Encoder-decoder building blocks on ``engine.layers`` and ``kernels``.

Attention always runs on packed, unpadded tokens: encoder self-attention and
cross-attention through ``kernels.varlen_attention`` (packing replaces the padding mask),
decoder self-attention through ``kernels.write_kv_cache`` + ``kernels.decode_attention``
over a contiguous per-row cache seen as pages (see ``engine.translation.state``).
LayerNorm has no kernel of its own: ``F.layer_norm`` is one fused op on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import kernels
from engine.errors import UnsupportedModelError
from engine.layers import Linear, MergedLinear, QKVLinear
from engine.translation.state import DecodeMeta

__all__ = [
    "CrossAttention",
    "LayerNorm",
    "SelfAttention",
    "activation_fn",
    "fairseq_positions",
    "marian_positions",
]


class LayerNorm(nn.Module):
    """``nn.LayerNorm`` with our parameter conventions (no init, loaded afterwards)."""

    def __init__(self, hidden_size: int, eps: float, *, dtype: torch.dtype) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(hidden_size, dtype=dtype), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(hidden_size, dtype=dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[T, H] -> [T, H]."""
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The HF ``ACT2FN`` activation called ``name``.

    Raises:
        UnsupportedModelError: an activation outside ``config.ACTIVATIONS``.
    """
    if name in ("swish", "silu"):
        return F.silu
    if name == "gelu":
        return F.gelu  # exact (erf) GELU, as HF's "gelu"
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise UnsupportedModelError(f"activation {name!r} is not supported")


def marian_positions(num_positions: int, dim: int) -> torch.Tensor:
    """Marian's table: sin of even-index angles in the first half, cos in the second.

    Computed like HF (float64 numpy angles, rounded to float32) so fp32 parity is exact.
    """
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angles = pos / np.power(10000, 2 * (j // 2) / dim)  # [P, dim]
    out = torch.empty(num_positions, dim, dtype=torch.float32)
    half = dim // 2 if dim % 2 == 0 else dim // 2 + 1
    out[:, :half] = torch.from_numpy(np.sin(angles[:, 0::2])).float()
    out[:, half:] = torch.from_numpy(np.cos(angles[:, 1::2])).float()
    return out


def fairseq_positions(num_positions: int, dim: int, padding_idx: int) -> torch.Tensor:
    """The tensor2tensor table of fairseq / M2M100 (row ``padding_idx`` is zero)."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.int64).float() * -step)
    angles = torch.arange(num_positions, dtype=torch.int64).float()[:, None] * freqs[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    table[padding_idx] = 0
    return table


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[T, H*D] (possibly a strided split view) -> contiguous [T, H, D] for the kernels."""
    return x.reshape(x.shape[0], num_heads, -1).contiguous()


class SelfAttention(nn.Module):
    """Multi-head self-attention with biases (HF ``q/k/v/out_proj``), merged q/k/v."""

    def __init__(self, hidden: int, num_heads: int, *, dtype: torch.dtype) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv_proj = QKVLinear(
            hidden, self.head_dim, num_heads, num_heads, bias=True, dtype=dtype
        )
        self.out_proj = Linear(hidden, hidden, bias=True, dtype=dtype)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv_proj(x).chunk(3, dim=-1)  # each [T, H]
        return _heads(q, self.num_heads), _heads(k, self.num_heads), _heads(v, self.num_heads)

    def forward(self, x: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
        """Bidirectional attention within packed sequences: x [T, H] -> [T, H]."""
        q, k, v = self._qkv(x)
        out = kernels.varlen_attention(q, k, v, cu_seqlens, cu_seqlens, self.scale, causal=False)
        result: torch.Tensor = self.out_proj(out.reshape(x.shape[0], -1))
        return result

    def decode(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], meta: DecodeMeta
    ) -> torch.Tensor:
        """One new token per row, attending to the row's cached tokens and itself.

        x [N, H] -> [N, H]; the new K/V go into the cache at ``meta.slots``.
        """
        q, k, v = self._qkv(x)
        k_cache, v_cache = cache
        kernels.write_kv_cache(k, v, k_cache, v_cache, meta.slots)
        out = kernels.decode_attention(
            q, k_cache, v_cache, meta.block_tables, meta.context_lens, self.scale
        )
        result: torch.Tensor = self.out_proj(out.reshape(x.shape[0], -1))
        return result


class CrossAttention(nn.Module):
    """Decoder-to-encoder attention; K/V are projected once per source (``kv``)."""

    def __init__(self, hidden: int, num_heads: int, *, dtype: torch.dtype) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden // num_heads
        self.scale = self.head_dim**-0.5
        self.q_proj = Linear(hidden, hidden, bias=True, dtype=dtype)
        self.kv_proj = MergedLinear(hidden, [hidden, hidden], bias=True, dtype=dtype)
        self.out_proj = Linear(hidden, hidden, bias=True, dtype=dtype)

    def kv(self, encoder_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output [S, H] -> (k, v), each [S, heads, D]."""
        k, v = self.kv_proj(encoder_out).chunk(2, dim=-1)
        return _heads(k, self.num_heads), _heads(v, self.num_heads)

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        cu_seqlens_q: torch.Tensor,
        cu_seqlens_k: torch.Tensor,
    ) -> torch.Tensor:
        """x [N, H]: the rows of sentence b (its beams) attend to its source tokens."""
        q = _heads(self.q_proj(x), self.num_heads)
        out = kernels.varlen_attention(
            q, kv[0], kv[1], cu_seqlens_q, cu_seqlens_k, self.scale, causal=False
        )
        result: torch.Tensor = self.out_proj(out.reshape(x.shape[0], -1))
        return result
