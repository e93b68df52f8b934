"""PyTorch reference implementations of every kernel (the CPU backend and the test oracle).

Each reference does the same math as its Triton kernel: load in the storage dtype, compute
in fp32 (fp64 when given fp64, which is how tests build the ground truth), round once on
store. Inputs are validated with the same checks as the Triton launchers. These run on any
device, so ``force_backend("reference")`` also works on CUDA tensors.

Attention and KV-cache references live in ``kernels/reference_attention.py`` and are
re-exported here.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F

from kernels._checks import (
    REFERENCE_FLOAT_DTYPES,
    validate_fused_add_rms_norm,
    validate_rms_norm,
    validate_rope,
    validate_skinny_linear,
    validate_swiglu,
)
from kernels._rope_freqs import rope_cos_sin

__all__ = [
    "apply_rope_",
    "fused_add_rms_norm",
    "rms_norm",
    "rope_cos_sin",
    "skinny_linear",
    "skinny_linear_swiglu",
    "swiglu",
]


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _normalize(s: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # s is already in the compute dtype; y = s * rsqrt(mean(s^2) + eps) * w. F.rms_norm is
    # that same sequence of ops (bit-identical) in one call: the CPU decode path runs
    # two norms per layer per token, and the Python-level ops were most of their cost.
    return F.rms_norm(s, (s.shape[-1],), weight.to(s.dtype), eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim: ``y = x / sqrt(mean(x^2) + eps) * weight``.

    Args:
        x: ``[..., H]`` activations.
        weight: ``[H]`` gain.
        eps: Added to the mean square.

    Returns:
        ``y`` with x's shape and dtype. Unlike HF's LlamaRMSNorm (which rounds to the input
        dtype before multiplying by weight) the product is rounded once.
    """
    x, weight, eps = validate_rms_norm("rms_norm", x, weight, eps, REFERENCE_FLOAT_DTYPES)
    return _normalize(x.to(_acc(x.dtype)), weight, eps).to(x.dtype)


def fused_add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add then RMSNorm, in place: ``residual <- x + residual; x <- rms_norm(residual)``.

    The sum is rounded to the storage dtype before it is normalised, so ``y`` equals
    ``rms_norm(new_residual)`` exactly as an unfused add-then-norm would compute it.

    Args:
        x: ``[..., H]`` block output; overwritten with the normalised result.
        residual: ``[..., H]`` residual stream; overwritten with ``x + residual``.
        weight: ``[H]`` gain.
        eps: Added to the mean square.

    Returns:
        ``(x, residual)``, the same tensor objects, now holding ``(y, new_residual)``.
    """
    x, residual, weight, eps = validate_fused_add_rms_norm(
        "fused_add_rms_norm", x, residual, weight, eps, REFERENCE_FLOAT_DTYPES
    )
    acc = _acc(x.dtype)
    if x.dtype == acc:  # same rounding as below, without the extra temporaries
        residual.add_(x)
        x.copy_(_normalize(residual, weight, eps))
        return x, residual
    summed = (x.to(acc) + residual.to(acc)).to(x.dtype)
    residual.copy_(summed)
    x.copy_(_normalize(summed.to(acc), weight, eps))
    return x, residual


def apply_rope_(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin: torch.Tensor
) -> None:
    """Rotate q and k in place (HF ``rotate_half`` layout) at the given positions.

    With ``c, s = cos_sin[pos, :D/2], cos_sin[pos, D/2:]`` and ``x1, x2 = x[:D/2], x[D/2:]``:
    ``x <- [x1*c - x2*s, x2*c + x1*s]`` for every head of q ``[T,Hq,D]`` and k ``[T,Hk,D]``.

    Raises:
        ValueError: On bad shapes/dtypes, or a position outside ``[0, P)`` (the reference
            checks values; the Triton kernel cannot without a device sync).
    """
    q, k, positions, cos_sin = validate_rope(
        "apply_rope_", q, k, positions, cos_sin, REFERENCE_FLOAT_DTYPES
    )
    if positions.numel() == 0:
        return
    if positions.numel() <= 64:  # decode steps: one host read instead of two reductions
        listed = positions.tolist()
        lo, hi = min(listed), max(listed)
    else:
        lo, hi = (int(v) for v in torch.aminmax(positions))
    if lo < 0 or hi >= cos_sin.shape[0]:
        raise ValueError(
            f"apply_rope_: positions must lie in [0, {cos_sin.shape[0]}), got [{lo}, {hi}]"
        )
    half = q.shape[-1] // 2
    acc = _acc(q.dtype)
    table = cos_sin.index_select(0, positions.long()).to(acc)  # [T, D]
    cos, sin = table[:, None, :half], table[:, None, half:]  # [T, 1, D/2]
    # q and k rotate together (same math per element, half the small-op overhead).
    num_q = q.shape[1]
    t = torch.cat([q, k], dim=1).to(acc)  # [T, Hq + Hk, D]
    x1, x2 = t[..., :half], t[..., half:]
    rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    q.copy_(rotated[:, :num_q])
    k.copy_(rotated[:, num_q:])


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """``out = silu(gate) * up`` where ``gate, up = gate_up[..., :I], gate_up[..., I:]``.

    Returns:
        ``[..., I]`` in gate_up's dtype (computed in fp32, rounded once).
    """
    gate_up = validate_swiglu("swiglu", gate_up, REFERENCE_FLOAT_DTYPES)
    gate, up = gate_up.to(_acc(gate_up.dtype)).chunk(2, dim=-1)
    return (F.silu(gate) * up).to(gate_up.dtype)


def skinny_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x W^T + b`` for at most 8 rows, computed in fp32 and rounded once.

    Returns:
        ``[M, N]`` in x's dtype.
    """
    x, weight, bias = validate_skinny_linear(
        "skinny_linear", x, weight, bias, REFERENCE_FLOAT_DTYPES
    )
    acc = _acc(x.dtype)
    wide_bias = None if bias is None else bias.to(acc)
    return F.linear(x.to(acc), weight.to(acc), wide_bias).to(x.dtype)


def skinny_linear_swiglu(x: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(x W_gate^T) * (x W_up^T)`` for ``gate_up = [W_gate; W_up]`` and at most 8
    rows, computed in fp32 (the gate/up product is not rounded) and rounded once.

    Returns:
        ``[M, I]`` in x's dtype.
    """
    x, gate_up, _ = validate_skinny_linear(
        "skinny_linear_swiglu", x, gate_up, None, REFERENCE_FLOAT_DTYPES, paired=True
    )
    acc = _acc(x.dtype)
    gate, up = F.linear(x.to(acc), gate_up.to(acc)).chunk(2, dim=-1)
    return (F.silu(gate) * up).to(x.dtype)


# The attention helper's references, re-exported under their own names and the public
# op names, so `kernels.reference` is the one place to look. Guarded by find_spec rather
# than try/except so a real error inside that module still surfaces.
if importlib.util.find_spec("kernels.reference_attention") is not None:
    from kernels import reference_attention as _reference_attention
    from kernels.reference_attention import *  # noqa: F403
    from kernels.reference_attention import decode_attention_reference as decode_attention
    from kernels.reference_attention import prefill_attention_reference as prefill_attention
    from kernels.reference_attention import rope_and_cache_reference as rope_and_cache
    from kernels.reference_attention import varlen_attention_reference as varlen_attention
    from kernels.reference_attention import write_kv_cache_reference as write_kv_cache

    __all__ += [
        *_reference_attention.__all__,
        "decode_attention",
        "prefill_attention",
        "rope_and_cache",
        "varlen_attention",
        "write_kv_cache",
    ]
