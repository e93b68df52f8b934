"""RMSNorm and fused residual-add + RMSNorm (Triton).

Math, per row x of length H (all in fp32, one rounding on store):
    rms_norm:            y = x * rsqrt(mean(x^2) + eps) * w
    fused_add_rms_norm:  s = round(x + r);  r <- s;  x <- s * rsqrt(mean(s^2) + eps) * w

One program per row: the row is loaded once into registers (BLOCK = H padded to a power of
two, one 16-byte vector per thread, num_warps from the hidden size), reduced, scaled and
stored. Memory-bound: rms_norm moves 2*T*H elements, the fused kernel 4*T*H.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._checks import FLOAT_DTYPES, validate_fused_add_rms_norm, validate_rms_norm
from kernels._triton_jit import cast_rne
from kernels._triton_utils import MAX_ROW_BLOCK, is_interpreter, row_config

__all__ = ["fused_add_rms_norm", "rms_norm"]


@triton.jit
def _rms_norm_kernel(
    x_ptr, w_ptr, y_ptr, n_cols, eps, BLOCK: tl.constexpr, INTERPRET: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    offs = row * n_cols + cols
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    y = cast_rne(x * rstd * w, y_ptr.dtype.element_ty, INTERPRET)
    tl.store(y_ptr + offs, y, mask=mask)


@triton.jit
def _fused_add_rms_norm_kernel(
    x_ptr, r_ptr, w_ptr, n_cols, eps, BLOCK: tl.constexpr, INTERPRET: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    offs = row * n_cols + cols
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    # Round the sum to the storage dtype first so y == rms_norm(new residual) exactly.
    s = cast_rne(x + r, r_ptr.dtype.element_ty, INTERPRET)
    tl.store(r_ptr + offs, s, mask=mask)
    s = s.to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / n_cols + eps)
    y = cast_rne(s * rstd * w, x_ptr.dtype.element_ty, INTERPRET)
    tl.store(x_ptr + offs, y, mask=mask)


def _launch_config(op: str, hidden: int, dtype: torch.dtype) -> tuple[int, int]:
    block, num_warps = row_config(hidden, torch.empty((), dtype=dtype).element_size())
    if block > MAX_ROW_BLOCK:
        raise ValueError(f"{op}: hidden size {hidden} exceeds the kernel's limit {MAX_ROW_BLOCK}")
    return block, num_warps


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim (Triton).

    Args:
        x: ``[..., H]`` contiguous fp32/fp16/bf16.
        weight: ``[H]`` contiguous fp32/fp16/bf16.
        eps: Added to the mean square (finite, >= 0).

    Returns:
        A new tensor like x holding ``x * rsqrt(mean(x^2) + eps) * weight``.

    Raises:
        ValueError: On wrong shapes, dtypes, devices or non-contiguous inputs.
    """
    x, weight, eps = validate_rms_norm("rms_norm", x, weight, eps, FLOAT_DTYPES)
    hidden = x.shape[-1]
    y = torch.empty_like(x)
    rows = x.numel() // hidden
    if rows == 0:
        return y
    block, num_warps = _launch_config("rms_norm", hidden, x.dtype)
    _rms_norm_kernel[(rows,)](
        x, weight, y, hidden, eps, BLOCK=block, INTERPRET=is_interpreter(), num_warps=num_warps
    )
    return y


def fused_add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add + RMSNorm in one pass, in place (Triton).

    Args:
        x: ``[..., H]`` block output; overwritten with ``rms_norm(x + residual)``.
        residual: ``[..., H]`` same dtype; overwritten with ``x + residual``.
        weight: ``[H]`` gain.
        eps: Added to the mean square.

    Returns:
        ``(x, residual)``: the same tensors, now ``(y, new_residual)``.

    Raises:
        ValueError: On wrong shapes, dtypes, devices, aliasing or non-contiguous inputs.
    """
    x, residual, weight, eps = validate_fused_add_rms_norm(
        "fused_add_rms_norm", x, residual, weight, eps, FLOAT_DTYPES
    )
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    if rows == 0:
        return x, residual
    block, num_warps = _launch_config("fused_add_rms_norm", hidden, x.dtype)
    _fused_add_rms_norm_kernel[(rows,)](
        x,
        residual,
        weight,
        hidden,
        eps,
        BLOCK=block,
        INTERPRET=is_interpreter(),
        num_warps=num_warps,
    )
    return x, residual
