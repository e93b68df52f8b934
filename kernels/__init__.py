"""botkit's transformer kernels: Triton on CUDA tensors, PyTorch references elsewhere.

Every public function validates its inputs (``ValueError`` on wrong shapes, dtypes, devices
or non-contiguous tensors) and dispatches per call through `kernels.dispatch`:
``force_backend("triton" | "reference")`` or ``BOTKIT_KERNELS`` override the automatic
choice. Importing this package imports torch only: triton and the kernel modules load on the
first call that needs them, and no device is probed at import time.

Layouts are token-major and contiguous. See each function for shapes.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any

import torch

from kernels._checks import SKINNY_MAX_ROWS
from kernels._rope_freqs import rope_cos_sin
from kernels.dispatch import Backend, force_backend, select_backend

__all__ = [
    "SKINNY_MAX_ROWS",
    "apply_rope_",
    "decode_attention",
    "force_backend",
    "fused_add_rms_norm",
    "prefill_attention",
    "rms_norm",
    "rope_and_cache",
    "rope_cos_sin",
    "skinny_linear",
    "skinny_linear_swiglu",
    "swiglu",
    "varlen_attention",
    "write_kv_cache",
]

# op -> {backend: (module, attribute)}. The attention helper's launchers carry a
# `_triton` / `_reference` suffix; ours use the public name.
_IMPLS: dict[str, dict[Backend, tuple[str, str]]] = {
    "rms_norm": {
        "triton": ("kernels.rmsnorm", "rms_norm"),
        "reference": ("kernels.reference", "rms_norm"),
    },
    "fused_add_rms_norm": {
        "triton": ("kernels.rmsnorm", "fused_add_rms_norm"),
        "reference": ("kernels.reference", "fused_add_rms_norm"),
    },
    "apply_rope_": {
        "triton": ("kernels.rope", "apply_rope_"),
        "reference": ("kernels.reference", "apply_rope_"),
    },
    "swiglu": {
        "triton": ("kernels.swiglu", "swiglu"),
        "reference": ("kernels.reference", "swiglu"),
    },
    "skinny_linear": {
        "triton": ("kernels.skinny_linear", "skinny_linear"),
        "reference": ("kernels.reference", "skinny_linear"),
    },
    "skinny_linear_swiglu": {
        "triton": ("kernels.skinny_linear", "skinny_linear_swiglu"),
        "reference": ("kernels.reference", "skinny_linear_swiglu"),
    },
    "write_kv_cache": {
        "triton": ("kernels.kv_cache", "write_kv_cache_triton"),
        "reference": ("kernels.reference_attention", "write_kv_cache_reference"),
    },
    "rope_and_cache": {
        "triton": ("kernels.rope_cache", "rope_and_cache_triton"),
        "reference": ("kernels.reference_attention", "rope_and_cache_reference"),
    },
    "prefill_attention": {
        "triton": ("kernels.prefill_attention", "prefill_attention_triton"),
        "reference": ("kernels.reference_attention", "prefill_attention_reference"),
    },
    "decode_attention": {
        "triton": ("kernels.decode_attention", "decode_attention_triton"),
        "reference": ("kernels.reference_attention", "decode_attention_reference"),
    },
    "varlen_attention": {
        "triton": ("kernels.varlen_attention", "varlen_attention_triton"),
        "reference": ("kernels.reference_attention", "varlen_attention_reference"),
    },
}
_resolved: dict[tuple[Backend, str], Callable[..., Any]] = {}


def _impl(op: str, tensor: torch.Tensor) -> Callable[..., Any]:
    backend = select_backend(op, tensor)
    fn = _resolved.get((backend, op))
    if fn is None:
        module_name, attr = _IMPLS[op][backend]
        fn = getattr(importlib.import_module(module_name), attr)
        _resolved[(backend, op)] = fn
    return fn


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim: ``y = x * rsqrt(mean(x^2) + eps) * weight``.

    Args:
        x: ``[T, H]`` (any leading dims) fp32/fp16/bf16.
        weight: ``[H]``.
        eps: Added to the mean square.

    Returns:
        New ``y`` like x (fp32 math, one rounding).
    """
    return _impl("rms_norm", x)(x, weight, eps)  # type: ignore[no-any-return]


def fused_add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add + RMSNorm, **in place** on both backends.

    ``residual <- x + residual`` (rounded to the storage dtype), ``x <- rms_norm(residual)``.

    Args:
        x: ``[T, H]`` block output (overwritten with y).
        residual: ``[T, H]`` same dtype (overwritten with the new residual).
        weight: ``[H]``.
        eps: Added to the mean square.

    Returns:
        ``(y, new_residual)``, which are the tensors ``x`` and ``residual``.
    """
    return _impl("fused_add_rms_norm", x)(x, residual, weight, eps)  # type: ignore[no-any-return]


def apply_rope_(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_sin: torch.Tensor
) -> None:
    """Rotary embedding in place on q ``[T,Hq,D]`` and k ``[T,Hk,D]`` (HF rotate_half).

    Args:
        q: Queries, modified in place.
        k: Keys, same dtype, modified in place.
        positions: ``[T]`` int32/int64 rows of cos_sin.
        cos_sin: ``[P, D]`` table from `rope_cos_sin`.

    Raises:
        ValueError: On bad inputs. Out-of-range positions raise on CPU; on CUDA they are not
            checked (no device sync) and those tokens are left unrotated.
    """
    _impl("apply_rope_", q)(q, k, positions, cos_sin)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate_up[:, :I]) * gate_up[:, I:]`` -> new ``[T, I]`` tensor."""
    return _impl("swiglu", gate_up)(gate_up)  # type: ignore[no-any-return]


def skinny_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x W^T + b`` for x ``[M, K]`` with ``M <= 8`` rows (batch-1..8 decode), W ``[N, K]``
    -> new ``[M, N]`` (fp32 math, one rounding)."""
    return _impl("skinny_linear", x)(x, weight, bias)  # type: ignore[no-any-return]


def skinny_linear_swiglu(x: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(x W_gate^T) * (x W_up^T)`` for the merged ``gate_up = [W_gate; W_up]``
    ``[2I, K]`` and x ``[M, K]`` with ``M <= 8`` -> new ``[M, I]`` (fp32 math, the
    gate/up product unrounded, one rounding)."""
    return _impl("skinny_linear_swiglu", x)(x, gate_up)  # type: ignore[no-any-return]


def write_kv_cache(
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Scatter k/v ``[T,Hk,D]`` into paged caches ``[blocks, block_size, Hk, D]``.

    Token t goes to slot ``slot_mapping[t]`` (= block_id * block_size + offset); -1 skips it.
    """
    _impl("write_kv_cache", k)(k, v, k_cache, v_cache, slot_mapping)


def rope_and_cache(
    qkv: torch.Tensor,
    positions: torch.Tensor,
    cos_sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    num_q_heads: int,
) -> torch.Tensor:
    """`apply_rope_` + `write_kv_cache` straight from the fused projection, in one launch.

    ``qkv [T, (Hq + 2*Hk) * D]`` holds q, k and v heads per token; k and v (k rotated) go
    to slot ``slot_mapping[t]`` of the paged caches ``[blocks, block_size, Hk, D]`` (-1
    skips the token). Returns the rotated queries ``[T, Hq, D]`` as a new tensor.
    """
    fn = _impl("rope_and_cache", qkv)
    return fn(  # type: ignore[no-any-return]
        qkv, positions, cos_sin, k_cache, v_cache, slot_mapping, num_q_heads
    )


def prefill_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    context_lens: torch.Tensor,
    block_tables: torch.Tensor,
    scale: float,
    causal: bool = True,
) -> torch.Tensor:
    """Varlen (GQA) attention of packed queries ``[Tq,Hq,D]`` over a paged K/V cache.

    Sequence b's queries are the last ``cu_seqlens_q[b+1] - cu_seqlens_q[b]`` positions of
    its context of ``context_lens[b]`` tokens, whose K/V were written with `write_kv_cache`.
    """
    fn = _impl("prefill_attention", q)
    return fn(  # type: ignore[no-any-return]
        q, k_cache, v_cache, cu_seqlens_q, context_lens, block_tables, scale, causal=causal
    )


def decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    num_splits: int | None = None,
) -> torch.Tensor:
    """One query per sequence ``[B,Hq,D]`` against the paged cache; zeros where len is 0."""
    fn = _impl("decode_attention", q)
    return fn(  # type: ignore[no-any-return]
        q, k_cache, v_cache, block_tables, context_lens, scale, num_splits=num_splits
    )


def varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    scale: float,
    causal: bool = False,
) -> torch.Tensor:
    """Attention over packed unpadded sequences (encoder self-/cross-attention)."""
    fn = _impl("varlen_attention", q)
    return fn(  # type: ignore[no-any-return]
        q, k, v, cu_seqlens_q, cu_seqlens_k, scale, causal=causal
    )


class _KernelsPackage(types.ModuleType):
    """The package module, guarded so same-named submodules cannot shadow the public API.

    Importing a submodule sets it as an attribute of its package, so the first import of
    ``kernels.swiglu`` (or the attention helper's ``kernels.decode_attention``...) would
    replace the function ``kernels.swiglu`` with a module. Submodules stay reachable through
    ``importlib.import_module`` / ``from kernels.swiglu import ...``.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and name in _IMPLS:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _KernelsPackage
