"""Device helpers shared by the Triton kernels (this module imports triton).

``cast_rne`` exists because Triton's CPU interpreter (checked in 3.9) converts fp32 to bf16
by truncation, while compiled kernels round to nearest even. Truncation doubles the bf16
error, which the 2x-of-torch tolerance then (rightly) rejects. Under the interpreter we
round in integer arithmetic first, so the final conversion is exact; compiled kernels pass
INTERPRET=False and the branch is removed at compile time.
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["cast_rne"]


@triton.jit
def cast_rne(x, DTYPE: tl.constexpr, INTERPRET: tl.constexpr):
    """Cast fp32 ``x`` to ``DTYPE`` rounding to nearest even on every backend."""
    if INTERPRET:
        if DTYPE == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            # Add 0x7FFF plus the lowest kept bit (ties to even), drop the low 16 bits.
            bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
            x = bits.to(tl.float32, bitcast=True)
    return x.to(DTYPE)
