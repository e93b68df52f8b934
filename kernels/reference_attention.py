"""PyTorch references for the attention and KV-cache kernels.

Plain loops over sequences with dense torch math, used on CPU and as the ground truth in
tests (on the CPU, float32/float64 attention of several queries runs through PyTorch's
fused SDPA, the same math; see ``_attend``). They read tensor values freely (this is the
slow path) and so can reject bad metadata that the Triton launchers can only mask. By
default the math runs in fp32 (fp64 for fp64 inputs) and the output has the query's
dtype; ``compute_dtype`` forces another precision, e.g. the query's own dtype for the
"same math in torch" error baseline. Rows with no visible key give 0.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from kernels._attention_common import (
    validate_decode,
    validate_prefill,
    validate_rope_and_cache,
    validate_varlen,
    validate_write_kv_cache,
)

__all__ = [
    "decode_attention_reference",
    "prefill_attention_reference",
    "rope_and_cache_reference",
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
    """q [M, Hq, D], k/v [N, Hk, D] -> [M, Hq, D] in ``dtype``; queries end-aligned.

    Several queries on the CPU in float32/float64 (the CPU engine's prefill) go through
    :func:`_attend_fused`; the rest, and every lower-precision "same math" baseline the
    tests take, through :func:`_attend_dense`.
    """
    m, n = q.shape[0], k.shape[0]
    if n == 0:
        return q.new_zeros(q.shape, dtype=dtype)
    fused = (
        q.device.type == "cpu"
        and m > 1
        and not (causal and m > n)
        and dtype in (torch.float32, torch.float64)
    )
    return (_attend_fused if fused else _attend_dense)(q, k, v, scale, causal, dtype)


def _attend_fused(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    """:func:`_attend_dense`'s math through ``F.scaled_dot_product_attention``.

    PyTorch's CPU flash kernel fuses the softmax and, under a square causal mask, skips
    the key blocks a query tile cannot see: SmolLM2-shaped heads (9 q / 3 kv, D=64) over a
    1,024-token prompt take 10.5 ms per layer against 68 ms dense, with the same error
    against float64. Requires N >= M under a causal mask (every query sees a key).
    """
    m, num_q_heads, _ = q.shape
    n, num_kv_heads, _ = k.shape
    qh = q.to(dtype).transpose(0, 1).unsqueeze(0)  # [1, Hq, M, D]
    kh = k.to(dtype).transpose(0, 1).unsqueeze(0)  # [1, Hk, N, D]
    vh = v.to(dtype).transpose(0, 1).unsqueeze(0)
    mask = None
    if causal and m < n:  # end-aligned: query i sees keys 0 .. n - m + i
        pos = torch.arange(m, device=q.device)[:, None] + (n - m)
        mask = torch.arange(n, device=q.device)[None, :] <= pos  # [M, N]
    out = F.scaled_dot_product_attention(
        qh,
        kh,
        vh,
        attn_mask=mask,
        is_causal=causal and m == n,
        scale=scale,
        enable_gqa=num_q_heads != num_kv_heads,
    )
    return out[0].transpose(0, 1)  # [M, Hq, D]


def _attend_dense(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    causal: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    """:func:`_attend` as explicit matmuls and softmax (N >= 1).

    GQA without copying K/V per query head: the Hq/Hk query heads of a group are stacked
    against their shared KV head, so each head pair is one row block of a [Hk]-batched
    matmul (this was the CPU decode hot spot when K/V were repeated per head).
    """
    m, num_q_heads, d = q.shape
    n, num_kv_heads, _ = k.shape
    group = num_q_heads // num_kv_heads
    # query head h reads KV head h // group: [M, Hk, G, D] -> [Hk, G*M, D]
    qh = q.to(dtype).reshape(m, num_kv_heads, group, d).permute(1, 2, 0, 3)
    qh = qh.reshape(num_kv_heads, group * m, d)
    kh = k.to(dtype).permute(1, 2, 0)  # [Hk, D, N]
    vh = v.to(dtype).transpose(0, 1)  # [Hk, N, D]
    s = torch.matmul(qh, kh) * scale  # [Hk, G*M, N]
    masked = causal and m > 1  # one end-aligned query sees every key
    if masked:
        pos = torch.arange(m, device=q.device)[:, None] + (n - m)
        hidden = torch.arange(n, device=q.device)[None, :] > pos  # [M, N]
        s = s.view(num_kv_heads, group, m, n).masked_fill(hidden, float("-inf"))
        s = s.view(num_kv_heads, group * m, n)
    p = torch.softmax(s, dim=-1)
    if masked and m > n:
        p = p.nan_to_num(0.0)  # queries before the first key see nothing -> 0
    o = torch.matmul(p, vh)  # [Hk, G*M, D]
    return o.view(num_kv_heads, group, m, d).permute(2, 0, 1, 3).reshape(m, num_q_heads, d)


def _gather_kv(
    k_cache: torch.Tensor, v_cache: torch.Tensor, table: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values 0..n-1 of one sequence from the paged caches -> 2 x [n, Hk, D].

    The block table is read once for both caches. Pages that are consecutive blocks (the
    common case for a sequence allocated from a mostly free pool) come back as views of
    the caches, without a copy; otherwise whole pages are gathered with ``index_select``
    (advanced indexing ``flat[idx]`` costs ~2.3 ms per call on CPU and grows with the
    cache size).
    """
    num_blocks, page = k_cache.shape[0], k_cache.shape[1]
    rest = k_cache.shape[2:]
    if n <= 0:
        return k_cache.new_empty((0, *rest)), v_cache.new_empty((0, *rest))
    num_pages = -(-n // page)
    if num_pages > table.shape[0]:
        raise ValueError(f"context of {n} tokens needs more than {table.shape[0]} pages")
    ids = [int(b) for b in table[:num_pages].tolist()]
    if min(ids) < 0 or max(ids) >= num_blocks:
        raise ValueError(f"block table entries must lie in [0, {num_blocks})")
    first = ids[0]
    if ids == list(range(first, first + num_pages)):
        lo = first * page
        k_flat = k_cache.reshape(num_blocks * page, *rest)
        v_flat = v_cache.reshape(num_blocks * page, *rest)
        return k_flat[lo : lo + n], v_flat[lo : lo + n]
    blocks = torch.tensor(ids, dtype=torch.int64, device=k_cache.device)
    k = k_cache.index_select(0, blocks).reshape(num_pages * page, *rest)[:n]
    v = v_cache.index_select(0, blocks).reshape(num_pages * page, *rest)[:n]
    return k, v


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
    slots = [int(x) for x in slot_mapping.tolist()]
    if not slots:
        return
    lo, hi = min(slots), max(slots)
    if lo < -1 or hi >= num_slots:
        raise ValueError(f"write_kv_cache: slots must be -1 or lie in [0, {num_slots})")
    kc = k_cache.view(num_slots, *k_cache.shape[2:])
    vc = v_cache.view(num_slots, *v_cache.shape[2:])
    if lo >= 0 and hi - lo + 1 == len(slots) and slots == list(range(lo, hi + 1)):
        # One run of consecutive slots (a decode token, a prompt in fresh blocks): a copy.
        kc[lo : hi + 1] = k
        vc[lo : hi + 1] = v
        return
    keep = [i for i, x in enumerate(slots) if x >= 0]
    if not keep:
        return
    dev = k_cache.device
    dst = torch.tensor([slots[i] for i in keep], dtype=torch.int64, device=dev)
    if len(keep) == len(slots):
        ks, vs = k, v
    else:
        src = torch.tensor(keep, dtype=torch.int64, device=dev)
        ks, vs = k.index_select(0, src), v.index_select(0, src)
    kc.index_copy_(0, dst, ks)
    vc.index_copy_(0, dst, vs)


def rope_and_cache_reference(
    qkv: torch.Tensor,
    positions: torch.Tensor,
    cos_sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    num_q_heads: int,
) -> torch.Tensor:
    """Split ``qkv [T, (Hq + 2*Hk) * D]``, rotate q and k, write k and v into their cache
    slots (-1 skips); return q ``[T, Hq, D]`` (a new tensor).

    The unfused composition of `apply_rope_` and `write_kv_cache`, which it is by
    definition; it rejects out-of-range positions and slots, as they do.
    """
    dims = validate_rope_and_cache(
        qkv, positions, cos_sin, k_cache, v_cache, slot_mapping, num_q_heads, reference=True
    )
    # kernels.reference re-exports this module's functions: imported here, not above.
    from kernels.reference import apply_rope_

    t, hq, hk, d = dims.batch, dims.num_q_heads, dims.num_kv_heads, dims.head_dim
    heads = qkv.view(t, hq + 2 * hk, d)
    q = heads[:, :hq].contiguous()
    k = heads[:, hq : hq + hk].contiguous()
    v = heads[:, hq + hk :].contiguous()
    if t:
        apply_rope_(q, k, positions, cos_sin)
    write_kv_cache_reference(k, v, k_cache, v_cache, slot_mapping)
    return q


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
    lens = [int(x) for x in context_lens.tolist()]
    for b in range(batch):
        lo, hi, n = cu[b], cu[b + 1], lens[b]
        if n < hi - lo:
            raise ValueError(f"sequence {b}: context_lens {n} < its {hi - lo} queries")
        if hi == lo:
            continue
        k, v = _gather_kv(k_cache, v_cache, block_tables[b], n)
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
    dtype = _compute_dtype(q, compute_dtype)
    lens = [int(x) for x in context_lens.tolist()]
    rows = []
    for b, n in enumerate(lens):
        if n < 0:
            raise ValueError(f"sequence {b}: negative context length {n}")
        k, v = _gather_kv(k_cache, v_cache, block_tables[b], n)
        rows.append(_attend(q[b : b + 1], k, v, scale, False, dtype))
    out = (
        (rows[0] if len(rows) == 1 else torch.cat(rows))
        if rows
        else q.new_zeros(q.shape, dtype=dtype)
    )
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
