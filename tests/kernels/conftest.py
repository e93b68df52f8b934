"""Shared helpers for the kernel tests (all kernels, attention included).

Without CUDA the Triton kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1`` is set
here, at conftest import, because Triton decides interpreted vs compiled when a
``@triton.jit`` function is defined, i.e. when a kernel module is first imported. The kernel
modules are imported lazily (by `kernels.__init__`), after this file has run.

Helpers:
    ON_GPU / DEVICE      where the Triton path runs compiled (CUDA) or interpreted (CPU).
    gpu_or_cpu(full, small)  pick the full sweep on GPU, a small one under the interpreter.
    triton_backend()     context forcing the Triton path (works on CPU via the interpreter).
    assert_close_to_reference(ours, same_dtype_torch, ref)  the 2x error rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

import pytest
import torch

ON_GPU: bool = torch.cuda.is_available()
if not ON_GPU:
    os.environ["TRITON_INTERPRET"] = "1"

DEVICE: str = "cuda" if ON_GPU else "cpu"
GPU_ONLY_REASON = "needs a CUDA GPU: the compiled Triton path is only exercised on CUDA"
requires_gpu = pytest.mark.skipif(not ON_GPU, reason=GPU_ONLY_REASON)

T = TypeVar("T")

# Slack for the 2x rule, as a fraction of max|ref|. Every kernel computes in fp32 and rounds
# once on store, like the references, so the only differences the 2x term does not cover are
# fp32-level: summation order in reductions (~log2(H) fp32 ulps) and the hardware
# approximations compiled Triton uses for exp/sqrt/rsqrt (<= 2 fp32 ulps each). 8 fp32 ulps
# (~1e-6) covers those and nothing more: for bf16/fp16 it is ~1/4000 of the storage rounding
# error the 2x term compares against, so a kernel that rounds wrongly (e.g. truncates bf16)
# still fails, and for fp32 a 1e-4 relative error in one exp fails (both checked by mutation).
EPS_REL: dict[torch.dtype, float] = {
    torch.float32: 8 * torch.finfo(torch.float32).eps,
    torch.float16: 8 * torch.finfo(torch.float32).eps,
    torch.bfloat16: 8 * torch.finfo(torch.float32).eps,
}

FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)


def gpu_or_cpu(full: Sequence[T], small: Sequence[T]) -> list[T]:
    """Parametrize values: the full sweep when CUDA is present, a cheap subset otherwise."""
    return list(full) if ON_GPU else list(small)


def triton_backend() -> AbstractContextManager[None]:
    """Force the Triton path (compiled on CUDA, interpreted on CPU tensors)."""
    from kernels.dispatch import force_backend

    return force_backend("triton")


def max_abs_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| computed in fp64 (0.0 for empty tensors)."""
    if a.numel() == 0:
        return 0.0
    return float((a.double() - b.double()).abs().max())


def assert_close_to_reference(
    ours: torch.Tensor,
    same_dtype_torch: torch.Tensor,
    ref: torch.Tensor,
    *,
    what: str = "output",
) -> None:
    """Pass when ``max|ours - ref| <= 2 * max|same_dtype_torch - ref| + eps``.

    Args:
        ours: Kernel output (any float dtype).
        same_dtype_torch: The same math done by PyTorch in ours's dtype.
        ref: High-precision (fp64 or fp32) ground truth.
        what: Label used in the failure message.

    ``eps = EPS_REL[ours.dtype] * max|ref|`` (see EPS_REL for the justification). Shapes must
    match exactly and ours must be finite wherever ref is.
    """
    assert ours.shape == ref.shape == same_dtype_torch.shape, (
        f"{what}: shapes differ: ours {tuple(ours.shape)}, torch {tuple(same_dtype_torch.shape)}"
        f", ref {tuple(ref.shape)}"
    )
    assert ours.dtype == same_dtype_torch.dtype, (
        f"{what}: ours is {ours.dtype} but the torch baseline is {same_dtype_torch.dtype}"
    )
    if ref.numel() == 0:
        return
    ours_d, torch_d = ours.double().cpu(), same_dtype_torch.double().cpu()
    ref_d = ref.double().cpu()
    finite = torch.isfinite(ref_d)
    assert bool(torch.isfinite(ours_d[finite]).all()), f"{what}: ours has non-finite values"
    scale = float(ref_d[finite].abs().max()) if bool(finite.any()) else 0.0
    eps = EPS_REL[ours.dtype] * scale
    err_ours = max_abs_err(ours_d[finite], ref_d[finite])
    err_torch = max_abs_err(torch_d[finite], ref_d[finite])
    bound = 2.0 * err_torch + eps
    assert err_ours <= bound, (
        f"{what} ({ours.dtype}): max|ours-ref| = {err_ours:.3e} > 2*max|torch-ref| + eps = "
        f"2*{err_torch:.3e} + {eps:.1e}"
    )


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    """Deterministic random inputs for every kernel test."""
    torch.manual_seed(0)
    yield
