"""rope_and_cache: RoPE + KV-cache write from the fused QKV projection in one launch."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from attention_cases import randn
from conftest import DEVICE, ON_GPU, assert_close_to_reference, gpu_or_cpu, requires_gpu

import kernels
from kernels.reference_attention import rope_and_cache_reference
from kernels.rope_cache import rope_and_cache_triton

MAX_POS = 4096
PAGE = 16
# (tokens, Hq, Hk, D, dtype): Qwen2.5-0.5B, Qwen2.5-1.5B, SmolLM2, a 7:1 group, Hk*D over
# one value block (8 x 256 = 2048 elements).
_HEADS = [(14, 2, 64), (12, 2, 128), (9, 3, 64), (7, 1, 32), (8, 8, 256), (40, 8, 160)]
CASES = gpu_or_cpu(
    full=[
        (t, hq, hk, d, dt)
        for t in (1, 17, 97, 257)
        for hq, hk, d in _HEADS
        for dt in (torch.float32, torch.float16, torch.bfloat16)
    ],
    small=[
        (1, 14, 2, 64, torch.bfloat16),
        (17, 12, 2, 128, torch.float32),
        (33, 9, 3, 64, torch.float16),
        (5, 8, 8, 256, torch.bfloat16),
        # D=160: half not a power of two; 40 heads: three head tiles; 8 x 160 = 1280
        # value elements: a partial second copy block.
        (3, 40, 8, 160, torch.bfloat16),
    ],
)


def _inputs(tokens: int, hq: int, hk: int, d: int, dtype: torch.dtype) -> dict[str, Any]:
    """A call's arguments: slots shuffled over the cache, straddling page edges, with
    every fifth token skipped (-1); the cache filled with a value no write produces."""
    blocks = -(-tokens // PAGE) + 2
    slots = torch.randperm(blocks * PAGE)[:tokens]
    slots[::5] = -1
    positions = torch.randint(0, MAX_POS, (tokens,))
    positions[:1] = MAX_POS - 1  # the table's last row
    return {
        "qkv": randn((tokens, (hq + 2 * hk) * d), dtype, DEVICE),
        "positions": positions.to(DEVICE),
        "cos_sin": kernels.rope_cos_sin(d, MAX_POS, 1e6, None, device=DEVICE),
        "k_cache": torch.full((blocks, PAGE, hk, d), 1234.0, dtype=dtype, device=DEVICE),
        "v_cache": torch.full((blocks, PAGE, hk, d), 1234.0, dtype=dtype, device=DEVICE),
        "slot_mapping": slots.to(DEVICE),
        "num_q_heads": hq,
    }


def _copy(args: dict[str, Any], dtype: torch.dtype | None = None) -> dict[str, Any]:
    """The same call on fresh caches (optionally in another dtype, table included)."""
    out = dict(args)
    for name in ("qkv", "k_cache", "v_cache"):
        out[name] = args[name].clone() if dtype is None else args[name].to(dtype)
    if dtype is not None:
        d = args["k_cache"].shape[-1]
        out["cos_sin"] = kernels.rope_cos_sin(d, MAX_POS, 1e6, None, device=DEVICE, dtype=dtype)
    return out


@pytest.mark.parametrize(("tokens", "hq", "hk", "d", "dtype"), CASES, ids=str)
def test_matches_the_reference_under_the_2x_rule(
    tokens: int, hq: int, hk: int, d: int, dtype: torch.dtype
) -> None:
    args = _inputs(tokens, hq, hk, d, dtype)
    ours, same, exact = _copy(args), _copy(args), _copy(args, torch.float64)
    q = rope_and_cache_triton(**ours)
    q_same = rope_and_cache_reference(**same)
    q_exact = rope_and_cache_reference(**exact)
    assert q.shape == (tokens, hq, d) and q.dtype == dtype and q.is_contiguous()
    assert_close_to_reference(q, q_same, q_exact, what="q")
    assert_close_to_reference(ours["k_cache"], same["k_cache"], exact["k_cache"], what="k_cache")
    # Values are copied, never rounded; unwritten slots keep their fill.
    assert torch.equal(ours["v_cache"], same["v_cache"])
    written = args["slot_mapping"][args["slot_mapping"] >= 0]
    untouched = torch.ones(ours["k_cache"].shape[0] * PAGE, dtype=torch.bool, device=DEVICE)
    untouched[written.long()] = False
    assert bool((ours["k_cache"].view(-1, hk, d)[untouched] == 1234.0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_equals_the_unfused_kernels_bit_for_bit(dtype: torch.dtype) -> None:
    """Same math, same single rounding: the fusion changes launches, not numbers."""
    tokens, hq, hk, d = 19, 14, 2, 64
    args = _inputs(tokens, hq, hk, d, dtype)
    fused = _copy(args)
    q_fused = rope_and_cache_triton(**fused)
    unfused = _copy(args)
    q, k, v = (
        x.contiguous()
        for x in unfused["qkv"].view(tokens, hq + 2 * hk, d).split([hq, hk, hk], dim=1)
    )
    with kernels.force_backend("triton"):
        kernels.apply_rope_(q, k, args["positions"], args["cos_sin"])
        kernels.write_kv_cache(k, v, unfused["k_cache"], unfused["v_cache"], args["slot_mapping"])
    assert torch.equal(q_fused, q)
    assert torch.equal(fused["k_cache"], unfused["k_cache"])
    assert torch.equal(fused["v_cache"], unfused["v_cache"])


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_skipped_slots_write_nothing_and_queries_still_rotate(backend: str) -> None:
    args = _inputs(4, 4, 2, 32, torch.float32)
    args["slot_mapping"] = torch.full((4,), -1, dtype=torch.int32, device=DEVICE)
    args["positions"] = torch.tensor([0, 1, 2, 3], device=DEVICE)
    before = args["k_cache"].clone()
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        q = kernels.rope_and_cache(**args)
    assert torch.equal(args["k_cache"], before) and torch.equal(args["v_cache"], before)
    q_in = args["qkv"].view(4, 8, 32)[:, :4]
    assert torch.equal(q[0], q_in[0])  # position 0 is the identity rotation
    assert not torch.equal(q[3], q_in[3])


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_no_tokens(backend: str) -> None:
    args = _inputs(0, 4, 2, 32, torch.bfloat16)
    before = args["k_cache"].clone()
    with kernels.force_backend(backend):  # type: ignore[arg-type]
        q = kernels.rope_and_cache(**args)
    assert q.shape == (0, 4, 32) and torch.equal(args["k_cache"], before)


def _bad_calls() -> list[tuple[str, dict[str, Any]]]:
    """(expected message, overrides of a valid call's arguments)."""
    dev = DEVICE
    qkv = torch.randn(3, 8 * 16, device=dev)  # Hq=4, Hk=2, D=16
    return [
        ("qkv must be contiguous", {"qkv": torch.randn(8 * 16, 3, device=dev).t()}),
        ("qkv must be 2-D", {"qkv": qkv.view(3, 8, 16)}),
        ("need 128", {"qkv": torch.randn(3, 7 * 16, device=dev)}),
        ("3 query .* need 112", {"num_q_heads": 3}),
        ("num_q_heads must be a positive int", {"num_q_heads": 0}),
        ("num_q_heads must be a positive int", {"num_q_heads": 4.0}),
        ("num_q_heads must be a positive int", {"num_q_heads": True}),
        ("qkv dtype", {"qkv": qkv.half()}),
        ("token counts differ", {"positions": torch.arange(2, device=dev)}),
        ("token counts differ", {"slot_mapping": torch.arange(4, device=dev)}),
        ("positions has dtype", {"positions": torch.arange(3, device=dev).float()}),
        ("slot_mapping has dtype", {"slot_mapping": torch.zeros(3, device=dev)}),
        ("cos_sin must be", {"cos_sin": torch.randn(16, 8, device=dev)}),
        ("k_cache .* must match", {"v_cache": torch.zeros(2, 16, 2, 8, device=dev)}),
        (
            "head_dim must be even",
            {
                "qkv": torch.randn(3, 8 * 15, device=dev),
                "k_cache": torch.zeros(2, 16, 2, 15, device=dev),
                "v_cache": torch.zeros(2, 16, 2, 15, device=dev),
                "cos_sin": torch.zeros(16, 15, device=dev),
            },
        ),
        (
            "head_dim must be even and > 0",
            {
                "qkv": torch.randn(3, 0, device=dev),
                "k_cache": torch.zeros(2, 16, 2, 0, device=dev),
                "v_cache": torch.zeros(2, 16, 2, 0, device=dev),
                "cos_sin": torch.zeros(16, 0, device=dev),
            },
        ),
        ("torch.Tensor", {"qkv": [[1.0]]}),
        ("positions must lie in", {"positions": torch.tensor([0, 1, 16], device=dev)}),
        ("positions must lie in", {"positions": torch.tensor([-1, 1, 2], device=dev)}),
    ]


@pytest.mark.parametrize("backend", ["triton", "reference"])
@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_rejects_bad_inputs_with_value_error(backend: str, case: int) -> None:
    message, overrides = _bad_calls()[case]
    if ON_GPU and backend == "triton" and "lie in" in message:
        pytest.skip(
            "CUDA launches do not range-check positions (no device sync): "
            "test_cuda_out_of_range_positions_copy_unrotated covers them"
        )
    args: dict[str, Any] = {
        "qkv": torch.randn(3, 8 * 16, device=DEVICE),
        "positions": torch.arange(3, device=DEVICE),
        "cos_sin": kernels.rope_cos_sin(16, 16, 1e4, None, device=DEVICE),
        "k_cache": torch.zeros(2, 16, 2, 16, device=DEVICE),
        "v_cache": torch.zeros(2, 16, 2, 16, device=DEVICE),
        "slot_mapping": torch.arange(3, device=DEVICE),
        "num_q_heads": 4,
        **overrides,
    }
    with kernels.force_backend(backend), pytest.raises(ValueError, match=message):  # type: ignore[arg-type]
        kernels.rope_and_cache(**args)


def test_reference_rejects_out_of_range_slots() -> None:
    args = _inputs(3, 4, 2, 32, torch.float32)
    args["slot_mapping"] = torch.tensor([0, 1, 10_000], device=DEVICE)
    with pytest.raises(ValueError, match="slots must be -1 or lie in"):
        rope_and_cache_reference(**args)


def test_triton_skips_out_of_range_slots_and_writes_nothing_past_the_cache() -> None:
    """The caches are views at the front of larger buffers: a slot past the end must not
    land in the guard region behind them (a check inside the cache cannot see that)."""
    hq, hk, d, slots_in_cache, guard = 4, 2, 32, 3 * PAGE, 64
    row = hk * d
    buffers = [
        torch.full(((slots_in_cache + guard) * row,), 1234.0, device=DEVICE) for _ in range(2)
    ]
    k_cache, v_cache = (b[: slots_in_cache * row].view(3, PAGE, hk, d) for b in buffers)
    args = _inputs(3, hq, hk, d, torch.float32)
    args |= {"k_cache": k_cache, "v_cache": v_cache}
    args["slot_mapping"] = torch.tensor([0, slots_in_cache + 5, -7], device=DEVICE)
    rope_and_cache_triton(**args)
    assert not bool((k_cache.view(-1, hk, d)[0] == 1234.0).all())  # slot 0 written
    assert bool((k_cache.view(-1, hk, d)[1:] == 1234.0).all())
    for buffer in buffers:
        assert bool((buffer[slots_in_cache * row :] == 1234.0).all()), "written past the cache"


@requires_gpu
def test_cuda_out_of_range_positions_copy_unrotated() -> None:
    args = _inputs(4, 14, 2, 64, torch.bfloat16)
    args["positions"] = torch.tensor([5, -5, 7, MAX_POS + 100], device=DEVICE)
    q = kernels.rope_and_cache(**args)  # CUDA tensors: Triton by default
    torch.cuda.synchronize()
    q_in = args["qkv"].view(4, 18, 64)[:, :14]
    assert torch.equal(q[1], q_in[1]) and torch.equal(q[3], q_in[3])
    assert not torch.equal(q[0], q_in[0])
