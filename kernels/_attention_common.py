"""Input checks shared by the attention / KV-cache launchers and their references.

Both backends run the same checks, so a bad call fails with the same ``ValueError`` on a
CPU box as on the GPU. They look only at metadata (shape, dtype, stride, device): reading
tensor values would sync the GPU on every layer. The Triton kernels instead mask every
index they read from metadata tensors, so bad values give wrong numbers, never
out-of-bounds memory; the references, which read values anyway, reject them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernels._checks import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    REFERENCE_FLOAT_DTYPES,
    check_same_device,
    check_tensor,
)
from kernels._triton_utils import is_interpreter

__all__ = [
    "AttnDims",
    "dot_precision",
    "validate_decode",
    "validate_prefill",
    "validate_rope_and_cache",
    "validate_varlen",
    "validate_write_kv_cache",
]

_I32 = (torch.int32,)


@dataclass(frozen=True)
class AttnDims:
    """Sizes a launcher needs after validation."""

    batch: int
    num_q_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group(self) -> int:
        """Query heads per KV head."""
        return self.num_q_heads // self.num_kv_heads


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision: exact fp32 for fp32 inputs (tf32 would break the
    2x-of-torch error rule), the default for 16-bit inputs (where it is ignored)."""
    return "ieee" if dtype == torch.float32 else "tf32"


def _floats(reference: bool) -> tuple[torch.dtype, ...]:
    return REFERENCE_FLOAT_DTYPES if reference else FLOAT_DTYPES


def _device(op: str, reference: bool, **tensors: torch.Tensor) -> None:
    check_same_device(op, **tensors)
    dev = next(iter(tensors.values())).device
    if not reference and dev.type != "cuda" and not is_interpreter():
        raise ValueError(
            f"{op}: the Triton path needs CUDA tensors, got {dev}; set TRITON_INTERPRET=1 "
            "before importing the kernels to run it on CPU tensors, or use the reference"
        )


def _heads(op: str, num_q_heads: int, num_kv_heads: int, head_dim: int, reference: bool) -> None:
    if num_kv_heads < 1 or num_q_heads < 1 or num_q_heads % num_kv_heads:
        raise ValueError(
            f"{op}: query heads ({num_q_heads}) must be a positive multiple of KV heads "
            f"({num_kv_heads})"
        )
    # The kernels tile the head dimension whole; the references take any size.
    if not reference and (head_dim < 16 or head_dim > 256 or head_dim & (head_dim - 1)):
        raise ValueError(f"{op}: head_dim must be a power of two in [16, 256], got {head_dim}")
    if head_dim < 1:
        raise ValueError(f"{op}: head_dim must be positive, got {head_dim}")


def _scale(op: str, scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"{op}: scale must be a float, got {type(scale).__name__}")
    value = float(scale)
    if not (value > 0.0 and value != float("inf")):
        raise ValueError(f"{op}: scale must be finite and > 0, got {scale!r}")
    return value


def _cache_pair(
    op: str, k_cache: object, v_cache: object, reference: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    kc = check_tensor(op, "k_cache", k_cache, ndim=4, dtypes=_floats(reference))
    vc = check_tensor(op, "v_cache", v_cache, ndim=4, dtypes=_floats(reference))
    if kc.shape != vc.shape or kc.dtype != vc.dtype:
        raise ValueError(
            f"{op}: k_cache {tuple(kc.shape)} {kc.dtype} and v_cache "
            f"{tuple(vc.shape)} {vc.dtype} must match"
        )
    if min(kc.shape[:3]) < 1:
        raise ValueError(f"{op}: empty KV cache shape {tuple(kc.shape)}")
    return kc, vc


def validate_write_kv_cache(
    k: object,
    v: object,
    k_cache: object,
    v_cache: object,
    slot_mapping: object,
    *,
    reference: bool = False,
) -> None:
    """Checks for ``write_kv_cache``: k/v ``[T, Hk, D]`` matching the cache rows."""
    op = "write_kv_cache"
    kt = check_tensor(op, "k", k, ndim=3, dtypes=_floats(reference))
    vt = check_tensor(op, "v", v, ndim=3, dtypes=_floats(reference))
    kc, vc = _cache_pair(op, k_cache, v_cache, reference)
    slots = check_tensor(
        op, "slot_mapping", slot_mapping, ndim=1, dtypes=(torch.int32, torch.int64)
    )
    if kt.shape != vt.shape or tuple(kt.shape[1:]) != tuple(kc.shape[2:]):
        raise ValueError(
            f"{op}: k {tuple(kt.shape)} and v {tuple(vt.shape)} must be "
            f"[T, {kc.shape[2]}, {kc.shape[3]}] like the cache rows"
        )
    if not kt.dtype == vt.dtype == kc.dtype:
        raise ValueError(f"{op}: k/v dtype {kt.dtype}/{vt.dtype} != cache dtype {kc.dtype}")
    if slots.shape[0] != kt.shape[0]:
        raise ValueError(
            f"{op}: slot_mapping has {slots.shape[0]} entries for {kt.shape[0]} tokens"
        )
    _device(op, reference, k=kt, v=vt, k_cache=kc, v_cache=vc, slot_mapping=slots)


def validate_prefill(
    q: object,
    k_cache: object,
    v_cache: object,
    cu_seqlens_q: object,
    context_lens: object,
    block_tables: object,
    scale: object,
    *,
    reference: bool = False,
) -> tuple[AttnDims, float]:
    """Checks for ``prefill_attention``; returns the sizes and the scale."""
    op = "prefill_attention"
    qt = check_tensor(op, "q", q, ndim=3, dtypes=_floats(reference))
    kc, vc = _cache_pair(op, k_cache, v_cache, reference)
    cu = check_tensor(op, "cu_seqlens_q", cu_seqlens_q, ndim=1, dtypes=_I32)
    lens = check_tensor(op, "context_lens", context_lens, ndim=1, dtypes=_I32)
    bt = check_tensor(op, "block_tables", block_tables, ndim=2, dtypes=_I32)
    if qt.shape[2] != kc.shape[3] or qt.dtype != kc.dtype:
        raise ValueError(
            f"{op}: q (head_dim {qt.shape[2]}, {qt.dtype}) must match the "
            f"cache (head_dim {kc.shape[3]}, {kc.dtype})"
        )
    _heads(op, qt.shape[1], kc.shape[2], qt.shape[2], reference)
    batch = cu.shape[0] - 1
    if batch < 0:
        raise ValueError(f"{op}: cu_seqlens_q needs B+1 >= 1 elements")
    if lens.shape[0] != batch or bt.shape[0] != batch:
        raise ValueError(
            f"{op}: context_lens {tuple(lens.shape)} and block_tables "
            f"{tuple(bt.shape)} need {batch} rows (len(cu_seqlens_q) - 1)"
        )
    _device(
        op,
        reference,
        q=qt,
        k_cache=kc,
        v_cache=vc,
        cu_seqlens_q=cu,
        context_lens=lens,
        block_tables=bt,
    )
    return AttnDims(batch, qt.shape[1], kc.shape[2], qt.shape[2]), _scale(op, scale)


def validate_decode(
    q: object,
    k_cache: object,
    v_cache: object,
    block_tables: object,
    context_lens: object,
    scale: object,
    num_splits: object,
    *,
    reference: bool = False,
) -> tuple[AttnDims, float]:
    """Checks for ``decode_attention``; returns the sizes and the scale."""
    op = "decode_attention"
    qt = check_tensor(op, "q", q, ndim=3, dtypes=_floats(reference))
    kc, vc = _cache_pair(op, k_cache, v_cache, reference)
    bt = check_tensor(op, "block_tables", block_tables, ndim=2, dtypes=_I32)
    lens = check_tensor(op, "context_lens", context_lens, ndim=1, dtypes=_I32)
    if qt.shape[2] != kc.shape[3] or qt.dtype != kc.dtype:
        raise ValueError(
            f"{op}: q (head_dim {qt.shape[2]}, {qt.dtype}) must match the "
            f"cache (head_dim {kc.shape[3]}, {kc.dtype})"
        )
    _heads(op, qt.shape[1], kc.shape[2], qt.shape[2], reference)
    batch = qt.shape[0]
    if lens.shape[0] != batch or bt.shape[0] != batch:
        raise ValueError(
            f"{op}: context_lens {tuple(lens.shape)} and block_tables "
            f"{tuple(bt.shape)} need {batch} rows (q's batch)"
        )
    if num_splits is not None and (
        isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 1
    ):
        raise ValueError(f"{op}: num_splits must be a positive int or None, got {num_splits!r}")
    _device(op, reference, q=qt, k_cache=kc, v_cache=vc, block_tables=bt, context_lens=lens)
    return AttnDims(batch, qt.shape[1], kc.shape[2], qt.shape[2]), _scale(op, scale)


def validate_varlen(
    q: object,
    k: object,
    v: object,
    cu_seqlens_q: object,
    cu_seqlens_k: object,
    scale: object,
    *,
    reference: bool = False,
) -> tuple[AttnDims, float]:
    """Checks for ``varlen_attention``; returns the sizes and the scale."""
    op = "varlen_attention"
    qt = check_tensor(op, "q", q, ndim=3, dtypes=_floats(reference))
    kt = check_tensor(op, "k", k, ndim=3, dtypes=_floats(reference))
    vt = check_tensor(op, "v", v, ndim=3, dtypes=_floats(reference))
    cq = check_tensor(op, "cu_seqlens_q", cu_seqlens_q, ndim=1, dtypes=_I32)
    ck = check_tensor(op, "cu_seqlens_k", cu_seqlens_k, ndim=1, dtypes=_I32)
    if kt.shape != vt.shape or kt.shape[2] != qt.shape[2]:
        raise ValueError(
            f"{op}: k {tuple(kt.shape)} and v {tuple(vt.shape)} must be [Tk, Hk, {qt.shape[2]}]"
        )
    if not qt.dtype == kt.dtype == vt.dtype:
        raise ValueError(f"{op}: q, k, v dtypes differ: {qt.dtype}, {kt.dtype}, {vt.dtype}")
    _heads(op, qt.shape[1], kt.shape[1], qt.shape[2], reference)
    if cq.shape[0] < 1 or cq.shape != ck.shape:
        raise ValueError(
            f"{op}: cu_seqlens_q {tuple(cq.shape)} and cu_seqlens_k "
            f"{tuple(ck.shape)} must both have B+1 >= 1 elements"
        )
    _device(op, reference, q=qt, k=kt, v=vt, cu_seqlens_q=cq, cu_seqlens_k=ck)
    return AttnDims(cq.shape[0] - 1, qt.shape[1], kt.shape[1], qt.shape[2]), _scale(op, scale)


def validate_rope_and_cache(
    qkv: object,
    positions: object,
    cos_sin: object,
    k_cache: object,
    v_cache: object,
    slot_mapping: object,
    num_q_heads: object,
    *,
    reference: bool = False,
) -> AttnDims:
    """Checks for ``rope_and_cache``: the fused projection ``qkv [T, (Hq + 2*Hk) * D]``
    whose K/V rows match the cache's ``[.., .., Hk, D]``; ``batch`` is T."""
    op = "rope_and_cache"
    x = check_tensor(op, "qkv", qkv, ndim=2, dtypes=_floats(reference))
    kc, vc = _cache_pair(op, k_cache, v_cache, reference)
    pos = check_tensor(op, "positions", positions, ndim=1, dtypes=INDEX_DTYPES)
    cs = check_tensor(op, "cos_sin", cos_sin, ndim=2, dtypes=_floats(reference))
    slots = check_tensor(op, "slot_mapping", slot_mapping, ndim=1, dtypes=INDEX_DTYPES)
    if isinstance(num_q_heads, bool) or not isinstance(num_q_heads, int) or num_q_heads < 1:
        raise ValueError(f"{op}: num_q_heads must be a positive int, got {num_q_heads!r}")
    tokens = int(x.shape[0])
    num_kv_heads, head_dim = int(kc.shape[2]), int(kc.shape[3])
    if head_dim == 0 or head_dim % 2:
        raise ValueError(f"{op}: head_dim must be even and > 0, got {head_dim}")
    width = (num_q_heads + 2 * num_kv_heads) * head_dim
    if x.shape[1] != width:
        raise ValueError(
            f"{op}: qkv has {x.shape[1]} columns; {num_q_heads} query + 2 x {num_kv_heads} "
            f"KV heads of {head_dim} need {width}"
        )
    if x.dtype != kc.dtype:
        raise ValueError(f"{op}: qkv dtype {x.dtype} != cache dtype {kc.dtype}")
    if pos.shape[0] != tokens or slots.shape[0] != tokens:
        raise ValueError(
            f"{op}: token counts differ: qkv {tokens}, positions {pos.shape[0]}, "
            f"slot_mapping {slots.shape[0]}"
        )
    if cs.shape[1] != head_dim or cs.shape[0] == 0:
        raise ValueError(
            f"{op}: cos_sin must be [max_positions, {head_dim}], got {tuple(cs.shape)}"
        )
    tensors = {"qkv": x, "positions": pos, "cos_sin": cs, "k_cache": kc, "v_cache": vc}
    _device(op, reference, **tensors, slot_mapping=slots)
    return AttnDims(tokens, num_q_heads, num_kv_heads, head_dim)
