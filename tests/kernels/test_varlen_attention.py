"""Packed varlen attention (encoder self-attn, cross-attn, causal decoder self-attn)."""

from __future__ import annotations

import itertools

import pytest
import torch
from attention_cases import check_against_reference, cu_seqlens, randn
from conftest import DEVICE, ON_GPU, requires_gpu, triton_backend

import kernels
from kernels.reference_attention import varlen_attention_reference
from kernels.varlen_attention import varlen_attention_triton

# (query lengths, key lengths) per batch layout.
SELF = ([1, 17, 0, 97, 257], [1, 17, 0, 97, 257])  # self-attention, one empty entry
CROSS = ([17, 3, 1, 0, 97], [5, 0, 257, 33, 64])  # decoder queries over encoder outputs

# On GPU: every dtype x head dim x group ratio, each group ratio with two of the four
# layouts so that every (dtype, head dim) sees all four.
_LAYOUTS = {
    1: (("self", True), ("cross", False)),
    3: (("self", False), ("cross", True)),
    7: (("self", True), ("cross", False)),
}
_FULL = [
    (dtype, d, g, layout)
    for dtype, d, g in itertools.product(
        (torch.float32, torch.float16, torch.bfloat16), (64, 128), (1, 3, 7)
    )
    for layout in _LAYOUTS[g]
]
_SMALL = [
    (torch.bfloat16, 64, 3, ("self", True)),
    (torch.float16, 128, 1, ("cross", False)),
    (torch.float32, 64, 7, ("self", False)),
]


def _run(
    dtype: torch.dtype,
    head_dim: int,
    group: int,
    q_lens: list[int],
    k_lens: list[int],
    causal: bool,
) -> None:
    hk = 2 if group < 7 else 1
    cu_q, cu_k = cu_seqlens(q_lens, DEVICE), cu_seqlens(k_lens, DEVICE)
    q = randn((sum(q_lens), hk * group, head_dim), dtype, DEVICE)
    k = randn((sum(k_lens), hk, head_dim), dtype, DEVICE)
    v = randn((sum(k_lens), hk, head_dim), dtype, DEVICE)
    scale = head_dim**-0.5
    out = varlen_attention_triton(q, k, v, cu_q, cu_k, scale, causal)
    assert out.shape == q.shape and out.dtype == dtype
    check_against_reference(
        out,
        varlen_attention_reference,
        (q, k, v),
        (cu_q, cu_k, scale, causal),
        f"varlen {dtype} d{head_dim} g{group} causal={causal}",
    )


@pytest.mark.parametrize(("dtype", "head_dim", "group", "layout"), _FULL if ON_GPU else _SMALL)
def test_varlen_matches_reference(
    dtype: torch.dtype, head_dim: int, group: int, layout: tuple[str, bool]
) -> None:
    kind, causal = layout
    q_lens, k_lens = SELF if kind == "self" else CROSS
    _run(dtype, head_dim, group, q_lens, k_lens, causal)


@requires_gpu
@pytest.mark.parametrize("head_dim", [16, 32, 256])
def test_varlen_other_head_dims(head_dim: int) -> None:
    _run(torch.bfloat16, head_dim, 2, [5, 130], [70, 130], True)


def test_varlen_rows_without_keys_are_zero() -> None:
    """Cross-attention over an empty encoder output, and causal rows before the keys."""
    q = randn((6, 2, 32), torch.float32, DEVICE)
    k = randn((2, 1, 32), torch.float32, DEVICE)
    cu_q, cu_k = cu_seqlens([3, 3], DEVICE), cu_seqlens([0, 2], DEVICE)
    out = varlen_attention_triton(q, k, k, cu_q, cu_k, 0.2, causal=True)
    assert bool((out[:4] == 0).all())  # seq 0 has no keys; seq 1's first query sees none
    assert bool((out[4:] != 0).any())
    none = varlen_attention_triton(q, k[:0], k[:0], cu_q, cu_seqlens([0, 0], DEVICE), 0.2)
    assert bool((none == 0).all())


def test_public_varlen_dispatches_to_both_backends() -> None:
    q = randn((9, 3, 32), torch.float32, DEVICE)
    k = randn((12, 1, 32), torch.float32, DEVICE)
    cu_q, cu_k = cu_seqlens([4, 5], DEVICE), cu_seqlens([7, 5], DEVICE)
    with triton_backend():
        ours = kernels.varlen_attention(q, k, k, cu_q, cu_k, 0.2, causal=True)
    with kernels.force_backend("reference"):
        ref = kernels.varlen_attention(q, k, k, cu_q, cu_k, 0.2, causal=True)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_varlen_hostile_offsets_stay_in_bounds() -> None:
    q = randn((8, 1, 32), torch.float32, DEVICE)
    k = randn((8, 1, 32), torch.float32, DEVICE)
    good = cu_seqlens([4, 4], DEVICE)
    for cu_q, cu_k in (
        (good, torch.tensor([0, 4, 1 << 20], dtype=torch.int32, device=DEVICE)),
        (good, torch.tensor([0, -50, 8], dtype=torch.int32, device=DEVICE)),
        (torch.tensor([0, 4, 99], dtype=torch.int32, device=DEVICE), good),
    ):
        with pytest.raises(ValueError):
            varlen_attention_reference(q, k, k, cu_q, cu_k, 0.2)
        out = varlen_attention_triton(q, k, k, cu_q, cu_k, 0.2)
        assert bool(torch.isfinite(out[:4]).all())


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        ("q", lambda t: t.transpose(0, 1), "contiguous"),
        ("k", lambda t: t.float(), "dtypes differ"),
        ("k", lambda t: t[:, :, :16].contiguous(), "must be"),
        ("v", lambda t: t[:5], "must be"),
        ("q", lambda t: t[:, :3].contiguous(), "multiple of KV heads"),
        ("cu_seqlens_k", lambda t: t[:2], "B\\+1"),
        ("cu_seqlens_q", lambda t: t.to(torch.int64), "cu_seqlens_q has dtype"),
        ("scale", lambda t: float("inf"), "scale"),
    ],
)
def test_varlen_rejects_bad_inputs(key: str, bad, message: str) -> None:  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "q": randn((6, 4, 32), torch.float16, DEVICE),
        "k": randn((6, 2, 32), torch.float16, DEVICE),
        "v": randn((6, 2, 32), torch.float16, DEVICE),
        "cu_seqlens_q": cu_seqlens([2, 4], DEVICE),
        "cu_seqlens_k": cu_seqlens([3, 3], DEVICE),
        "scale": 0.1,
    }
    args[key] = bad(args[key])
    with pytest.raises(ValueError, match=message):
        varlen_attention_triton(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        varlen_attention_reference(**args)  # type: ignore[arg-type]
