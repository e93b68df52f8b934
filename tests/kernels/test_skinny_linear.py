"""Linear and linear+SwiGLU for a few rows (batch-1..8 decode): Triton vs reference.

"The same math done by PyTorch in the same dtype" (the 2x rule's yardstick) is what the
engine does without these kernels: ``F.linear`` in the storage dtype, then the SwiGLU
kernel's reference on the rounded gate/up product.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    DEVICE,
    FLOAT_DTYPES,
    assert_close_to_reference,
    gpu_or_cpu,
    triton_backend,
)

import kernels
from kernels import reference as ref

# (rows, N, K, dtype). GPU: the odd sizes for both dims, every row count and dtype,
# plus Qwen2.5-0.5B's and SmolLM2's decode shapes (q/k/v 896->1152, o 896->896, MLP
# 896->2x4864 and 4864->896, SmolLM2 576->1536x2 and 1536->576). Interpreter: a handful.
CASES = gpu_or_cpu(
    full=[
        (m, n, k, d)
        for m in (1, 3, 8)
        for n in (896, 123)
        for k in (576, 123)
        for d in FLOAT_DTYPES
    ]
    + [
        (m, n, k, torch.bfloat16)
        for m in (1, 2, 5)
        for n, k in ((1152, 896), (896, 896), (4864, 896), (896, 4864), (1536, 576), (576, 1536))
    ],
    small=[
        (1, 96, 576, torch.float32),
        (3, 123, 123, torch.bfloat16),  # rows, columns and K all off any tile
        (8, 17, 1100, torch.float16),  # K over one BLOCK_K: two passes, the second partial
        (2, 1, 7, torch.float32),
        (5, 40, 64, torch.bfloat16),
    ],
)


def _inputs(m: int, n: int, k: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(m, k).to(DEVICE, dtype)
    weight = (torch.randn(n, k) / k**0.5).to(DEVICE, dtype)  # outputs of order 1, like a model
    return x, weight


@pytest.mark.parametrize(("rows", "n", "k", "dtype"), CASES, ids=str)
@pytest.mark.parametrize("with_bias", [False, True])
def test_skinny_linear_matches_reference(
    rows: int, n: int, k: int, dtype: torch.dtype, with_bias: bool
) -> None:
    x, weight = _inputs(rows, n, k, dtype)
    bias = torch.randn(n).to(DEVICE, dtype) if with_bias else None
    with triton_backend():
        ours = kernels.skinny_linear(x, weight, bias)
    assert ours.shape == (rows, n) and ours.dtype == dtype
    wide = ref.skinny_linear(x.double(), weight.double(), None if bias is None else bias.double())
    assert_close_to_reference(ours, F.linear(x, weight, bias), wide)


@pytest.mark.parametrize(("rows", "inter", "k", "dtype"), CASES, ids=str)
def test_skinny_linear_swiglu_matches_reference(
    rows: int, inter: int, k: int, dtype: torch.dtype
) -> None:
    x, gate_up = _inputs(rows, 2 * inter, k, dtype)
    with triton_backend():
        ours = kernels.skinny_linear_swiglu(x, gate_up)
    assert ours.shape == (rows, inter) and ours.dtype == dtype
    unfused = ref.swiglu(F.linear(x, gate_up))
    assert_close_to_reference(ours, unfused, ref.skinny_linear_swiglu(x.double(), gate_up.double()))


def test_reference_is_the_textbook_math() -> None:
    x = torch.randn(3, 10, dtype=torch.float64)
    weight, bias = torch.randn(8, 10, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(ref.skinny_linear(x, weight, bias), x @ weight.T + bias)
    gate, up = x @ weight[:4].T, x @ weight[4:].T
    expected = gate / (1 + torch.exp(-gate)) * up
    torch.testing.assert_close(ref.skinny_linear_swiglu(x, weight), expected)


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_rows_are_independent_and_empty_is_legal(backend: str) -> None:
    """Each row's output is its own product (no row reads another's inputs or tile),
    whatever the row count (BLAS may sum in another order for 1 row: fp32 tolerance);
    zero rows give an empty result."""
    x, weight = _inputs(5, 33, 70, torch.float32)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        together = kernels.skinny_linear(x, weight)
        alone = torch.cat([kernels.skinny_linear(x[i : i + 1], weight) for i in range(5)])
        empty = kernels.skinny_linear_swiglu(x[:0], weight[:32])
    torch.testing.assert_close(together, alone)
    assert empty.shape == (0, 16)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_extreme_gates_stay_finite(backend: str) -> None:
    """exp(-g) overflows fp32 for g < -88: silu must still go to 0, not NaN."""
    gates = torch.tensor([-1000.0, -90.0, 0.0, 90.0, 1000.0])
    x = torch.ones(1, 1, device=DEVICE)
    gate_up = torch.cat([gates, torch.full_like(gates, 0.5)]).view(10, 1).to(DEVICE)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        out = kernels.skinny_linear_swiglu(x, gate_up)
    expected = torch.tensor([[0.0, 0.0, 0.0, 45.0, 500.0]])
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-6, atol=1e-6)


def _bad(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "x": torch.randn(2, 8, device=DEVICE),
        "weight": torch.randn(6, 8, device=DEVICE),
        "bias": None,
    }
    return args | changes


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda: _bad(x=torch.randn(9, 8, device=DEVICE)), "9 rows, at most 8"),
        (lambda: _bad(x=torch.randn(2, 7, device=DEVICE)), "same K"),
        (lambda: _bad(x=torch.randn(2, 0, device=DEVICE)), "same K"),
        (lambda: _bad(x=torch.randn(8, 2, device=DEVICE).t()), "contiguous"),
        (lambda: _bad(weight=torch.randn(8, 6, device=DEVICE).t()), "contiguous"),
        (lambda: _bad(weight=torch.randn(6, 8, dtype=torch.float16, device=DEVICE)), "dtype"),
        (lambda: _bad(x=torch.ones(2, 8, dtype=torch.int64, device=DEVICE)), "dtype"),
        (lambda: _bad(x=torch.randn(8, device=DEVICE)), "2-D"),
        (lambda: _bad(bias=torch.randn(5, device=DEVICE)), r"bias must be \[6\]"),
        (lambda: _bad(bias=torch.randn(6, dtype=torch.float16, device=DEVICE)), "dtype"),
        (lambda: _bad(weight=[[1.0]]), "torch.Tensor"),
    ],
)
def test_skinny_linear_rejects_bad_inputs(backend: str, args: Any, message: str) -> None:
    with kernels.force_backend(backend), pytest.raises(ValueError, match=message):  # type: ignore[arg-type]
        kernels.skinny_linear(**args())


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_swiglu_weight_needs_paired_rows(backend: str) -> None:
    x, weight = torch.randn(1, 8, device=DEVICE), torch.randn(7, 8, device=DEVICE)
    with kernels.force_backend(backend), pytest.raises(ValueError, match="2\\*I rows"):  # type: ignore[arg-type]
        kernels.skinny_linear_swiglu(x, weight)


@pytest.mark.skipif(DEVICE != "cpu", reason="needs CPU and meta tensors side by side")
@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_devices_must_match(backend: str) -> None:
    x, weight = torch.randn(1, 8), torch.randn(4, 8, device="meta")
    with kernels.force_backend(backend), pytest.raises(ValueError, match="one device"):  # type: ignore[arg-type]
        kernels.skinny_linear(x, weight)
