"""Rotary-embedding frequency tables (pure PyTorch; shared by both backends).

The inverse frequencies are computed exactly as Hugging Face transformers does (fp32, same
operation order, so they match bit for bit and thus the numbers the checkpoints were trained
with). The angles ``position * inv_freq`` and their cos/sin are then taken in fp64 and rounded
once to the table dtype, which is more accurate than HF's fp32 product (at position 32k that
product alone is off by up to ~2e-3 rad).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = ["rope_cos_sin", "rope_inv_freq"]

_OP = "rope_cos_sin"


def _positive(scaling: Mapping[str, object], key: str) -> float:
    if key not in scaling:
        raise ValueError(f"{_OP}: rope scaling is missing {key!r}")
    value = scaling[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{_OP}: rope scaling {key!r} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{_OP}: rope scaling {key!r} must be finite and > 0, got {value!r}")
    return float(value)


def rope_inv_freq(
    head_dim: int, theta: float, scaling: Mapping[str, object] | None = None
) -> torch.Tensor:
    """Inverse rotary frequencies, ``[head_dim // 2]`` float32 on the CPU.

    Args:
        head_dim: Rotary dimension (even).
        theta: RoPE base (``rope_theta``).
        scaling: HF ``rope_scaling`` / ``rope_parameters`` dict, or None. Supported
            ``rope_type`` (or legacy ``type``): ``default``, ``linear`` (``factor``),
            ``llama3`` (``factor``, ``low_freq_factor``, ``high_freq_factor``,
            ``original_max_position_embeddings``).

    Raises:
        ValueError: On a bad head_dim/theta, an unsupported rope type or bad parameters.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0:
        raise ValueError(f"{_OP}: head_dim must be a positive int, got {head_dim!r}")
    if head_dim % 2:
        raise ValueError(f"{_OP}: head_dim must be even, got {head_dim}")
    if isinstance(theta, bool) or not isinstance(theta, (int, float)):
        raise ValueError(f"{_OP}: theta must be a number, got {theta!r}")
    if not (math.isfinite(theta) and theta > 0.0):
        raise ValueError(f"{_OP}: theta must be finite and > 0, got {theta!r}")
    if scaling is not None and not isinstance(scaling, Mapping):
        raise ValueError(f"{_OP}: scaling must be a dict or None, got {type(scaling).__name__}")

    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    inv_freq = 1.0 / (theta**exponents)  # [head_dim // 2] fp32, HF order of operations
    if not scaling:
        return inv_freq
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    prf = scaling.get("partial_rotary_factor", 1.0)
    if prf != 1.0:
        raise ValueError(f"{_OP}: partial_rotary_factor={prf!r} is not supported")
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / _positive(scaling, "factor")
    if rope_type == "llama3":
        return _llama3(inv_freq, scaling)
    raise ValueError(
        f"{_OP}: unsupported rope_type {rope_type!r}; supported: default, linear, llama3"
    )


def _llama3(inv_freq: torch.Tensor, scaling: Mapping[str, object]) -> torch.Tensor:
    # Mirrors transformers' _compute_llama3_parameters (same fp32 ops, same order).
    factor = _positive(scaling, "factor")
    low = _positive(scaling, "low_freq_factor")
    high = _positive(scaling, "high_freq_factor")
    old_ctx = _positive(scaling, "original_max_position_embeddings")
    if high <= low:
        raise ValueError(
            f"{_OP}: llama3 scaling needs high_freq_factor > low_freq_factor, got {high} <= {low}"
        )
    low_freq_wavelen = old_ctx / low
    high_freq_wavelen = old_ctx / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rope_cos_sin(
    head_dim: int,
    max_positions: int,
    theta: float,
    scaling: Mapping[str, object] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Cos/sin table for rotary embeddings.

    Args:
        head_dim: Rotary dimension D (even).
        max_positions: Number of positions P (table rows).
        theta: RoPE base.
        scaling: HF rope scaling dict or None (see `rope_inv_freq`).
        device: Where to put the table (computed on the CPU in fp64, then moved).
        dtype: Table dtype (fp32 recommended; the kernels compute in fp32 either way).

    Returns:
        ``[P, D]`` tensor: ``[:, :D/2]`` = cos(p * inv_freq), ``[:, D/2:]`` = sin(p * inv_freq).

    Raises:
        ValueError: On invalid arguments (see `rope_inv_freq`).
    """
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions <= 0:
        raise ValueError(f"{_OP}: max_positions must be a positive int, got {max_positions!r}")
    if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise ValueError(f"{_OP}: dtype must be a floating dtype, got {dtype}")
    inv_freq = rope_inv_freq(head_dim, theta, scaling).to(torch.float64)
    positions = torch.arange(max_positions, dtype=torch.float64)
    angles = torch.outer(positions, inv_freq)  # [P, D/2], exact products of fp32 inv_freq
    table = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return table.to(device=device, dtype=dtype).contiguous()
