"""SwiGLU on a fused gate/up projection: Triton vs reference."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from conftest import (
    DEVICE,
    FLOAT_DTYPES,
    assert_close_to_reference,
    gpu_or_cpu,
    triton_backend,
)

import kernels
from kernels import reference as ref

# (tokens, I, dtype): I is the intermediate width (each half of gate_up). GPU: the issue's
# odd sizes crossed with every dtype, plus the real models' widths (SmolLM2 1536, Qwen2.5
# 0.5B 4864, 1.5B 8960) so multi-tile rows run. Interpreter: each value once.
CASES = gpu_or_cpu(
    full=[(t, i, d) for t in (1, 17, 97, 257) for i in (896, 576, 123) for d in FLOAT_DTYPES]
    + [(64, 1536, torch.bfloat16), (33, 4864, torch.bfloat16), (7, 8960, torch.float16)],
    small=[
        (1, 896, torch.float32),
        (17, 123, torch.bfloat16),
        (97, 576, torch.float16),
        (257, 123, torch.float32),
        (3, 1100, torch.bfloat16),  # two column tiles, the second partial
    ],
)


@pytest.mark.parametrize(("tokens", "inter", "dtype"), CASES, ids=str)
def test_swiglu_matches_reference(tokens: int, inter: int, dtype: torch.dtype) -> None:
    gate_up = (torch.randn(tokens, 2 * inter) * 3.0).to(DEVICE, dtype)
    with triton_backend():
        ours = kernels.swiglu(gate_up)
    assert ours.shape == (tokens, inter) and ours.dtype == dtype
    assert_close_to_reference(ours, ref.swiglu(gate_up), ref.swiglu(gate_up.double()))


def test_reference_is_silu_gate_times_up() -> None:
    gate_up = torch.randn(4, 10, dtype=torch.float64)
    gate, up = gate_up[:, :5], gate_up[:, 5:]
    expected = gate / (1 + torch.exp(-gate)) * up
    torch.testing.assert_close(ref.swiglu(gate_up), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_extreme_gates_stay_finite(backend: str) -> None:
    """exp(-g) overflows fp32 for g < -88: silu must still go to 0, not NaN."""
    gate = torch.tensor([[-1000.0, -90.0, -20.0, 0.0, 20.0, 90.0, 1000.0]])
    gate_up = torch.cat([gate, torch.full_like(gate, 0.5)], dim=-1).to(DEVICE)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        out = kernels.swiglu(gate_up)
    expected = torch.tensor([[0.0, 0.0, -10.0 / (1 + math.exp(20.0)), 0.0, 10.0, 45.0, 500.0]])
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_leading_dims_and_empty(backend: str) -> None:
    gate_up = torch.randn(2, 3, 10, device=DEVICE)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        out = kernels.swiglu(gate_up)
        empty = kernels.swiglu(gate_up[:0])
    torch.testing.assert_close(out, ref.swiglu(gate_up.view(6, 10)).view(2, 3, 5))
    assert empty.shape == (0, 3, 5)


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: torch.randn(4, 7, device=d), "2\\*I"),
        (lambda d: torch.randn(4, 0, device=d), "2\\*I"),
        (lambda d: torch.randn(8, 4, device=d).t(), "contiguous"),
        # Built on the device: on a GPU, .to() of this view makes a contiguous copy.
        (lambda d: torch.randn(4, 8, device=d)[:, ::2], "contiguous"),
        (lambda d: torch.ones(4, 8, dtype=torch.int64, device=d), "dtype"),
        (lambda d: torch.tensor(1.0, device=d), "at least 1 dims"),
        (lambda d: [1.0, 2.0], "torch.Tensor"),
    ],
)
def test_swiglu_rejects_bad_inputs(backend: str, make: Any, message: str) -> None:
    value = make(DEVICE)
    with kernels.force_backend(backend), pytest.raises(ValueError, match=message):  # type: ignore[arg-type]
        kernels.swiglu(value)
