"""PyTorch references for the attention and KV-cache kernels.

Plain loops over sequences with dense torch math, used on CPU and as the ground truth in
tests. They read tensor values freely (this is the slow path) and so can reject bad
metadata that the Triton launchers can only mask. By default the math runs in fp32
(fp64 for fp64 inputs) and the output has the query's dtype; ``compute_dtype`` forces
another precision, e.g. the query's own dtype for the "same math in torch" error baseline.
Rows with no visible key give 0.
"""

from __future__ import annotations

import itertools

import torch

from kernels._attention_common import (
    validate_decode,
    validate_prefill,
    validate_varlen,
    validate_write_kv_cache,
)

__all__ = [
    "decode_attention_reference",
    "prefill_attention_reference",
    "varlen_attention_reference",
    "write_kv_cache_reference",
]


def _compute_dtype(x: torch.Tensor, compute_dtype: torch.dtype | None) -> torch.dtype:
    if compute_dtype is not None:
        return compute_dtype
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _lengths(cu: torch.Tensor, total: int, name: str) -> list[int]:
    if cu.dim() != 1 or cu.shape[0] < 1:
        raise ValueError(f"{name} must be 1-D with B+1 >= 1 elements, got {tuple(cu.shape)}")
    vals = [int(x) for x in cu.tolist()]
    if vals[0] != 0 or vals[-1] != total or any(b < a for a, b in itertools.pairwise(vals)):
        raise ValueError(f"{name} must rise from 0 to {total}, got {vals}")
    return vals


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    """q [M, Hq, D], k/v [N, Hk, D] -> [M, Hq, D] in ``dtype``; queries end-aligned."""
    m, num_q_heads, _ = q.shape
    n, num_kv_heads, _ = k.shape
    if n == 0:
        return q.new_zeros(q.shape, dtype=dtype)
    group = num_q_heads // num_kv_heads
    qh = q.to(dtype).transpose(0, 1)  # [Hq, M, D]
    kh = k.to(dtype).repeat_interleave(group, dim=1).transpose(0, 1)  # [Hq, N, D]
    vh = v.to(dtype).repeat_interleave(group, dim=1).transpose(0, 1)
    s = torch.matmul(qh, kh.transpose(1, 2)) * scale  # [Hq, M, N]
    if causal:
        pos = torch.arange(m, device=q.device)[:, None] + (n - m)
        s = s.masked_fill(torch.arange(n, device=q.device)[None, :] > pos, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)  # all-masked rows -> 0
    return torch.matmul(p, vh).transpose(0, 1)  # [M, Hq, D]


def _gather_pages(cache: torch.Tensor, table: torch.Tensor, n: int) -> torch.Tensor:
    """Keys/values 0..n-1 of one sequence from a paged cache -> [n, Hk, D]."""
    num_blocks, page = cache.shape[0], cache.shape[1]
    pos = torch.arange(n, device=cache.device)
    pages = pos // page
    if n > 0 and int(pages[-1]) >= table.shape[0]:
        raise ValueError(f"context of {n} tokens needs more than {table.shape[0]} pages")
    ids = table.long()[pages]
    if n > 0 and (int(ids.min()) < 0 or int(ids.max()) >= num_blocks):
        raise ValueError(f"block table entries must lie in [0, {num_blocks})")
    # index_select, not advanced indexing: on CPU `flat[idx]` costs ~2.3 ms per call and
    # grows with the whole cache size, index_select ~3 us (it dominated CPU decode).
    flat = cache.reshape(num_blocks * page, *cache.shape[2:])
    return flat.index_select(0, ids * page + pos % page)


def write_kv_cache_reference(
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Write ``k``/``v`` ``[T, Hk, D]`` rows into cache slots in place; slot -1 skips."""
    validate_write_kv_cache(k, v, k_cache, v_cache, slot_mapping, reference=True)
    num_slots = k_cache.shape[0] * k_cache.shape[1]
    slots = slot_mapping.long()
    if slots.numel() and (int(slots.min()) < -1 or int(slots.max()) >= num_slots):
        raise ValueError(f"write_kv_cache: slots must be -1 or lie in [0, {num_slots})")
    keep = slots >= 0
    kc = k_cache.view(num_slots, *k_cache.shape[2:])
    vc = v_cache.view(num_slots, *v_cache.shape[2:])
    kc[slots[keep]] = k[keep].to(kc.dtype)
    vc[slots[keep]] = v[keep].to(vc.dtype)


def prefill_attention_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    context_lens: torch.Tensor,
    block_tables: torch.Tensor,
    scale: float,
    causal: bool = True,
    *,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Reference for ``prefill_attention``: queries are the last positions of each context."""
    _, scale = validate_prefill(
        q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale, reference=True
    )
    cu = _lengths(cu_seqlens_q, q.shape[0], "cu_seqlens_q")
    batch = len(cu) - 1
    dtype = _compute_dtype(q, compute_dtype)
    out = q.new_zeros(q.shape, dtype=dtype)
    for b in range(batch):
        lo, hi, n = cu[b], cu[b + 1], int(context_lens[b])
        if n < hi - lo:
            raise ValueError(f"sequence {b}: context_lens {n} < its {hi - lo} queries")
        if hi == lo:
            continue
        k = _gather_pages(k_cache, block_tables[b], n)
        v = _gather_pages(v_cache, block_tables[b], n)
        out[lo:hi] = _attend(q[lo:hi], k, v, scale, causal, dtype)
    return out.to(q.dtype) if compute_dtype is None else out


def decode_attention_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    num_splits: int | None = None,
    *,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Reference for ``decode_attention`` (``num_splits`` is accepted and ignored)."""
    _, scale = validate_decode(
        q, k_cache, v_cache, block_tables, context_lens, scale, num_splits, reference=True
    )
    batch = q.shape[0]
    dtype = _compute_dtype(q, compute_dtype)
    out = q.new_zeros(q.shape, dtype=dtype)
    for b in range(batch):
        n = int(context_lens[b])
        if n < 0:
            raise ValueError(f"sequence {b}: negative context length {n}")
        k = _gather_pages(k_cache, block_tables[b], n)
        v = _gather_pages(v_cache, block_tables[b], n)
        out[b] = _attend(q[b : b + 1], k, v, scale, False, dtype)[0]
    return out.to(q.dtype) if compute_dtype is None else out


def varlen_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    scale: float,
    causal: bool = False,
    *,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Reference for ``varlen_attention`` over packed contiguous q/k/v."""
    _, scale = validate_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, scale, reference=True)
    cu_q = _lengths(cu_seqlens_q, q.shape[0], "cu_seqlens_q")
    cu_k = _lengths(cu_seqlens_k, k.shape[0], "cu_seqlens_k")
    dtype = _compute_dtype(q, compute_dtype)
    out = q.new_zeros(q.shape, dtype=dtype)
    for b in range(len(cu_q) - 1):
        lo, hi = cu_q[b], cu_q[b + 1]
        if hi > lo:
            ks, ke = cu_k[b], cu_k[b + 1]
            out[lo:hi] = _attend(q[lo:hi], k[ks:ke], v[ks:ke], scale, causal, dtype)
    return out.to(q.dtype) if compute_dtype is None else out
