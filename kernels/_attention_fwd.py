"""Flash-attention forward kernel shared by prefill (paged K/V) and varlen (packed K/V).

Math, per query row i of sequence b with key count n_b and query count q_b:
    s_ij = scale * <q_i, k_j>,  visible iff j < n_b and (not causal or j <= n_b - q_b + i)
    o_i  = sum_j softmax_j(s_ij) v_j           (rows with no visible key give 0)
The queries are aligned to the END of the keys ("bottom-right"), so a prompt of q_b
tokens extends a cached prefix of n_b - q_b tokens. Softmax runs online in fp32 with
exp2 and the scale folded with log2(e).

Grid: (query tiles, q heads). Query tiles are numbered across the packed batch without
a host sync: every program reads cu_seqlens_q, counts tiles per sequence and finds its
own (sequence, tile) with a cumsum. Programs past the last tile return at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from kernels._attention_common import dot_precision
from kernels._triton_jit import cast_rne
from kernels._triton_utils import is_interpreter, next_power_of_2

__all__ = ["FwdConfig", "attention_fwd", "fwd_config"]


@triton.jit
def _kv_row_offsets(
    bt_row_ptr,
    offs_n,
    kv_start,
    max_blocks,
    num_kv_blocks,
    num_k_rows,
    stride_kb,
    stride_kt,
    PAGE_SIZE: tl.constexpr,
    PAGED: tl.constexpr,
):
    """Element offsets of key rows ``offs_n`` (positions within the sequence)."""
    if PAGED:
        page = offs_n // PAGE_SIZE
        bid = tl.load(bt_row_ptr + page, mask=page < max_blocks, other=0)
        # A corrupt block id reads block 0 instead of memory outside the cache.
        bid = tl.where((bid >= 0) & (bid < num_kv_blocks), bid, 0)
        return bid.to(tl.int64) * stride_kb + (offs_n % PAGE_SIZE).to(tl.int64) * stride_kt
    else:
        row = tl.minimum(tl.maximum(kv_start + offs_n, 0), num_k_rows - 1)
        return row.to(tl.int64) * stride_kt


@triton.jit
def _attn_tile(
    acc,
    m_i,
    l_i,
    q,
    k_base,
    v_base,
    bt_row_ptr,
    start_n,
    kv_start,
    ctx_len,
    q_pos,
    max_blocks,
    num_kv_blocks,
    num_k_rows,
    stride_kb,
    stride_kt,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    PAGED: tl.constexpr,
    MASKED: tl.constexpr,
    CAUSAL: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_off = _kv_row_offsets(
        bt_row_ptr,
        offs_n,
        kv_start,
        max_blocks,
        num_kv_blocks,
        num_k_rows,
        stride_kb,
        stride_kt,
        PAGE_SIZE,
        PAGED,
    )
    kv_off = row_off[:, None] + offs_d[None, :]
    if MASKED:
        n_ok = offs_n < ctx_len
        k = tl.load(k_base + kv_off, mask=n_ok[:, None], other=0.0)
    else:
        k = tl.load(k_base + kv_off)
    if UPCAST:
        qk = tl.dot(q.to(tl.float32), tl.trans(k.to(tl.float32)), input_precision="ieee")
    else:
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    qk = qk * qk_scale
    if MASKED:
        vis = n_ok[None, :]
        if CAUSAL:
            vis = vis & (offs_n[None, :] <= q_pos[:, None])
        qk = tl.where(vis, qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    # A row with nothing visible yet keeps m = -inf; subtract 0 instead to avoid nan.
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(qk - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    if MASKED:
        v = tl.load(v_base + kv_off, mask=n_ok[:, None], other=0.0)
    else:
        v = tl.load(v_base + kv_off)
    if UPCAST:
        acc += tl.dot(
            cast_rne(p, v.dtype, True).to(tl.float32), v.to(tl.float32), input_precision="ieee"
        )
    else:
        acc += tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, m_new, l_i


# Step-dependent sizes (sequences and tokens in the batch, block-table width) are not
# specialized on: every new divisibility pattern of them would compile this kernel again
# (~1-2 s, first seen as a cached-prefix TTFT of 30 ms vs 12 ms on the H200 run) for
# hints that only bounds checks and block-table reads would use.
@triton.jit(do_not_specialize=["num_seqs", "total_q", "max_blocks", "num_k_rows", "stride_bt"])
def _attn_fwd_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    cu_q_ptr,
    kv_meta_ptr,
    bt_ptr,
    num_seqs,
    total_q,
    max_blocks,
    num_kv_blocks,
    num_k_rows,
    stride_qt,
    stride_qh,
    stride_kb,
    stride_kt,
    stride_kh,
    stride_ot,
    stride_oh,
    stride_bt,
    qk_scale,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_B: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    PAGED: tl.constexpr,
    CAUSAL: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_t = tl.program_id(0)
    head = tl.program_id(1)
    kv_head = head // GROUP

    # Find (sequence, tile within it) for this program from the per-sequence tile counts.
    offs_b = tl.arange(0, BLOCK_B)
    b_ok = offs_b < num_seqs
    lo = tl.load(cu_q_ptr + offs_b, mask=b_ok, other=0)
    hi = tl.load(cu_q_ptr + offs_b + 1, mask=b_ok, other=0)
    lens = tl.maximum(hi - lo, 0)
    tiles = (lens + BLOCK_M - 1) // BLOCK_M
    cum = tl.cumsum(tiles, 0)
    seq = tl.sum(((cum <= pid_t) & b_ok).to(tl.int32), 0)
    if seq >= num_seqs:
        return
    this = offs_b == seq
    q_start = tl.sum(tl.where(this, lo, 0), 0)
    q_len = tl.sum(tl.where(this, lens, 0), 0)
    m_start = (pid_t - tl.sum(tl.where(this, cum - tiles, 0), 0)) * BLOCK_M

    if PAGED:
        ctx_len = tl.load(kv_meta_ptr + seq)
        kv_start = 0
    else:
        kv_start = tl.load(kv_meta_ptr + seq)
        ctx_len = tl.load(kv_meta_ptr + seq + 1) - kv_start
    # Clamp corrupt lengths to what the cache / key tensor can hold (bounds the loop).
    if PAGED:
        ctx_len = tl.minimum(tl.maximum(ctx_len, 0), max_blocks * PAGE_SIZE)
    else:
        ctx_len = tl.minimum(tl.maximum(ctx_len, 0), num_k_rows)
    q_off = ctx_len - q_len  # absolute position of the sequence's first query

    offs_m = m_start + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    rows = q_start + offs_m
    m_ok = (offs_m < q_len) & (rows >= 0) & (rows < total_q)
    q_rows = rows.to(tl.int64)
    q = tl.load(
        q_ptr + q_rows[:, None] * stride_qt + head * stride_qh + offs_d[None, :],
        mask=m_ok[:, None],
        other=0.0,
    )
    q_pos = q_off + offs_m

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    k_base = k_ptr + kv_head * stride_kh
    v_base = v_ptr + kv_head * stride_kh
    bt_row_ptr = bt_ptr + seq.to(tl.int64) * stride_bt

    if CAUSAL:
        # Keys up to the tile's first query position are visible to every row.
        full_end = (tl.maximum(q_off + m_start + 1, 0) // BLOCK_N) * BLOCK_N
        full_end = tl.minimum(full_end, (ctx_len // BLOCK_N) * BLOCK_N)
        end = tl.minimum(ctx_len, tl.maximum(q_off + m_start + BLOCK_M, 0))
    else:
        full_end = (ctx_len // BLOCK_N) * BLOCK_N
        end = ctx_len
    for start_n in range(0, full_end, BLOCK_N):
        acc, m_i, l_i = _attn_tile(
            acc,
            m_i,
            l_i,
            q,
            k_base,
            v_base,
            bt_row_ptr,
            start_n,
            kv_start,
            ctx_len,
            q_pos,
            max_blocks,
            num_kv_blocks,
            num_k_rows,
            stride_kb,
            stride_kt,
            qk_scale,
            HEAD_DIM,
            BLOCK_N,
            PAGE_SIZE,
            PAGED,
            False,
            CAUSAL,
            UPCAST,
            PRECISION,
        )
    for start_n in range(full_end, end, BLOCK_N):
        acc, m_i, l_i = _attn_tile(
            acc,
            m_i,
            l_i,
            q,
            k_base,
            v_base,
            bt_row_ptr,
            start_n,
            kv_start,
            ctx_len,
            q_pos,
            max_blocks,
            num_kv_blocks,
            num_k_rows,
            stride_kb,
            stride_kt,
            qk_scale,
            HEAD_DIM,
            BLOCK_N,
            PAGE_SIZE,
            PAGED,
            True,
            CAUSAL,
            UPCAST,
            PRECISION,
        )

    out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    tl.store(
        o_ptr + q_rows[:, None] * stride_ot + head * stride_oh + offs_d[None, :],
        cast_rne(out, o_ptr.dtype.element_ty, UPCAST),
        mask=m_ok[:, None],
    )


@dataclass(frozen=True)
class FwdConfig:
    """Fixed launch settings (no autotune: it cannot run in the CPU interpreter)."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


def fwd_config(head_dim: int, dtype: torch.dtype, paged: bool = False) -> FwdConfig:
    """Pick tile sizes by head dim and element size (shared memory: Q + stages * (K + V)).

    The interpreter uses the compiled tiles too, so CPU tests cover the same tile edges.
    Measured on an H200 (Triton 3.6, bf16, causal, 16k tokens, 16 heads, D=128, S=4096):
    contiguous K/V with (128, 64, 8 warps, 3 stages) ran at 370 TFLOP/s; paged K/V (16-token
    pages) at 254, and at 305 with (128, 128, 8 warps, 2 stages), which amortises each
    tile's block-table gather over twice the keys.
    """
    if dtype == torch.float32:
        if head_dim <= 64:
            return FwdConfig(64, 64, 4, 2)
        if head_dim <= 128:
            return FwdConfig(64, 32, 4, 2)
        return FwdConfig(32, 32, 4, 2)
    if head_dim <= 64:
        return FwdConfig(128, 64, 4, 3)
    if head_dim <= 128:
        return FwdConfig(128, 128, 8, 2) if paged else FwdConfig(128, 64, 8, 3)
    return FwdConfig(64, 32, 8, 2)


def attention_fwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    kv_meta: torch.Tensor,
    block_tables: torch.Tensor | None,
    scale: float,
    causal: bool,
    num_kv_heads: int,
) -> None:
    """Launch the kernel. ``k``/``v`` are paged ``[blocks, page, Hk, D]`` when
    ``block_tables`` is given (``kv_meta`` = context_lens), else packed ``[Tk, Hk, D]``
    (``kv_meta`` = cu_seqlens_k). Inputs must already be validated."""
    total_q, num_q_heads, head_dim = q.shape
    num_seqs = cu_seqlens_q.shape[0] - 1
    if total_q == 0:
        return
    if num_seqs == 0 or (block_tables is None and k.shape[0] == 0):
        out.zero_()  # no sequence or no keys at all: every row sees nothing
        return
    cfg = fwd_config(head_dim, q.dtype, paged=block_tables is not None)
    if block_tables is not None:
        bt = block_tables
        num_kv_blocks, page_size = k.shape[0], k.shape[1]
        stride_kb, stride_kt, stride_kh = k.stride(0), k.stride(1), k.stride(2)
        max_blocks, stride_bt, num_k_rows = bt.shape[1], bt.stride(0), 1
    else:
        bt = cu_seqlens_q  # placeholder pointer, never read when PAGED is False
        num_kv_blocks, page_size, max_blocks, stride_bt = 1, 1, 1, 0
        stride_kb, stride_kt, stride_kh = 0, k.stride(0), k.stride(1)
        num_k_rows = k.shape[0]
    grid = (triton.cdiv(total_q, cfg.block_m) + num_seqs, num_q_heads)
    _attn_fwd_kernel[grid](
        q,
        k,
        v,
        out,
        cu_seqlens_q,
        kv_meta,
        bt,
        num_seqs,
        total_q,
        max_blocks,
        num_kv_blocks,
        num_k_rows,
        q.stride(0),
        q.stride(1),
        stride_kb,
        stride_kt,
        stride_kh,
        out.stride(0),
        out.stride(1),
        stride_bt,
        scale * 1.4426950408889634,
        GROUP=num_q_heads // num_kv_heads,
        HEAD_DIM=head_dim,
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_B=max(16, next_power_of_2(num_seqs)),
        PAGE_SIZE=page_size,
        PAGED=block_tables is not None,
        CAUSAL=causal,
        UPCAST=is_interpreter(),
        PRECISION=dot_precision(q.dtype),
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
