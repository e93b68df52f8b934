"""RMSNorm and fused add + RMSNorm: Triton (interpreted on CPU, compiled on CUDA) vs reference."""

from __future__ import annotations

import pytest
import torch
from conftest import (
    DEVICE,
    FLOAT_DTYPES,
    assert_close_to_reference,
    gpu_or_cpu,
    requires_gpu,
    triton_backend,
)

import kernels
from kernels import reference as ref

EPS = 1e-6
# (tokens, hidden, dtype): the full cross product of the odd sizes on GPU (plus
# large rows for the 8/16-warp configs); under the interpreter every token count, hidden
# size and dtype appears at least once.
CASES = gpu_or_cpu(
    full=[(t, h, d) for t in (1, 17, 97, 257) for h in (896, 576, 123) for d in FLOAT_DTYPES]
    + [(4096, 1536, torch.bfloat16), (33, 4096, torch.float32), (5, 16384, torch.bfloat16)],
    small=[
        (1, 896, torch.bfloat16),
        (17, 123, torch.float16),
        (97, 576, torch.float32),
        (257, 123, torch.bfloat16),
        (17, 576, torch.bfloat16),
    ],
)
BACKENDS = ("triton", "reference")


def _inputs(tokens: int, hidden: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    x = (torch.randn(tokens, hidden) * 2.0 + 0.5).to(DEVICE, dtype)
    weight = (1.0 + 0.5 * torch.randn(hidden)).to(DEVICE, dtype)
    return x, weight


@pytest.mark.parametrize(("tokens", "hidden", "dtype"), CASES, ids=str)
def test_rms_norm_matches_reference(tokens: int, hidden: int, dtype: torch.dtype) -> None:
    x, weight = _inputs(tokens, hidden, dtype)
    with triton_backend():
        ours = kernels.rms_norm(x, weight, EPS)
    assert ours.dtype == dtype and ours.shape == x.shape
    assert_close_to_reference(
        ours, ref.rms_norm(x, weight, EPS), ref.rms_norm(x.double(), weight.double(), EPS)
    )


@pytest.mark.parametrize(("tokens", "hidden", "dtype"), CASES, ids=str)
def test_fused_add_rms_norm_matches_reference(tokens: int, hidden: int, dtype: torch.dtype) -> None:
    x, weight = _inputs(tokens, hidden, dtype)
    residual = torch.randn(tokens, hidden).to(DEVICE, dtype)
    ours_x, ours_r = x.clone(), residual.clone()
    with triton_backend():
        y, new_residual = kernels.fused_add_rms_norm(ours_x, ours_r, weight, EPS)
    assert y is ours_x and new_residual is ours_r  # in place, same tensors returned
    same_x, same_r = ref.fused_add_rms_norm(x.clone(), residual.clone(), weight, EPS)
    exact_r = x.double() + residual.double()
    exact_y = ref.rms_norm(exact_r, weight.double(), EPS)
    assert_close_to_reference(new_residual, same_r, exact_r, what="new residual")
    assert_close_to_reference(y, same_x, exact_y, what="y")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_y_is_rms_norm_of_stored_residual(backend: str) -> None:
    """y must normalise the rounded residual the caller sees, like unfused add-then-norm."""
    x, weight = _inputs(9, 123, torch.bfloat16)
    residual = torch.randn(9, 123).to(DEVICE, torch.bfloat16)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        y, new_r = kernels.fused_add_rms_norm(x, residual, weight, EPS)
        unfused = kernels.rms_norm(new_r, weight, EPS)
    # Same fp32 math on the same rounded input; only summation order may differ.
    assert (y.float() - unfused.float()).abs().max() <= 2**-8 * unfused.float().abs().max()


def test_reference_is_the_textbook_formula() -> None:
    x = torch.randn(5, 123, dtype=torch.float64)
    w = torch.randn(123, dtype=torch.float64)
    expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS) * w
    torch.testing.assert_close(ref.rms_norm(x, w, EPS), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fp16_large_values_do_not_overflow(backend: str) -> None:
    """x^2 overflows fp16 for |x| > 256: the sum of squares must be done in fp32."""
    x = (torch.randn(3, 576) * 2000.0).to(DEVICE, torch.float16)
    weight = torch.ones(576, device=DEVICE, dtype=torch.float16)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        y = kernels.rms_norm(x, weight, EPS)
    assert bool(torch.isfinite(y).all())
    assert_close_to_reference(
        y, ref.rms_norm(x, weight, EPS), ref.rms_norm(x.double(), weight.double(), EPS)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_leading_dims_and_empty_inputs(backend: str) -> None:
    x, weight = _inputs(6, 123, torch.float32)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        y3 = kernels.rms_norm(x.view(2, 3, 123), weight, EPS)
        empty = kernels.rms_norm(x[:0], weight, EPS)
        ex, er = kernels.fused_add_rms_norm(x[:0].clone(), x[:0].clone(), weight, EPS)
    torch.testing.assert_close(y3.view(6, 123), ref.rms_norm(x, weight, EPS))
    assert empty.shape == (0, 123) and ex.shape == er.shape == (0, 123)


def _bad_rms_norm_calls() -> list[tuple[str, object]]:
    x = torch.randn(4, 8, device=DEVICE)
    w = torch.randn(8, device=DEVICE)
    return [
        ("contiguous", lambda: kernels.rms_norm(torch.randn(8, 4, device=DEVICE).t(), w, EPS)),
        (
            "elements but x's hidden",
            lambda: kernels.rms_norm(x, torch.randn(7, device=DEVICE), EPS),
        ),
        ("weight must be 1-D", lambda: kernels.rms_norm(x, w.view(1, 8), EPS)),
        ("dtype", lambda: kernels.rms_norm(x.to(torch.int32), w, EPS)),
        ("torch.Tensor", lambda: kernels.rms_norm([[1.0]], w, EPS)),  # type: ignore[arg-type]
        ("eps must be finite", lambda: kernels.rms_norm(x, w, -1.0)),
        ("eps must be finite", lambda: kernels.rms_norm(x, w, float("nan"))),
        ("eps must be a float", lambda: kernels.rms_norm(x, w, "1e-6")),  # type: ignore[arg-type]
        ("hidden size", lambda: kernels.rms_norm(torch.randn(4, 0, device=DEVICE), w[:0], EPS)),
        ("residual shape", lambda: kernels.fused_add_rms_norm(x, x[:2].clone(), w, EPS)),
        (
            "residual dtype",
            lambda: kernels.fused_add_rms_norm(x, x.to(torch.bfloat16), w, EPS),
        ),
        ("must not share memory", lambda: kernels.fused_add_rms_norm(x, x, w, EPS)),
        (
            "residual must be contiguous",
            lambda: kernels.fused_add_rms_norm(x, torch.randn(8, 4, device=DEVICE).t(), w, EPS),
        ),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(_bad_rms_norm_calls())))
def test_rejects_bad_inputs_with_value_error(backend: str, case: int) -> None:
    message, call = _bad_rms_norm_calls()[case]
    with kernels.force_backend(backend), pytest.raises(ValueError, match=message):  # type: ignore[arg-type]
        call()  # type: ignore[operator]


@requires_gpu
def test_cuda_tensors_dispatch_to_triton_and_mixed_devices_fail() -> None:
    from kernels.dispatch import select_backend

    x, weight = _inputs(4, 896, torch.bfloat16)
    assert select_backend("rms_norm", x) == "triton"
    torch.testing.assert_close(
        kernels.rms_norm(x, weight, EPS), ref.rms_norm(x, weight, EPS), atol=2**-7, rtol=2**-7
    )
    with pytest.raises(ValueError, match="one device"):
        kernels.rms_norm(x, weight.cpu(), EPS)


def test_launch_config_follows_hidden_size() -> None:
    from kernels._triton_utils import row_config

    # One 16-byte vector per thread: bf16 hidden 896 -> 1024 lanes / 8 = 128 threads = 4 warps.
    assert row_config(896, 2) == (1024, 4)
    assert row_config(1536, 2) == (2048, 8)
    assert row_config(576, 4) == (1024, 8)
    assert row_config(123, 2) == (128, 1)
    assert row_config(65536, 2) == (65536, 16)


def test_triton_launcher_rejects_rows_beyond_its_limit() -> None:
    x = torch.zeros(1, 65537, device=DEVICE)
    with triton_backend(), pytest.raises(ValueError, match="exceeds the kernel's limit"):
        kernels.rms_norm(x, torch.ones(65537, device=DEVICE), EPS)
