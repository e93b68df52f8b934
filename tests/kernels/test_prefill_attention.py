"""Prefill attention over the paged cache: Triton kernel vs the PyTorch reference."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from attention_cases import check_against_reference, cu_seqlens, make_paged_cache, randn
from conftest import DEVICE, ON_GPU, requires_gpu, triton_backend

import kernels
from kernels.kv_cache import write_kv_cache_triton
from kernels.prefill_attention import prefill_attention_triton
from kernels.reference_attention import prefill_attention_reference, varlen_attention_reference

ROOT = Path(__file__).resolve().parents[2]


def _batch(page: int) -> list[tuple[int, int]]:
    """(queries, context) per sequence: empty prompt over a prefix, single tokens, odd
    lengths, page edges, prefix extension (context > queries), long."""
    return [
        (0, 5),
        (1, 1),
        (17, 17),
        (page + 1, page + 1),
        (17, 2 * page - 1),
        (1, page + 1),
        (97, 97),
        (97, 97 + 3 * page + 1),
        (257, 257),
    ]


# On GPU: every dtype x head dim x group ratio x causal mode, with page 64 (one page per
# 64-key tile), 16 or 32 alternating by group ratio.
_FULL = [
    (dtype, d, g, {1: 16, 3: 32, 7: 64}[g], causal)
    for dtype, d, g, causal in itertools.product(
        (torch.float32, torch.float16, torch.bfloat16), (64, 128), (1, 3, 7), (True, False)
    )
]
_SMALL = [
    (torch.float32, 64, 1, 16, True),
    (torch.bfloat16, 128, 7, 16, True),
    (torch.float16, 64, 3, 32, True),
    (torch.bfloat16, 64, 3, 16, False),
]


def _run_case(
    dtype: torch.dtype,
    head_dim: int,
    group: int,
    page: int,
    causal: bool,
    batch: list[tuple[int, int]],
) -> None:
    num_kv_heads = 2 if group < 7 else 1
    k_cache, v_cache, table, ctx = make_paged_cache(
        [c for _, c in batch],
        page=page,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        dtype=dtype,
        device=DEVICE,
    )
    cu = cu_seqlens([n for n, _ in batch], DEVICE)
    q = randn((int(cu[-1]), num_kv_heads * group, head_dim), dtype, DEVICE)
    scale = head_dim**-0.5
    out = prefill_attention_triton(q, k_cache, v_cache, cu, ctx, table, scale, causal)
    assert out.shape == q.shape and out.dtype == dtype
    check_against_reference(
        out,
        prefill_attention_reference,
        (q, k_cache, v_cache),
        (cu, ctx, table, scale, causal),
        f"prefill {dtype} d{head_dim} g{group} p{page} causal={causal}",
    )


@pytest.mark.parametrize(
    ("dtype", "head_dim", "group", "page", "causal"), _FULL if ON_GPU else _SMALL
)
def test_prefill_matches_reference(
    dtype: torch.dtype, head_dim: int, group: int, page: int, causal: bool
) -> None:
    _run_case(dtype, head_dim, group, page, causal, _batch(page))


@requires_gpu
@pytest.mark.parametrize("head_dim", [16, 32, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prefill_other_head_dims(head_dim: int, dtype: torch.dtype) -> None:
    _run_case(dtype, head_dim, 2, 16, True, [(0, 3), (33, 33), (130, 300)])


@requires_gpu
def test_prefill_long_sequences() -> None:
    _run_case(torch.bfloat16, 128, 7, 16, True, [(2048, 2048), (1000, 3000), (5, 5)])


def test_prefill_reads_what_write_kv_cache_wrote() -> None:
    """Engine flow: scatter a prompt's K/V with write_kv_cache, then prefill from the
    pages must equal plain causal attention over the contiguous K/V."""
    page, hk, d, lens = 16, 2, 64, [17, 40]
    total = sum(lens)
    k = randn((total, hk, d), torch.bfloat16, DEVICE)
    v = randn((total, hk, d), torch.bfloat16, DEVICE)
    q = randn((total, 2 * hk, d), torch.bfloat16, DEVICE)
    k_cache, v_cache, table, ctx = make_paged_cache(
        lens, page=page, num_kv_heads=hk, head_dim=d, dtype=torch.bfloat16, device=DEVICE
    )
    slots = []
    for b, n in enumerate(lens):
        for pos in range(n):
            slots.append(int(table[b, pos // page]) * page + pos % page)
    slot_mapping = torch.tensor(slots, dtype=torch.int64, device=DEVICE)
    write_kv_cache_triton(k, v, k_cache, v_cache, slot_mapping)
    cu = cu_seqlens(lens, DEVICE)
    out = prefill_attention_triton(q, k_cache, v_cache, cu, ctx, table, d**-0.5)
    check_against_reference(
        out,
        varlen_attention_reference,
        (q, k, v),
        (cu, cu, d**-0.5, True),
        "prefill after write_kv_cache",
    )


def test_prefill_empty_inputs() -> None:
    k_cache, v_cache, table, ctx = make_paged_cache(
        [4, 4], page=16, num_kv_heads=1, head_dim=32, dtype=torch.float16, device=DEVICE
    )
    cu = torch.zeros(3, dtype=torch.int32, device=DEVICE)
    q = randn((0, 2, 32), torch.float16, DEVICE)
    assert prefill_attention_triton(q, k_cache, v_cache, cu, ctx, table, 0.2).shape == (0, 2, 32)
    none = cu[:1]
    out = prefill_attention_triton(q, k_cache, v_cache, none, ctx[:0], table[:0], 0.2)
    assert out.shape == (0, 2, 32)


def test_public_prefill_dispatches_to_both_backends() -> None:
    k_cache, v_cache, table, ctx = make_paged_cache(
        [5, 40], page=16, num_kv_heads=1, head_dim=32, dtype=torch.float32, device=DEVICE
    )
    cu = cu_seqlens([2, 33], DEVICE)
    q = randn((35, 3, 32), torch.float32, DEVICE)
    with triton_backend():
        ours = kernels.prefill_attention(q, k_cache, v_cache, cu, ctx, table, 0.2)
    with kernels.force_backend("reference"):
        ref = kernels.prefill_attention(q, k_cache, v_cache, cu, ctx, table, 0.2)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_prefill_hostile_metadata_stays_in_bounds() -> None:
    """Values the launcher cannot check without a sync: the reference rejects them, the
    kernel masks them (finite output, no out-of-bounds access)."""
    k_cache, v_cache, table, ctx = make_paged_cache(
        [20, 20], page=16, num_kv_heads=1, head_dim=32, dtype=torch.float32, device=DEVICE
    )
    q = randn((10, 1, 32), torch.float32, DEVICE)
    good_cu = cu_seqlens([5, 5], DEVICE)
    bad_table = table.clone()
    bad_table[0, 0] = -3
    bad_table[1, 1] = 1 << 30
    cases = [
        (cu_seqlens([5, 500], DEVICE), ctx, table),  # runs past q
        (torch.tensor([0, 8, 2], dtype=torch.int32, device=DEVICE), ctx, table),  # falls
        (good_cu, torch.tensor([3, 1 << 20], dtype=torch.int32, device=DEVICE), table),
        (good_cu, ctx, bad_table),
    ]
    for cu, c, t in cases:
        with pytest.raises(ValueError):
            prefill_attention_reference(q, k_cache, v_cache, cu, c, t, 0.1)
        out = prefill_attention_triton(q, k_cache, v_cache, cu, c, t, 0.1)
        assert bool(torch.isfinite(out[:5]).all())


def _valid() -> dict[str, object]:
    k_cache, v_cache, table, ctx = make_paged_cache(
        [3, 9], page=16, num_kv_heads=2, head_dim=32, dtype=torch.bfloat16, device=DEVICE
    )
    return {
        "q": randn((12, 4, 32), torch.bfloat16, DEVICE),
        "k_cache": k_cache,
        "v_cache": v_cache,
        "cu_seqlens_q": cu_seqlens([3, 9], DEVICE),
        "context_lens": ctx,
        "block_tables": table,
        "scale": 0.1,
    }


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [
        ("q", lambda t: t[:, :, ::2], "contiguous"),
        ("q", lambda t: t.half(), "must match the cache"),
        ("q", lambda t: t[:, :3].contiguous(), "multiple of KV heads"),
        ("q", lambda t: t[0], "q must be 3-D"),
        ("cu_seqlens_q", lambda t: t.long(), "cu_seqlens_q has dtype"),
        ("cu_seqlens_q", lambda t: t[:2], "rows"),
        ("cu_seqlens_q", lambda t: t[:0], "B\\+1"),
        ("context_lens", lambda t: t.float(), "context_lens has dtype"),
        ("block_tables", lambda t: t[:1], "rows"),
        ("block_tables", lambda t: t.t(), "contiguous"),
        ("v_cache", lambda t: t[:1].contiguous(), "must match"),
        ("scale", lambda t: 0.0, "scale"),
        ("scale", lambda t: "0.1", "scale"),
    ],
)
def test_prefill_rejects_bad_inputs(key: str, bad, message: str) -> None:  # type: ignore[no-untyped-def]
    args = _valid()
    args[key] = bad(args[key])
    with pytest.raises(ValueError, match=message):
        prefill_attention_triton(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        prefill_attention_reference(**args)  # type: ignore[arg-type]


@requires_gpu
@pytest.mark.skipif(
    shutil.which("compute-sanitizer") is None, reason="compute-sanitizer is not on PATH"
)
def test_attention_kernels_pass_compute_sanitizer_memcheck() -> None:
    """Run every attention kernel once under memcheck (scripts/sanitize_attention.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [
            "compute-sanitizer",
            "--tool",
            "memcheck",
            "--error-exitcode",
            "1",
            sys.executable,
            str(ROOT / "scripts" / "sanitize_attention.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "ERROR SUMMARY: 0 errors" in proc.stdout + proc.stderr


@requires_gpu
def test_step_sizes_do_not_compile_the_kernel_again() -> None:
    """Batches of other token counts, sequence counts and table widths reuse the compiled
    kernel: a compile mid-serving costs a request ~1-2 s of TTFT."""
    from kernels._attention_fwd import _attn_fwd_kernel

    def compiled() -> int:
        caches = getattr(_attn_fwd_kernel, "device_caches", None)
        if caches is None:  # older Triton: one cache for all devices
            return len(_attn_fwd_kernel.cache)
        return sum(len(entry[0]) for entry in caches.values())

    def prefill(lengths: list[int], extra_cols: int) -> None:
        k_cache, v_cache, tables, lens = make_paged_cache(
            lengths, page=16, num_kv_heads=2, head_dim=64, dtype=torch.bfloat16,
            device=DEVICE, extra_table_cols=extra_cols,
        )  # fmt: skip
        q = randn((sum(lengths), 14, 64), torch.bfloat16, DEVICE)
        kernels.prefill_attention(
            q, k_cache, v_cache, cu_seqlens(lengths, DEVICE), lens, tables, 0.125
        )

    prefill([32], 1)
    torch.cuda.synchronize()
    before = compiled()
    for lengths, extra_cols in [([24], 2), ([33], 1), ([1], 3), ([17, 40], 5),
                                ([16, 16, 5], 16), ([257], 1)]:  # fmt: skip
        prefill(lengths, extra_cols)
    torch.cuda.synchronize()
    assert compiled() == before
