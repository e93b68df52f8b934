"""SwiGLU activation on a fused gate/up projection (Triton).

Math, per row of ``gate_up = [g | u]`` (each half I wide), in fp32 with one rounding:
    out = silu(g) * u = g / (1 + exp(-g)) * u

Grid: (rows, column tiles of BLOCK); each program streams BLOCK gate and BLOCK up values
with 16-byte vector loads. Memory-bound: 3*T*I elements moved.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._checks import FLOAT_DTYPES, validate_swiglu
from kernels._triton_jit import cast_rne
from kernels._triton_utils import elementwise_config, is_interpreter

__all__ = ["swiglu"]


@triton.jit
def _swiglu_kernel(gu_ptr, out_ptr, inter, BLOCK: tl.constexpr, INTERPRET: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < inter
    in_row = gu_ptr + row * (2 * inter)
    g = tl.load(in_row + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(in_row + inter + cols, mask=mask, other=0.0).to(tl.float32)
    # exp(-g) overflows to inf for g < -88: g / inf = -0, the correct limit of silu.
    out = g / (1.0 + tl.exp(-g)) * u
    out = cast_rne(out, out_ptr.dtype.element_ty, INTERPRET)
    tl.store(out_ptr + row * inter + cols, out, mask=mask)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` for ``gate_up = [gate | up]`` along the last dim (Triton).

    Args:
        gate_up: ``[..., 2*I]`` contiguous fp32/fp16/bf16 (output of a fused gate/up matmul).

    Returns:
        New ``[..., I]`` tensor in gate_up's dtype.

    Raises:
        ValueError: On a wrong shape or dtype, an odd last dim, or a non-contiguous input.
    """
    gate_up = validate_swiglu("swiglu", gate_up, FLOAT_DTYPES)
    inter = gate_up.shape[-1] // 2
    out = gate_up.new_empty((*gate_up.shape[:-1], inter))
    rows = out.numel() // inter
    if rows == 0:
        return out
    block, num_warps = elementwise_config(inter, gate_up.element_size())
    grid = (rows, triton.cdiv(inter, block))
    _swiglu_kernel[grid](
        gate_up, out, inter, BLOCK=block, INTERPRET=is_interpreter(), num_warps=num_warps
    )
    return out
