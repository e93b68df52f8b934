"""Attention over packed, unpadded sequences with contiguous K/V (no KV cache).

Math, for sequence b with queries q[cu_q[b]:cu_q[b+1]] (q_b of them) and keys/values
k, v[cu_k[b]:cu_k[b+1]] (n_b of them):
    o_i = sum_j softmax_j(scale * <q_i, k_j>) v_j
over all j < n_b (``causal=False``: encoder self-attention, cross-attention over encoder
outputs) or over j <= n_b - q_b + i (``causal=True``: queries aligned to the end of the
keys, i.e. plain causal self-attention when q_b == n_b). Packing replaces the padding
mask. Rows with no visible key (n_b == 0) give 0. GQA: Hq must be a multiple of Hk.
The kernel itself is in ``kernels._attention_fwd`` (shared with prefill attention).
"""

from __future__ import annotations

import torch

from kernels._attention_common import validate_varlen
from kernels._attention_fwd import attention_fwd

__all__ = ["varlen_attention_triton"]


def varlen_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    scale: float,
    causal: bool = False,
) -> torch.Tensor:
    """Flash attention over packed variable-length sequences (Triton).

    Args:
        q: ``[Tq, Hq, D]`` packed queries.
        k: ``[Tk, Hk, D]`` packed keys (same dtype as ``q``).
        v: ``[Tk, Hk, D]`` packed values.
        cu_seqlens_q: ``[B+1]`` int32 cumulative query counts.
        cu_seqlens_k: ``[B+1]`` int32 cumulative key counts.
        scale: softmax scale, usually ``D ** -0.5``.
        causal: mask keys after each query's (end-aligned) position.

    Returns:
        ``[Tq, Hq, D]`` attention output in ``q``'s dtype.

    Raises:
        ValueError: on a bad shape, dtype, layout, device or argument.
    """
    dims, scale = validate_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, scale)
    out = torch.empty_like(q)
    attention_fwd(
        q, k, v, out, cu_seqlens_q, cu_seqlens_k, None, scale, bool(causal), dims.num_kv_heads
    )
    return out
