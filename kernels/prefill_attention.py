"""Prefill attention over packed variable-length queries, K/V read from the paged cache.

Math, for sequence b with q_b = cu[b+1] - cu[b] queries and n_b = context_lens[b] keys:
query i (0-based) sits at absolute position p_i = n_b - q_b + i and attends to keys
j <= p_i (causal) or to all j < n_b (non-causal):
    o_i = sum_j softmax_j(scale * <q_i, k_j>) v_j
so a prompt extends a cached prefix of n_b - q_b tokens (prefix reuse). The new tokens'
K/V must already be in the cache (``write_kv_cache``). Key j of sequence b lives at slot
block_tables[b, j // page] * page + j % page. GQA: query head h reads KV head h // (Hq/Hk).
The kernel itself is in ``kernels._attention_fwd`` (shared with varlen attention).
"""

from __future__ import annotations

import torch

from kernels._attention_common import validate_prefill
from kernels._attention_fwd import attention_fwd

__all__ = ["prefill_attention_triton"]


def prefill_attention_triton(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    context_lens: torch.Tensor,
    block_tables: torch.Tensor,
    scale: float,
    causal: bool = True,
) -> torch.Tensor:
    """Causal (or full) GQA flash attention for packed prompts over a paged KV cache.

    Args:
        q: ``[Tq, Hq, D]`` packed queries of all sequences.
        k_cache: ``[num_blocks, block_size, Hk, D]`` paged keys (same dtype as ``q``).
        v_cache: like ``k_cache``.
        cu_seqlens_q: ``[B+1]`` int32 cumulative query counts (``cu[0] == 0``,
            ``cu[B] == Tq``); a sequence may have 0 queries.
        context_lens: ``[B]`` int32 keys per sequence, >= its query count.
        block_tables: ``[B, max_blocks]`` int32 page ids per sequence.
        scale: softmax scale, usually ``D ** -0.5``.
        causal: mask keys after each query's position.

    Returns:
        ``[Tq, Hq, D]`` attention output in ``q``'s dtype.

    Raises:
        ValueError: on a bad shape, dtype, layout, device or argument. Tensor values are
        not read (that would sync the GPU); out-of-range values are masked in the kernel.
    """
    dims, scale = validate_prefill(
        q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale
    )
    if block_tables.shape[1] == 0:
        return torch.zeros_like(q)  # no pages: every row sees no key
    out = torch.empty_like(q)
    attention_fwd(
        q,
        k_cache,
        v_cache,
        out,
        cu_seqlens_q,
        context_lens,
        block_tables,
        scale,
        bool(causal),
        dims.num_kv_heads,
    )
    return out
