"""Linear layers for a handful of rows (batch-1..8 decode): ``x W^T (+ b)`` and the MLP's
``silu(x W_gate^T) * (x W_up^T)`` in one kernel (Triton).

Math, for x ``[M, K]`` (M <= 8) and W ``[N, K]``, in fp32 with one rounding per output:
    out[m, n] = sum_k x[m, k] * W[n, k] (+ b[n])
and with ``gate_up = [W_gate; W_up]`` (``[2I, K]``, the merged gate/up weight):
    out[m, j] = silu(sum_k x[m, k] W_gate[j, k]) * sum_k x[m, k] W_up[j, k]

Why: at batch 1 a decode step is ~10 kernels per layer, and on an H200 each of cuBLAS's
products for Qwen2.5-0.5B took 4.4-7 µs (the 2 MB q/k/v and o projections at 0.4 TB/s,
the down projection as a split-K product plus its reduction), where the weights alone
take 0.4-4 µs at copy bandwidth (benchmarks/results/engine-profile-h200-overlap/). This
kernel reads each weight once with wide loads from many programs, and folds the SwiGLU
into the gate/up product, so an MLP is two kernels instead of three and a layer has no
split-K reduction. Whether it beats cuBLAS is measured by ``benchmarks/kernels.py``
(section ``skinny_linear``) on a GPU; the engine uses it only when asked
(``EngineConfig.skinny_kernels``).

Grid: one program per BLOCK_N output columns (per BLOCK_N gate/up pairs). Each program
keeps ``[BLOCK_M, BLOCK_N, BLOCK_K]`` partial products in registers and reduces over K
once at the end, so the loop is loads and FMAs only. Memory-bound: N*K weights + M*K
inputs read, M*N written.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels._checks import FLOAT_DTYPES, SKINNY_MAX_ROWS, validate_skinny_linear
from kernels._triton_jit import cast_rne
from kernels._triton_utils import is_interpreter, next_power_of_2

__all__ = ["SKINNY_MAX_ROWS", "skinny_linear", "skinny_linear_swiglu"]

# Under the interpreter every program is a Python loop: a few are enough to cover the
# tiling (several column tiles, the last one partial) without the cost of hundreds.
_INTERPRETER_PROGRAMS = 4


@triton.jit
def _skinny_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    out_ptr,
    M,
    N,
    K,
    HAS_BIAS: tl.constexpr,
    SWIGLU: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # output columns
    rows = tl.arange(0, BLOCK_M)
    col_ok = cols < N
    row_ok = rows < M
    w_rows = w_ptr + cols.to(tl.int64)[:, None] * K  # [BLOCK_N, 1]
    acc = tl.zeros((BLOCK_M, BLOCK_N, BLOCK_K), dtype=tl.float32)
    if SWIGLU:
        up_rows = w_ptr + (cols + N).to(tl.int64)[:, None] * K  # the up half: N rows on
        acc_up = tl.zeros((BLOCK_M, BLOCK_N, BLOCK_K), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < K
        x = tl.load(
            x_ptr + rows[:, None] * K + ks[None, :],
            mask=row_ok[:, None] & k_ok[None, :],
            other=0.0,
        ).to(tl.float32)  # [BLOCK_M, BLOCK_K]
        w_mask = col_ok[:, None] & k_ok[None, :]
        w = tl.load(w_rows + ks[None, :], mask=w_mask, other=0.0).to(tl.float32)
        acc += x[:, None, :] * w[None, :, :]
        if SWIGLU:
            u = tl.load(up_rows + ks[None, :], mask=w_mask, other=0.0).to(tl.float32)
            acc_up += x[:, None, :] * u[None, :, :]
    out = tl.sum(acc, axis=2)  # [BLOCK_M, BLOCK_N]
    if HAS_BIAS:
        out += tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if SWIGLU:
        # exp(-g) overflows to inf for g < -88: g / inf = -0, the correct limit of silu.
        out = out / (1.0 + tl.exp(-out)) * tl.sum(acc_up, axis=2)
    out = cast_rne(out, out_ptr.dtype.element_ty, INTERPRET)
    out_mask = row_ok[:, None] & col_ok[None, :]
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], out, mask=out_mask)


def skinny_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x W^T + b`` for at most ``SKINNY_MAX_ROWS`` rows (Triton).

    Args:
        x: ``[M, K]`` contiguous fp32/fp16/bf16, ``M <= SKINNY_MAX_ROWS``.
        weight: ``[N, K]`` contiguous, x's dtype and device.
        bias: optional ``[N]``, same dtype and device.

    Returns:
        New ``[M, N]`` tensor in x's dtype.

    Raises:
        ValueError: On wrong shapes, dtypes, devices, too many rows or a non-contiguous input.
    """
    x, weight, bias = validate_skinny_linear("skinny_linear", x, weight, bias, FLOAT_DTYPES)
    return _launch(x, weight, bias, weight.shape[0], swiglu=False)


def skinny_linear_swiglu(x: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(x W_gate^T) * (x W_up^T)`` with ``gate_up = [W_gate; W_up]`` (Triton).

    Args:
        x: ``[M, K]`` contiguous fp32/fp16/bf16, ``M <= SKINNY_MAX_ROWS``.
        gate_up: ``[2I, K]`` contiguous merged gate/up weight, x's dtype and device.

    Returns:
        New ``[M, I]`` tensor in x's dtype.

    Raises:
        ValueError: As ``skinny_linear``, or when gate_up has an odd number of rows.
    """
    x, gate_up, _ = validate_skinny_linear(
        "skinny_linear_swiglu", x, gate_up, None, FLOAT_DTYPES, paired=True
    )
    return _launch(x, gate_up, None, gate_up.shape[0] // 2, swiglu=True)


def _launch(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, n: int, *, swiglu: bool
) -> torch.Tensor:
    m, k = x.shape
    out = x.new_empty((m, n))
    if m == 0 or n == 0:
        return out
    block_m = next_power_of_2(m)
    block_n, block_k, num_warps = _config(block_m, n, k, x.element_size(), swiglu, x.device)
    _skinny_kernel[(triton.cdiv(n, block_n),)](
        x,
        weight,
        bias if bias is not None else weight,  # never read without HAS_BIAS
        out,
        m,
        n,
        k,
        HAS_BIAS=bias is not None,
        SWIGLU=swiglu,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        INTERPRET=is_interpreter(),
        num_warps=num_warps,
    )
    return out


def _config(
    block_m: int, n: int, k: int, elem_bytes: int, swiglu: bool, device: torch.device
) -> tuple[int, int, int]:
    """(BLOCK_N, BLOCK_K, num_warps).

    Registers bound the tile: ``BLOCK_M * BLOCK_N * BLOCK_K`` fp32 partials (twice with
    SwiGLU) over ``32 * num_warps`` threads stay at 64 per thread. Within that, BLOCK_K
    covers 16-byte loads across the warps, and BLOCK_N is as wide as still leaves
    two programs per SM (every SM streaming even for 896-wide outputs).
    """
    num_warps = 4
    budget = 64 * 32 * num_warps // (2 if swiglu else 1)  # fp32 partials per program
    vector = 16 // elem_bytes
    block_k = min(next_power_of_2(k), max(vector * 32, budget // block_m))
    programs = _programs(device)
    block_n = 1
    while block_n * 2 * block_m * block_k <= budget and triton.cdiv(n, block_n * 2) >= programs:
        block_n *= 2
    return block_n, block_k, num_warps


@functools.cache
def _sm_count(index: int) -> int:
    return int(torch.cuda.get_device_properties(index).multi_processor_count)


def _programs(device: torch.device) -> int:
    if device.type != "cuda":
        return _INTERPRETER_PROGRAMS
    return 2 * _sm_count(device.index if device.index is not None else torch.cuda.current_device())
