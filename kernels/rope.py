"""Rotary position embedding applied in place to q and k (Triton, HF ``rotate_half`` layout).

Math, for token t at position p, every head x of q ``[T,Hq,D]`` and k ``[T,Hk,D]``, with
c = cos_sin[p, :D/2], s = cos_sin[p, D/2:] and x1, x2 = x[:D/2], x[D/2:] (fp32 math):
    x <- [x1*c - x2*s, x2*c + x1*s]

One launch for q and k; one program per token loads its cos/sin row once and rotates all q
heads then all k heads as [BLOCK_H, D/2] tiles. Positions are not range-checked on the host
(that would need a device sync); a token whose position lies outside ``[0, P)`` is left
untouched by the kernel, so bad input never reads outside the table.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._checks import FLOAT_DTYPES, validate_rope
from kernels._triton_jit import cast_rne
from kernels._triton_utils import is_interpreter, next_power_of_2

__all__ = ["apply_rope_", "rope_tiling", "rotate_heads", "token_cos_sin"]

# Tile of heads x half-dim handled per loop step; 2048 fp32 x 2 halves stays in registers.
_MAX_TILE = 2048


@triton.jit
def rotate_heads(
    src_ptr,
    dst_ptr,
    n_heads,
    cos,
    sin,
    d,
    HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    """Rotate the ``n_heads`` contiguous heads of one token at ``src_ptr`` into ``dst_ptr``
    (the same pointer: in place; 0 heads: no-op)."""
    hs = tl.arange(0, BLOCK_H)
    d_ok = d < HALF
    for h0 in range(0, n_heads, BLOCK_H):
        h = h0 + hs
        mask = (h[:, None] < n_heads) & d_ok[None, :]
        offs = h[:, None] * (2 * HALF) + d[None, :]  # [BLOCK_H, HALF_PAD]
        x1 = tl.load(src_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(src_ptr + offs + HALF, mask=mask, other=0.0).to(tl.float32)
        o1 = x1 * cos[None, :] - x2 * sin[None, :]
        o2 = x2 * cos[None, :] + x1 * sin[None, :]
        out_ty = dst_ptr.dtype.element_ty
        tl.store(dst_ptr + offs, cast_rne(o1, out_ty, INTERPRET), mask=mask)
        tl.store(dst_ptr + offs + HALF, cast_rne(o2, out_ty, INTERPRET), mask=mask)


@triton.jit
def token_cos_sin(pos_ptr, cs_ptr, t, max_pos, d, HALF: tl.constexpr):
    """Token ``t``'s position and its ``(cos, sin, valid)`` rows (fp32, ``d`` the pair
    indices); a position outside ``[0, max_pos)`` reads row 0 and is ``valid`` False,
    so a bad position never reads outside the table."""
    pos = tl.load(pos_ptr + t).to(tl.int64)
    valid = (pos >= 0) & (pos < max_pos)
    row = cs_ptr + tl.where(valid, pos, 0) * (2 * HALF)
    d_ok = d < HALF
    cos = tl.load(row + d, mask=d_ok, other=0.0).to(tl.float32)
    sin = tl.load(row + HALF + d, mask=d_ok, other=0.0).to(tl.float32)
    return cos, sin, valid


def rope_tiling(n_heads: int, half: int) -> tuple[int, int, int]:
    """``(HALF_PAD, BLOCK_H, num_warps)`` for rotating up to ``n_heads`` heads of ``half``
    pairs per token."""
    half_pad = next_power_of_2(half)
    block_h = min(next_power_of_2(n_heads), max(1, _MAX_TILE // half_pad))
    tile = block_h * half_pad
    return half_pad, block_h, 4 if tile >= 1024 else (2 if tile >= 256 else 1)


@triton.jit
def _rope_kernel(
    q_ptr,
    k_ptr,
    pos_ptr,
    cs_ptr,
    n_q_heads,
    n_k_heads,
    max_pos,
    HALF: tl.constexpr,
    HALF_PAD: tl.constexpr,
    BLOCK_H: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    t = tl.program_id(0).to(tl.int64)
    d = tl.arange(0, HALF_PAD)
    cos, sin, valid = token_cos_sin(pos_ptr, cs_ptr, t, max_pos, d, HALF)
    # A token with an out-of-range position rotates zero heads (left untouched).
    q_row = q_ptr + t * n_q_heads * (2 * HALF)
    k_row = k_ptr + t * n_k_heads * (2 * HALF)
    rotate_heads(
        q_row,
        q_row,
        tl.where(valid, n_q_heads, 0),
        cos,
        sin,
        d,
        HALF,
        BLOCK_H,
        INTERPRET,
    )
    rotate_heads(
        k_row,
        k_row,
        tl.where(valid, n_k_heads, 0),
        cos,
        sin,
        d,
        HALF,
        BLOCK_H,
        INTERPRET,
    )


def apply_rope_(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin: torch.Tensor
) -> None:
    """Rotate q and k in place at ``positions`` (Triton).

    Args:
        q: ``[T, Hq, D]`` contiguous fp32/fp16/bf16, modified in place.
        k: ``[T, Hk, D]`` same dtype, modified in place.
        positions: ``[T]`` int32/int64 positions into the table.
        cos_sin: ``[P, D]`` table from `kernels.rope_cos_sin` (any float dtype; fp32 math).

    Raises:
        ValueError: On wrong shapes, dtypes, devices, aliasing or non-contiguous inputs, and
            (CPU/interpreter only, where it costs no sync) on out-of-range positions.
    """
    q, k, positions, cos_sin = validate_rope("apply_rope_", q, k, positions, cos_sin, FLOAT_DTYPES)
    tokens, n_q, head_dim = q.shape
    if tokens == 0:
        return
    max_pos = cos_sin.shape[0]
    if not positions.is_cuda:
        lo, hi = int(positions.min()), int(positions.max())
        if lo < 0 or hi >= max_pos:
            raise ValueError(f"apply_rope_: positions must lie in [0, {max_pos}), got [{lo}, {hi}]")
    half = head_dim // 2
    half_pad, block_h, num_warps = rope_tiling(max(n_q, k.shape[1]), half)
    _rope_kernel[(tokens,)](
        q,
        k,
        positions,
        cos_sin,
        n_q,
        k.shape[1],
        max_pos,
        HALF=half,
        HALF_PAD=half_pad,
        BLOCK_H=block_h,
        INTERPRET=is_interpreter(),
        num_warps=num_warps,
    )
