"""Rotary embeddings: cos/sin tables vs Hugging Face, apply_rope_ Triton vs reference."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from conftest import (
    DEVICE,
    ON_GPU,
    assert_close_to_reference,
    gpu_or_cpu,
    requires_gpu,
    triton_backend,
)

import kernels
from kernels import reference as ref
from kernels._rope_freqs import rope_inv_freq

LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
SCALINGS: list[dict[str, Any] | None] = [
    None,
    {"rope_type": "default"},
    {"rope_type": "linear", "factor": 4.0},
    {"type": "linear", "factor": 2.0},  # legacy key
    LLAMA3,
]
MAX_POS = 4096
# (tokens, Hq, Hk, D, dtype): Qwen2.5-0.5B (14/2, 64), Qwen2.5-1.5B (12/2, 128), SmolLM2
# (9/3, 64), a 7:1 group and D=96 (half not a power of two). Interpreter: each value once.
_HEADS = [(14, 2, 64), (12, 2, 128), (9, 3, 64), (7, 1, 96)]
CASES = gpu_or_cpu(
    full=[
        (t, hq, hk, d, dt)
        for t in (1, 17, 97, 257)
        for hq, hk, d in _HEADS
        for dt in (torch.float32, torch.float16, torch.bfloat16)
    ]
    + [(4096, 32, 8, 128, torch.bfloat16)],
    small=[
        (1, 14, 2, 64, torch.bfloat16),
        (17, 12, 2, 128, torch.float32),
        (97, 9, 3, 64, torch.float16),
        (17, 7, 1, 96, torch.bfloat16),
    ],
)


def _rotate_half_fp64(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF's apply_rotary_pos_emb, written independently: x*cos + rotate_half(x)*sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    cos_full = torch.cat([cos, cos], dim=-1)[:, None, :]
    sin_full = torch.cat([sin, sin], dim=-1)[:, None, :]
    return x * cos_full + rotated * sin_full


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: str(s and s.get("rope_type", s)))
def test_inv_freq_matches_transformers_bit_for_bit(scaling: dict[str, Any] | None) -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    params: dict[str, Any] = {"rope_type": "default", **(scaling or {}), "rope_theta": 5e5}
    params["rope_type"] = params.pop("type", params["rope_type"])
    config = transformers.LlamaConfig(
        hidden_size=256,
        num_attention_heads=4,
        head_dim=64,
        rope_parameters=params,
        max_position_embeddings=16384,
    )
    if params["rope_type"] == "default":
        hf_inv = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config).inv_freq
    else:
        hf_inv, _ = ROPE_INIT_FUNCTIONS[params["rope_type"]](config, "cpu")
    assert torch.equal(rope_inv_freq(64, 5e5, scaling), hf_inv)


def test_cos_sin_layout_and_accuracy() -> None:
    table = kernels.rope_cos_sin(64, 2048, 10000.0, LLAMA3, device=DEVICE)
    assert table.shape == (2048, 64) and table.dtype == torch.float32
    inv = rope_inv_freq(64, 10000.0, LLAMA3).double()
    angles = torch.outer(torch.arange(2048, dtype=torch.float64), inv)
    # One fp32 rounding of exact values: error <= half an fp32 ulp of 1.
    assert float((table[:, :32].double().cpu() - angles.cos()).abs().max()) <= 2**-24
    assert float((table[:, 32:].double().cpu() - angles.sin()).abs().max()) <= 2**-24
    # Llama-3 scaling really changes the low frequencies and keeps the high ones.
    plain = rope_inv_freq(64, 10000.0, None)
    assert torch.equal(inv[:4].float(), plain[:4]) and bool((inv[-4:] < plain[-4:].double()).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head_dim": 63}, "even"),
        ({"head_dim": 0}, "positive int"),
        ({"max_positions": 0}, "max_positions"),
        ({"theta": float("nan")}, "theta"),
        ({"theta": -1.0}, "theta"),
        ({"scaling": {"rope_type": "yarn", "factor": 4.0}}, "unsupported rope_type"),
        ({"scaling": {"rope_type": "linear"}}, "missing 'factor'"),
        ({"scaling": {"rope_type": "linear", "factor": -2.0}}, "'factor' must be finite"),
        ({"scaling": {"rope_type": "linear", "factor": "2"}}, "must be a number"),
        ({"scaling": {**LLAMA3, "high_freq_factor": 0.5}}, "high_freq_factor > low"),
        ({"scaling": {**LLAMA3, "partial_rotary_factor": 0.5}}, "partial_rotary_factor"),
        ({"scaling": ["linear"]}, "dict"),
        ({"dtype": torch.int32}, "floating dtype"),
    ],
)
def test_cos_sin_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"head_dim": 64, "max_positions": 16, "theta": 1e4, **kwargs}
    with pytest.raises(ValueError, match=message):
        kernels.rope_cos_sin(**args)


def _qk(tokens: int, hq: int, hk: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    q = torch.randn(tokens, hq, d).to(DEVICE, dtype)
    k = torch.randn(tokens, hk, d).to(DEVICE, dtype)
    positions = torch.randint(0, MAX_POS, (tokens,), device=DEVICE)
    positions[0] = MAX_POS - 1  # the last table row
    return q, k, positions


@pytest.mark.parametrize(("tokens", "hq", "hk", "d", "dtype"), CASES, ids=str)
def test_apply_rope_matches_reference(
    tokens: int, hq: int, hk: int, d: int, dtype: torch.dtype
) -> None:
    q, k, positions = _qk(tokens, hq, hk, d, dtype)
    table = kernels.rope_cos_sin(d, MAX_POS, 1e6, LLAMA3, device=DEVICE)
    table64 = kernels.rope_cos_sin(d, MAX_POS, 1e6, LLAMA3, device=DEVICE, dtype=torch.float64)
    ours_q, ours_k = q.clone(), k.clone()
    with triton_backend():
        assert kernels.apply_rope_(ours_q, ours_k, positions, table) is None
    same_q, same_k = q.clone(), k.clone()
    ref.apply_rope_(same_q, same_k, positions, table)
    exact_q, exact_k = q.double(), k.double()
    ref.apply_rope_(exact_q, exact_k, positions, table64)
    assert_close_to_reference(ours_q, same_q, exact_q, what="q")
    assert_close_to_reference(ours_k, same_k, exact_k, what="k")


def test_reference_is_hf_rotate_half_layout() -> None:
    q, k, positions = _qk(5, 3, 1, 16, torch.float64)
    table = kernels.rope_cos_sin(16, MAX_POS, 1e4, None, dtype=torch.float64, device=DEVICE)
    cos, sin = table[positions, :8], table[positions, 8:]
    expected_q, expected_k = _rotate_half_fp64(q, cos, sin), _rotate_half_fp64(k, cos, sin)
    ref.apply_rope_(q, k, positions, table)
    torch.testing.assert_close(q, expected_q, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(k, expected_k, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_int32_positions_position_zero_and_norm(backend: str) -> None:
    q, k, positions = _qk(6, 4, 2, 64, torch.float32)
    positions[1] = 0
    table = kernels.rope_cos_sin(64, MAX_POS, 1e4, None, device=DEVICE)
    q0, k0 = q.clone(), k.clone()
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        kernels.apply_rope_(q, k, positions.to(torch.int32), table)
    torch.testing.assert_close(q[1], q0[1])  # position 0 is the identity rotation
    # A rotation keeps the norm of each (x1_i, x2_i) pair, hence of each head.
    torch.testing.assert_close(q.norm(dim=-1), q0.norm(dim=-1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k.norm(dim=-1), k0.norm(dim=-1), rtol=1e-5, atol=1e-5)


def _bad_rope_args() -> list[tuple[str, dict[str, Any]]]:
    """(expected message, overrides of a valid call's arguments)."""
    q = torch.randn(4, 3, 8, device=DEVICE)
    pos = torch.arange(4, device=DEVICE)
    odd = {"cos_sin": torch.randn(16, 7, device=DEVICE)}
    return [
        ("q must be contiguous", {"q": q.transpose(0, 1).contiguous().transpose(0, 1)}),
        ("k must be 3-D", {"k": torch.randn(4, 8, device=DEVICE)}),
        ("token counts differ", {"k": torch.randn(3, 1, 8, device=DEVICE)}),
        ("head_dim differs", {"k": torch.randn(4, 1, 6, device=DEVICE)}),
        ("k dtype", {"k": torch.randn(4, 1, 8, device=DEVICE, dtype=torch.float16)}),
        ("must not share memory", {"q": q, "k": q}),
        ("positions has dtype", {"positions": pos.float()}),
        ("token counts differ", {"positions": pos[:2].clone()}),
        ("cos_sin must be", {"cos_sin": torch.randn(16, 6, device=DEVICE)}),
        ("cos_sin must be contiguous", {"cos_sin": torch.randn(8, 16, device=DEVICE).t()}),
        ("cos_sin has dtype", {"cos_sin": torch.zeros(16, 8, device=DEVICE, dtype=torch.int64)}),
        (
            "head_dim must be even",
            {
                "q": torch.randn(4, 3, 7, device=DEVICE),
                "k": torch.randn(4, 1, 7, device=DEVICE),
                **odd,
            },
        ),
        ("at least one head", {"q": torch.randn(4, 0, 8, device=DEVICE)}),
        ("positions must lie in", {"positions": pos + 13}),
        ("positions must lie in", {"positions": pos - 1}),
    ]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("case", range(len(_bad_rope_args())))
def test_apply_rope_rejects_bad_inputs(backend: str, case: int) -> None:
    message, overrides = _bad_rope_args()[case]
    if ON_GPU and backend == "triton" and "lie in" in message:
        pytest.skip(
            "CUDA launches do not range-check positions (no device sync): "
            "test_cuda_out_of_range_positions_leave_tokens_untouched covers them"
        )
    args: dict[str, Any] = {
        "q": torch.randn(4, 3, 8, device=DEVICE),
        "k": torch.randn(4, 1, 8, device=DEVICE),
        "positions": torch.arange(4, device=DEVICE),
        "cos_sin": kernels.rope_cos_sin(8, 16, 1e4, None, device=DEVICE),
        **overrides,
    }
    with kernels.force_backend(backend), pytest.raises(ValueError, match=message):  # type: ignore[arg-type]
        kernels.apply_rope_(**args)


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_apply_rope_no_tokens_is_a_no_op(backend: str) -> None:
    q, k = torch.empty(0, 2, 8, device=DEVICE), torch.empty(0, 1, 8, device=DEVICE)
    table = kernels.rope_cos_sin(8, 16, 1e4, None, device=DEVICE)
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        kernels.apply_rope_(q, k, torch.empty(0, dtype=torch.int64, device=DEVICE), table)


@requires_gpu
def test_cuda_out_of_range_positions_leave_tokens_untouched() -> None:
    q, k, positions = _qk(4, 14, 2, 64, torch.bfloat16)
    positions[1], positions[3] = -5, MAX_POS + 100
    table = kernels.rope_cos_sin(64, MAX_POS, 1e6, None, device=DEVICE)
    q0, k0 = q.clone(), k.clone()
    kernels.apply_rope_(q, k, positions, table)  # CUDA tensors: Triton by default
    torch.cuda.synchronize()
    assert torch.equal(q[1], q0[1]) and torch.equal(q[3], q0[3]) and torch.equal(k[3], k0[3])
    assert not torch.equal(q[0], q0[0])


def test_high_positions_stay_accurate() -> None:
    """fp32 angle products lose ~pos*2^-24 rad; the fp64-built table must not."""
    table = kernels.rope_cos_sin(16, 131072, 5e5, LLAMA3)
    pos = 131071
    inv = rope_inv_freq(16, 5e5, LLAMA3).double()
    assert float((table[pos, :8].double() - torch.cos(pos * inv)).abs().max()) <= 2**-24
    assert float((table[pos, 8:].double() - torch.sin(pos * inv)).abs().max()) <= 2**-24
    assert math.isclose(float(table[0, 0]), 1.0) and float(table[0, 8]) == 0.0
