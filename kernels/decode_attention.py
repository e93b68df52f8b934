"""Paged decode attention: one query token per sequence against a paged KV cache.

Math, for sequence b with context length n_b and query head h (KV head h // G):
    o_bh = sum_{j < n_b} softmax_j(scale * <q_bh, k_bj>) v_bj        (0 when n_b == 0)
Key j of sequence b lives at cache slot block_tables[b, j // page] * page + j % page.

One program handles (sequence, KV head, split): it loads each K/V tile once for all G
query heads of the group (rows padded to >= 16 for ``tl.dot``). With split-K the context
is cut into ``num_splits`` chunks; each writes its normalised partial output and its
log-sum-exp, and a second kernel merges them. Softmax runs online in fp32 with exp2.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels._attention_common import dot_precision, validate_decode
from kernels._triton_jit import cast_rne
from kernels._triton_utils import is_interpreter, next_power_of_2

__all__ = ["choose_num_splits", "decode_attention_triton"]


# Arguments that change from step to step (batch, context capacity, split count) are
# not specialized on: each new divisibility pattern would compile the kernel again
# (~1 s, a TTFT spike in production) for alignment hints these scalar and
# partial-result offsets do not need.
_PER_STEP = ["max_blocks", "tokens_per_split", "stride_pb", "stride_ph", "stride_lb",
             "stride_lh"]  # fmt: skip


@triton.jit(do_not_specialize=[*_PER_STEP, "stride_bt"])
def _decode_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    po_ptr,
    lse_ptr,
    bt_ptr,
    ctx_ptr,
    max_blocks,
    num_kv_blocks,
    tokens_per_split,
    stride_qb,
    stride_qh,
    stride_kb,
    stride_kt,
    stride_kh,
    stride_bt,
    stride_ob,
    stride_oh,
    stride_pb,
    stride_ph,
    stride_ps,
    stride_lb,
    stride_lh,
    qk_scale,
    GROUP: tl.constexpr,
    BLOCK_H: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    SPLIT: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    b = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    ctx_len = tl.minimum(tl.maximum(tl.load(ctx_ptr + b), 0), max_blocks * PAGE_SIZE)
    start = split * tokens_per_split
    if SPLIT:
        if start >= ctx_len:
            return  # the merge kernel skips splits past the context
    end = tl.minimum(ctx_len, start + tokens_per_split)

    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, HEAD_DIM)
    h_ok = offs_h < GROUP
    heads = kv_head * GROUP + offs_h
    q = tl.load(
        q_ptr + b.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
        mask=h_ok[:, None],
        other=0.0,
    )
    if UPCAST:
        q = q.to(tl.float32)
    m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, HEAD_DIM], tl.float32)
    bt_row = bt_ptr + b.to(tl.int64) * stride_bt
    k_base = k_ptr + kv_head * stride_kh
    v_base = v_ptr + kv_head * stride_kh

    for start_n in range(start, end, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < end
        page = offs_n // PAGE_SIZE
        bid = tl.load(bt_row + page, mask=n_ok, other=0)
        bid = tl.where((bid >= 0) & (bid < num_kv_blocks), bid, 0)
        row = bid.to(tl.int64) * stride_kb + (offs_n % PAGE_SIZE).to(tl.int64) * stride_kt
        kv_off = row[:, None] + offs_d[None, :]
        k = tl.load(k_base + kv_off, mask=n_ok[:, None], other=0.0)
        if UPCAST:
            qk = tl.dot(q, tl.trans(k.to(tl.float32)), input_precision="ieee")
        else:
            qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        qk = tl.where(n_ok[None, :], qk * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.math.exp2(qk - m_new[:, None])  # every tile has >= 1 visible key
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + kv_off, mask=n_ok[:, None], other=0.0)
        if UPCAST:
            pv = tl.dot(
                cast_rne(p, v.dtype, True).to(tl.float32), v.to(tl.float32), input_precision="ieee"
            )
        else:
            pv = tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        acc = acc * alpha[:, None] + pv
        m_i = m_new

    out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    if SPLIT:
        po = (
            po_ptr
            + b.to(tl.int64) * stride_pb
            + heads[:, None] * stride_ph
            + split * stride_ps
            + offs_d[None, :]
        )
        tl.store(po, out, mask=h_ok[:, None])
        lse = m_i + tl.math.log2(l_i)
        tl.store(lse_ptr + b.to(tl.int64) * stride_lb + heads * stride_lh + split, lse, mask=h_ok)
    else:
        o = o_ptr + b.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
        tl.store(o, cast_rne(out, o_ptr.dtype.element_ty, UPCAST), mask=h_ok[:, None])


@triton.jit(do_not_specialize=[*_PER_STEP[1:], "max_ctx", "num_splits"])
def _merge_kernel(
    o_ptr,
    po_ptr,
    lse_ptr,
    ctx_ptr,
    max_ctx,
    tokens_per_split,
    num_splits,
    stride_ob,
    stride_oh,
    stride_pb,
    stride_ph,
    stride_ps,
    stride_lb,
    stride_lh,
    HEAD_DIM: tl.constexpr,
    BLOCK_S: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    b = tl.program_id(0)
    h = tl.program_id(1)
    ctx_len = tl.minimum(tl.maximum(tl.load(ctx_ptr + b), 0), max_ctx)
    used = tl.minimum((ctx_len + tokens_per_split - 1) // tokens_per_split, num_splits)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, HEAD_DIM)
    s_ok = offs_s < used
    lse = tl.load(
        lse_ptr + b.to(tl.int64) * stride_lb + h * stride_lh + offs_s,
        mask=s_ok,
        other=float("-inf"),
    )
    m = tl.max(lse, 0)
    w = tl.math.exp2(lse - tl.where(m == float("-inf"), 0.0, m))
    po = tl.load(
        po_ptr
        + b.to(tl.int64) * stride_pb
        + h * stride_ph
        + offs_s[:, None] * stride_ps
        + offs_d[None, :],
        mask=s_ok[:, None],
        other=0.0,
    )
    den = tl.sum(w, 0)
    out = tl.sum(po * w[:, None], 0) / tl.where(den == 0.0, 1.0, den)
    tl.store(
        o_ptr + b.to(tl.int64) * stride_ob + h * stride_oh + offs_d,
        cast_rne(out, o_ptr.dtype.element_ty, INTERPRET),
    )


@functools.lru_cache(maxsize=8)
def _sm_count(index: int) -> int:
    return int(torch.cuda.get_device_properties(index).multi_processor_count)


def _block_n(head_dim: int, dtype: torch.dtype) -> int:
    return 32 if head_dim > 128 or dtype == torch.float32 else 64


def choose_num_splits(
    batch: int, num_kv_heads: int, max_context: int, device: torch.device, block_n: int = 64
) -> int:
    """Split the context only when (sequence, KV head) programs cannot fill the GPU.

    Aims at ~4 programs per SM and keeps >= 4 key tiles per split so each split
    amortises its partial-output write. ``max_context`` is the block table's capacity
    (the real lengths live on the device and reading them would sync).
    """
    if device.type != "cuda":
        return 1
    programs = max(1, batch * num_kv_heads)
    target = 4 * _sm_count(device.index if device.index is not None else 0)
    tiles = triton.cdiv(max(max_context, 1), block_n)
    return int(max(1, min(triton.cdiv(target, programs), tiles // 4, 64)))


def decode_attention_triton(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    num_splits: int | None = None,
) -> torch.Tensor:
    """Paged decode attention (Triton).

    Args:
        q: ``[B, Hq, D]`` queries, one token per sequence.
        k_cache: ``[num_blocks, block_size, Hk, D]`` paged keys (same dtype as ``q``).
        v_cache: like ``k_cache``.
        block_tables: ``[B, max_blocks]`` int32 page ids per sequence.
        context_lens: ``[B]`` int32 keys per sequence (0 gives a zero output).
        scale: softmax scale, usually ``D ** -0.5``.
        num_splits: split-K factor over the context; ``None`` picks one from the GPU size.

    Returns:
        ``[B, Hq, D]`` attention output in ``q``'s dtype.

    Raises:
        ValueError: on a bad shape, dtype, layout, device or argument.
    """
    dims, scale = validate_decode(
        q, k_cache, v_cache, block_tables, context_lens, scale, num_splits
    )
    batch, num_q_heads, num_kv_heads, head_dim = (
        dims.batch,
        dims.num_q_heads,
        dims.num_kv_heads,
        dims.head_dim,
    )
    page_size, device = int(k_cache.shape[1]), q.device
    out = torch.empty_like(q)
    max_blocks = int(block_tables.shape[1])
    if batch == 0:
        return out
    if max_blocks == 0:
        return out.zero_()
    block_n = _block_n(head_dim, q.dtype)
    max_ctx = max_blocks * page_size
    if num_splits is None:
        num_splits = choose_num_splits(batch, num_kv_heads, max_ctx, device, block_n)
    num_splits = min(num_splits, triton.cdiv(max_ctx, block_n))
    tokens_per_split = triton.cdiv(triton.cdiv(max_ctx, num_splits), block_n) * block_n
    num_splits = triton.cdiv(max_ctx, tokens_per_split)
    split = num_splits > 1
    if split:
        part_out = torch.empty(
            (batch, num_q_heads, num_splits, head_dim), dtype=torch.float32, device=device
        )
        part_lse = torch.empty((batch, num_q_heads, num_splits), dtype=torch.float32, device=device)
    else:
        part_out = out.new_empty((1, 1, 1, 1), dtype=torch.float32)
        part_lse = out.new_empty((1, 1, 1), dtype=torch.float32)
    _decode_kernel[(batch, num_kv_heads, num_splits)](
        q,
        k_cache,
        v_cache,
        out,
        part_out,
        part_lse,
        block_tables,
        context_lens,
        max_blocks,
        k_cache.shape[0],
        tokens_per_split,
        q.stride(0),
        q.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        block_tables.stride(0),
        out.stride(0),
        out.stride(1),
        part_out.stride(0),
        part_out.stride(1),
        part_out.stride(2),
        part_lse.stride(0),
        part_lse.stride(1),
        scale * 1.4426950408889634,
        GROUP=dims.group,
        BLOCK_H=max(16, next_power_of_2(dims.group)),
        HEAD_DIM=head_dim,
        BLOCK_N=block_n,
        PAGE_SIZE=page_size,
        SPLIT=split,
        UPCAST=is_interpreter(),
        PRECISION=dot_precision(q.dtype),
        num_warps=4,
        num_stages=3 if not is_interpreter() else 1,
    )
    if split:
        _merge_kernel[(batch, num_q_heads)](
            out,
            part_out,
            part_lse,
            context_lens,
            max_ctx,
            tokens_per_split,
            num_splits,
            out.stride(0),
            out.stride(1),
            part_out.stride(0),
            part_out.stride(1),
            part_out.stride(2),
            part_lse.stride(0),
            part_lse.stride(1),
            HEAD_DIM=head_dim,
            BLOCK_S=max(2, next_power_of_2(num_splits)),
            INTERPRET=is_interpreter(),
            num_warps=4,
        )
    return out
