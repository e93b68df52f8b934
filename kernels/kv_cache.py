"""Scatter new keys and values into the paged KV cache.

Math: for each token t with slot s = slot_mapping[t] >= 0,
    k_cache.view(-1, Hk, D)[s] = k[t];  v_cache.view(-1, Hk, D)[s] = v[t]
where slot = block_id * block_size + offset. Slot -1 means "don't write" (padding).
One program copies one token's ``Hk * D`` row (or a chunk of it) for both K and V.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._attention_common import validate_write_kv_cache
from kernels._triton_utils import next_power_of_2

__all__ = ["write_kv_cache_triton"]


@triton.jit
def _write_kv_kernel(
    k_ptr,
    v_ptr,
    kc_ptr,
    vc_ptr,
    slot_ptr,
    num_slots,
    stride_kt,
    stride_vt,
    ROW: tl.constexpr,
    BLOCK: tl.constexpr,
):
    t = tl.program_id(0)
    slot = tl.load(slot_ptr + t).to(tl.int64)
    # -1 is "skip"; any other out-of-range slot is skipped too rather than written
    # outside the cache (checking values on the host would sync the GPU).
    if (slot < 0) | (slot >= num_slots):
        return
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < ROW
    src = t.to(tl.int64)
    k = tl.load(k_ptr + src * stride_kt + offs, mask=ok)
    v = tl.load(v_ptr + src * stride_vt + offs, mask=ok)
    tl.store(kc_ptr + slot * ROW + offs, k, mask=ok)
    tl.store(vc_ptr + slot * ROW + offs, v, mask=ok)


def write_kv_cache_triton(
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Write ``k``/``v`` rows into their cache slots in place (Triton).

    Args:
        k: ``[T, Hk, D]`` new keys (same dtype as the cache).
        v: ``[T, Hk, D]`` new values.
        k_cache: ``[num_blocks, block_size, Hk, D]`` paged keys, written in place.
        v_cache: like ``k_cache``.
        slot_mapping: ``[T]`` int32/int64 slot per token; -1 skips the token.
            Out-of-range slots are skipped as well (values are not checked on the host).

    Raises:
        ValueError: on a bad shape, dtype, layout or device.
    """
    validate_write_kv_cache(k, v, k_cache, v_cache, slot_mapping)
    num_blocks, block_size, num_kv_heads, head_dim = (int(x) for x in k_cache.shape)
    tokens = int(k.shape[0])
    row = num_kv_heads * head_dim
    if tokens == 0 or row == 0:
        return
    block = min(next_power_of_2(row), 4096)
    grid = (tokens, triton.cdiv(row, block))
    _write_kv_kernel[grid](
        k,
        v,
        k_cache,
        v_cache,
        slot_mapping,
        num_blocks * block_size,
        k.stride(0),
        v.stride(0),
        ROW=row,
        BLOCK=block,
        num_warps=4 if block <= 1024 else 8,
    )
