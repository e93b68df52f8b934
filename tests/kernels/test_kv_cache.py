"""Paged KV-cache write: Triton scatter vs the PyTorch reference (exact copies)."""

from __future__ import annotations

import pytest
import torch
from attention_cases import randn
from conftest import DEVICE, FLOAT_DTYPES, ON_GPU, triton_backend

import kernels
from kernels.kv_cache import write_kv_cache_triton
from kernels.reference_attention import write_kv_cache_reference


def _caches(
    dtype: torch.dtype, blocks: int = 6, page: int = 16, hk: int = 3, d: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    return randn((blocks, page, hk, d), dtype, DEVICE), randn((blocks, page, hk, d), dtype, DEVICE)


# Slots on both sides of page edges (k*page +- 1), the first and last slot, and -1 skips.
SLOTS = [0, 15, 16, 17, -1, 31, 32, 33, 47, -1, 95, 64]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize(
    "hk_d", [(3, 64), (2, 128)] if not ON_GPU else [(3, 64), (2, 128), (8, 128), (1, 32), (4, 256)]
)
def test_write_matches_reference(
    dtype: torch.dtype, index_dtype: torch.dtype, hk_d: tuple[int, int]
) -> None:
    hk, d = hk_d
    k_cache, v_cache = _caches(dtype, hk=hk, d=d)
    k_ref, v_ref = k_cache.clone(), v_cache.clone()
    k = randn((len(SLOTS), hk, d), dtype, DEVICE)
    v = randn((len(SLOTS), hk, d), dtype, DEVICE)
    slots = torch.tensor(SLOTS, dtype=index_dtype, device=DEVICE)
    write_kv_cache_triton(k, v, k_cache, v_cache, slots)
    write_kv_cache_reference(k, v, k_ref, v_ref, slots)
    assert torch.equal(k_cache, k_ref) and torch.equal(v_cache, v_ref)
    flat = k_cache.view(-1, hk, d)
    assert torch.equal(flat[33], k[7]) and torch.equal(v_cache.view(-1, hk, d)[95], v[10])


def test_write_nothing() -> None:
    k_cache, v_cache = _caches(torch.float16)
    before = k_cache.clone()
    empty = randn((0, 3, 64), torch.float16, DEVICE)
    write_kv_cache_triton(
        empty, empty, k_cache, v_cache, torch.zeros(0, dtype=torch.int32, device=DEVICE)
    )
    skipped = randn((2, 3, 64), torch.float16, DEVICE)
    write_kv_cache_triton(
        skipped, skipped, k_cache, v_cache, torch.full((2,), -1, dtype=torch.int64, device=DEVICE)
    )
    assert torch.equal(k_cache, before)


def test_public_write_dispatches_to_both_backends() -> None:
    k_cache, v_cache = _caches(torch.bfloat16)
    k_ref, v_ref = k_cache.clone(), v_cache.clone()
    k = randn((4, 3, 64), torch.bfloat16, DEVICE)
    slots = torch.tensor([5, 80, -1, 17], dtype=torch.int32, device=DEVICE)
    with triton_backend():
        kernels.write_kv_cache(k, k, k_cache, v_cache, slots)
    with kernels.force_backend("reference"):
        kernels.write_kv_cache(k, k, k_ref, v_ref, slots)
    assert torch.equal(k_cache, k_ref) and torch.equal(v_cache, v_ref)


def test_out_of_range_slots_rejected_by_reference_and_skipped_by_kernel() -> None:
    k_cache, v_cache = _caches(torch.float32)
    k = randn((3, 3, 64), torch.float32, DEVICE)
    for bad in (96, 1 << 40, -2):
        slots = torch.tensor([1, bad, 2], dtype=torch.int64, device=DEVICE)
        with pytest.raises(ValueError, match="slots must be -1"):
            write_kv_cache_reference(k, k, k_cache.clone(), v_cache.clone(), slots)
        k_out, v_out = k_cache.clone(), v_cache.clone()
        write_kv_cache_triton(k, k, k_out, v_out, slots)
        expect = k_cache.clone().view(-1, 3, 64)
        expect[1], expect[2] = k[0], k[2]
        assert torch.equal(k_out.view(-1, 3, 64), expect)


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        ("k", lambda t: t.transpose(1, 2), "contiguous"),
        ("k", lambda t: t.half(), "dtype"),
        ("v", lambda t: t[:, :2].contiguous(), "must be"),
        ("k_cache", lambda t: t[:, :, :2].contiguous(), "must match"),
        ("k_cache", lambda t: t[0], "4-D"),
        ("slot_mapping", lambda t: t[:2], "entries for"),
        ("slot_mapping", lambda t: t.float(), "slot_mapping has dtype"),
        ("slot_mapping", lambda t: t[None], "1-D"),
        ("k", lambda t: t.tolist(), "torch.Tensor"),
    ],
)
def test_write_rejects_bad_inputs(key: str, bad, message: str) -> None:  # type: ignore[no-untyped-def]
    k_cache, v_cache = _caches(torch.float32, d=32)
    args: dict[str, object] = {
        "k": randn((3, 3, 32), torch.float32, DEVICE),
        "v": randn((3, 3, 32), torch.float32, DEVICE),
        "k_cache": k_cache,
        "v_cache": v_cache,
        "slot_mapping": torch.tensor([0, 1, 2], dtype=torch.int32, device=DEVICE),
    }
    args[key] = bad(args[key])
    with pytest.raises(ValueError, match=message):
        write_kv_cache_triton(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        write_kv_cache_reference(**args)  # type: ignore[arg-type]
