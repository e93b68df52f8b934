"""RoPE + KV-cache write from the fused QKV projection, in one launch (Triton).

Math, for token t with position p and slot s = slot_mapping[t], where the row
``qkv[t]`` holds Hq query heads, then Hk key heads, then Hk value heads of D each:
    q_out[t]         = rope(q heads, p)
    k_cache rows [s] = rope(k heads, p);  v_cache rows [s] = v heads     (s >= 0 only)
with `kernels.apply_rope_`'s rotation (fp32 math, one rounding on store).

Unfused, a decoder layer runs five kernels here: three copies that make the strided
q/k/v views of the projection contiguous, the rotation, and the cache write. On the
first H200 run a batch-1 decode step of Qwen2.5-0.5B was ~14 kernels per layer, each a
few microseconds, for 1.29 ms a token; this removes four of them. k and v never exist
as tensors of their own: attention reads them back from the cache.

One program per token loads its cos/sin row once, rotates the query heads into
``q_out``, and (when its slot is valid) the key heads and the value row into the
cache. Like `apply_rope_` on CUDA, positions are not range-checked on the host (a
device sync): a token whose position lies outside ``[0, P)`` is copied unrotated, and
like `write_kv_cache` a slot outside the cache is skipped.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._attention_common import validate_rope_and_cache
from kernels._triton_utils import is_interpreter, next_power_of_2
from kernels.rope import rope_tiling, rotate_heads, token_cos_sin

__all__ = ["rope_and_cache_triton"]

# Elements of the value row copied per loop step.
_V_BLOCK = 1024


@triton.jit
def _rope_cache_kernel(
    qkv_ptr,
    q_ptr,
    kc_ptr,
    vc_ptr,
    pos_ptr,
    cs_ptr,
    slot_ptr,
    n_q_heads,
    max_pos,
    num_slots,
    N_KV_HEADS: tl.constexpr,
    HALF: tl.constexpr,
    HALF_PAD: tl.constexpr,
    BLOCK_H: tl.constexpr,
    V_BLOCK: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    t = tl.program_id(0).to(tl.int64)
    d = tl.arange(0, HALF_PAD)
    cos, sin, valid = token_cos_sin(pos_ptr, cs_ptr, t, max_pos, d, HALF)
    # An out-of-range position rotates by the identity: the head is copied as it came.
    cos = tl.where(valid, cos, 1.0)
    sin = tl.where(valid, sin, 0.0)
    src = qkv_ptr + t * (n_q_heads + 2 * N_KV_HEADS) * (2 * HALF)
    rotate_heads(
        src, q_ptr + t * n_q_heads * (2 * HALF), n_q_heads, cos, sin, d, HALF, BLOCK_H, INTERPRET
    )
    slot = tl.load(slot_ptr + t).to(tl.int64)
    # -1 is "skip"; any other out-of-range slot is skipped too rather than written
    # outside the cache (checking values on the host would sync the GPU).
    if (slot >= 0) & (slot < num_slots):
        kv_row: tl.constexpr = N_KV_HEADS * 2 * HALF
        k_src = src + n_q_heads * (2 * HALF)
        rotate_heads(
            k_src, kc_ptr + slot * kv_row, N_KV_HEADS, cos, sin, d, HALF, BLOCK_H, INTERPRET
        )
        v_src = k_src + kv_row
        offs = tl.arange(0, V_BLOCK)
        for start in range(0, kv_row, V_BLOCK):
            ok = start + offs < kv_row
            v = tl.load(v_src + start + offs, mask=ok)
            tl.store(vc_ptr + slot * kv_row + start + offs, v, mask=ok)


def rope_and_cache_triton(
    qkv: torch.Tensor,
    positions: torch.Tensor,
    cos_sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    num_q_heads: int,
) -> torch.Tensor:
    """Rotate q and k of the fused projection, write k and v into the cache (Triton).

    Args:
        qkv: ``[T, (Hq + 2*Hk) * D]`` contiguous projection output (q, then k, then v
            heads), the cache's dtype.
        positions: ``[T]`` int32/int64 rows of ``cos_sin``.
        cos_sin: ``[P, D]`` table from `kernels.rope_cos_sin` (fp32 math).
        k_cache: ``[num_blocks, block_size, Hk, D]`` paged keys, written in place.
        v_cache: like ``k_cache``.
        slot_mapping: ``[T]`` int32/int64 slot per token; -1 (or any slot outside the
            cache) writes nothing for that token.
        num_q_heads: Hq.

    Returns:
        ``[T, Hq, D]`` rotated queries, a new contiguous tensor.

    Raises:
        ValueError: On wrong shapes, dtypes, devices or non-contiguous inputs, and
            (CPU/interpreter only, where it costs no sync) on out-of-range positions.
    """
    dims = validate_rope_and_cache(
        qkv, positions, cos_sin, k_cache, v_cache, slot_mapping, num_q_heads
    )
    tokens, hq, hk, head_dim = dims.batch, dims.num_q_heads, dims.num_kv_heads, dims.head_dim
    q = qkv.new_empty((tokens, hq, head_dim))
    if tokens == 0:
        return q
    max_pos = int(cos_sin.shape[0])
    if not positions.is_cuda:
        lo, hi = int(positions.min()), int(positions.max())
        if lo < 0 or hi >= max_pos:
            raise ValueError(
                f"rope_and_cache: positions must lie in [0, {max_pos}), got [{lo}, {hi}]"
            )
    half_pad, block_h, num_warps = rope_tiling(max(hq, hk), head_dim // 2)
    _rope_cache_kernel[(tokens,)](
        qkv,
        q,
        k_cache,
        v_cache,
        positions,
        cos_sin,
        slot_mapping,
        hq,
        max_pos,
        int(k_cache.shape[0]) * int(k_cache.shape[1]),
        N_KV_HEADS=hk,
        HALF=head_dim // 2,
        HALF_PAD=half_pad,
        BLOCK_H=block_h,
        V_BLOCK=min(_V_BLOCK, next_power_of_2(hk * head_dim)),
        INTERPRET=is_interpreter(),
        num_warps=num_warps,
    )
    return q
