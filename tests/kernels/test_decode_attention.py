"""Paged decode attention: Triton kernel vs the PyTorch reference (2x error rule)."""

from __future__ import annotations

import itertools

import pytest
import torch
from attention_cases import check_against_reference, make_paged_cache, randn
from conftest import DEVICE, ON_GPU, requires_gpu, triton_backend

import kernels
from kernels.decode_attention import choose_num_splits, decode_attention_triton
from kernels.reference_attention import decode_attention_reference


# Context lengths around every interesting edge: empty, one token, odd, page +- 1, long.
def _contexts(page: int) -> list[int]:
    return [0, 1, 17, page - 1, page, page + 1, 2 * page + 1, 97, 257]


# On GPU: every dtype x head dim x group ratio x split mode; the page size alternates
# with the group (16 for G=1,7; 32 for G=3) to keep the compiled sweep short.
_FULL = [
    (dtype, d, g, 32 if g == 3 else 16, splits)
    for dtype, d, g, splits in itertools.product(
        (torch.float32, torch.float16, torch.bfloat16), (64, 128), (1, 3, 7), (None, 1, 4)
    )
]
# Under the interpreter: every dtype, head dim, group ratio and split mode at least once.
_SMALL = [
    (torch.float32, 64, 1, 16, None),
    (torch.bfloat16, 128, 7, 16, 3),
    (torch.float16, 64, 3, 32, 2),
]


@pytest.mark.parametrize(
    ("dtype", "head_dim", "group", "page", "splits"), _FULL if ON_GPU else _SMALL
)
def test_decode_matches_reference(
    dtype: torch.dtype, head_dim: int, group: int, page: int, splits: int | None
) -> None:
    num_kv_heads = 2 if group < 7 else 1
    lens = _contexts(page)
    k_cache, v_cache, table, ctx = make_paged_cache(
        lens, page=page, num_kv_heads=num_kv_heads, head_dim=head_dim, dtype=dtype, device=DEVICE
    )
    q = randn((len(lens), num_kv_heads * group, head_dim), dtype, DEVICE)
    scale = head_dim**-0.5
    out = decode_attention_triton(q, k_cache, v_cache, table, ctx, scale, splits)
    assert out.dtype == dtype and out.shape == q.shape
    assert bool((out[0] == 0).all()), "context 0 must give zeros"
    check_against_reference(
        out,
        decode_attention_reference,
        (q, k_cache, v_cache),
        (table, ctx, scale, splits),
        f"decode {dtype} d{head_dim} g{group}",
    )


@requires_gpu
@pytest.mark.parametrize("head_dim", [16, 32, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_other_head_dims(head_dim: int, dtype: torch.dtype) -> None:
    lens = [0, 1, 33, 300]
    k_cache, v_cache, table, ctx = make_paged_cache(
        lens, page=16, num_kv_heads=2, head_dim=head_dim, dtype=dtype, device=DEVICE
    )
    q = randn((len(lens), 4, head_dim), dtype, DEVICE)
    out = decode_attention_triton(q, k_cache, v_cache, table, ctx, head_dim**-0.5)
    check_against_reference(
        out,
        decode_attention_reference,
        (q, k_cache, v_cache),
        (table, ctx, head_dim**-0.5, None),
        f"decode d{head_dim}",
    )


@requires_gpu
def test_decode_long_context_auto_split() -> None:
    """Batch 4 x 4k context: few (seq, head) programs, so the automatic split kicks in."""
    lens = [4096, 4000, 1, 2049]
    k_cache, v_cache, table, ctx = make_paged_cache(
        lens, page=16, num_kv_heads=2, head_dim=128, dtype=torch.bfloat16, device=DEVICE
    )
    assert choose_num_splits(4, 2, table.shape[1] * 16, torch.device(DEVICE)) > 1
    q = randn((4, 14, 128), torch.bfloat16, DEVICE)
    out = decode_attention_triton(q, k_cache, v_cache, table, ctx, 128**-0.5)
    check_against_reference(
        out,
        decode_attention_reference,
        (q, k_cache, v_cache),
        (table, ctx, 128**-0.5, None),
        "decode long",
    )


def test_decode_batch_of_empty_contexts() -> None:
    k_cache, v_cache, table, _ = make_paged_cache(
        [16], page=16, num_kv_heads=1, head_dim=64, dtype=torch.bfloat16, device=DEVICE
    )
    ctx = torch.zeros(3, dtype=torch.int32, device=DEVICE)
    table = table[:1].expand(3, -1).contiguous()
    q = randn((3, 2, 64), torch.bfloat16, DEVICE)
    for splits in (None, 2):
        out = decode_attention_triton(q, k_cache, v_cache, table, ctx, 0.125, splits)
        assert bool((out == 0).all())
    empty = decode_attention_triton(q[:0], k_cache, v_cache, table[:0], ctx[:0], 0.125)
    assert empty.shape == (0, 2, 64)


def test_public_decode_dispatches_to_both_backends() -> None:
    lens = [5, 40]
    k_cache, v_cache, table, ctx = make_paged_cache(
        lens, page=16, num_kv_heads=1, head_dim=32, dtype=torch.float32, device=DEVICE
    )
    q = randn((2, 3, 32), torch.float32, DEVICE)
    with triton_backend():
        ours = kernels.decode_attention(q, k_cache, v_cache, table, ctx, 0.2)
    with kernels.force_backend("reference"):
        ref = kernels.decode_attention(q, k_cache, v_cache, table, ctx, 0.2)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_decode_hostile_metadata_is_masked_not_read_out_of_bounds() -> None:
    """Corrupt block ids and over-long contexts: the reference rejects them; the kernel
    (which cannot read values without a GPU sync) stays inside the cache."""
    k_cache, v_cache, table, ctx = make_paged_cache(
        [20, 20], page=16, num_kv_heads=1, head_dim=32, dtype=torch.float32, device=DEVICE
    )
    bad_table = table.clone()
    bad_table[0, 0] = 1 << 30
    bad_table[1, 1] = -7
    long_ctx = torch.tensor([20, 10_000], dtype=torch.int32, device=DEVICE)
    q = randn((2, 1, 32), torch.float32, DEVICE)
    for t, c in ((bad_table, ctx), (table, long_ctx)):
        with pytest.raises(ValueError):
            decode_attention_reference(q, k_cache, v_cache, t, c, 0.1)
        for splits in (None, 3):
            out = decode_attention_triton(q, k_cache, v_cache, t, c, 0.1, splits)
            assert bool(torch.isfinite(out).all())


def _valid() -> tuple[torch.Tensor, ...]:
    k_cache, v_cache, table, ctx = make_paged_cache(
        [3, 9], page=16, num_kv_heads=2, head_dim=32, dtype=torch.float16, device=DEVICE
    )
    return randn((2, 4, 32), torch.float16, DEVICE), k_cache, v_cache, table, ctx


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: {**a, "q": a["q"].transpose(0, 1).contiguous().transpose(0, 1)}, "contiguous"),
        (lambda a: {**a, "q": a["q"].float()}, "must match the cache"),
        (lambda a: {**a, "q": a["q"][:, :3].contiguous()}, "multiple of KV heads"),
        (lambda a: {**a, "q": a["q"][:1]}, "rows"),
        (lambda a: {**a, "block_tables": a["block_tables"].long()}, "block_tables has dtype"),
        (lambda a: {**a, "context_lens": a["context_lens"][None]}, "context_lens must be 1-D"),
        (lambda a: {**a, "k_cache": a["k_cache"][:, :, :1].contiguous()}, "must match"),
        (lambda a: {**a, "k_cache": a["k_cache"].int()}, "k_cache has dtype"),
        (lambda a: {**a, "scale": -1.0}, "scale"),
        (lambda a: {**a, "scale": float("nan")}, "scale"),
        (lambda a: {**a, "num_splits": 0}, "num_splits"),
        (lambda a: {**a, "num_splits": True}, "num_splits"),
        (
            lambda a: {
                **a,
                "q": a["q"][..., :24].contiguous(),
                "k_cache": a["k_cache"][..., :24].contiguous(),
                "v_cache": a["v_cache"][..., :24].contiguous(),
            },
            "power of two",
        ),
    ],
)
def test_decode_rejects_bad_inputs(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    q, k_cache, v_cache, table, ctx = _valid()
    args = {
        "q": q,
        "k_cache": k_cache,
        "v_cache": v_cache,
        "block_tables": table,
        "context_lens": ctx,
        "scale": 0.1,
        "num_splits": None,
    }
    with pytest.raises(ValueError, match=message):
        decode_attention_triton(**mutate(args))


def test_decode_rejects_cpu_tensors_when_not_interpreting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    q, k_cache, v_cache, table, ctx = (t.cpu() for t in _valid())
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        decode_attention_triton(q, k_cache, v_cache, table, ctx, 0.1)
