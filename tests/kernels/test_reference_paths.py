"""The CPU references' fast paths agree with their general paths.

The attention references read a sequence whose pages are consecutive blocks as a view of
the cache (no gather), and the KV-cache reference writes a run of consecutive slots as one
copy; scattered pages and slots (and -1 slots) take the general path. Same K/V content
placed either way must give the same result, and bad metadata is still rejected.
"""

from __future__ import annotations

import pytest
import torch

from kernels.reference_attention import (
    decode_attention_reference,
    prefill_attention_reference,
    write_kv_cache_reference,
)

PAGE, HK, HQ, D = 4, 2, 6, 16


def _placed(n: int, blocks: list[int], num_blocks: int = 12) -> tuple[torch.Tensor, ...]:
    """K/V of one n-token sequence stored in ``blocks`` (in that order) of fresh caches."""
    k = torch.randn(n, HK, D)
    v = torch.randn(n, HK, D)
    kc = torch.randn(num_blocks, PAGE, HK, D)  # garbage elsewhere: a wrong read shows
    vc = torch.randn(num_blocks, PAGE, HK, D)
    for j in range(n):
        kc[blocks[j // PAGE], j % PAGE] = k[j]
        vc[blocks[j // PAGE], j % PAGE] = v[j]
    table = torch.tensor([[*blocks, 0]], dtype=torch.int32)
    return kc, vc, table


@pytest.mark.parametrize("n", [1, 4, 9, 11])
def test_consecutive_and_scattered_pages_attend_alike(n: int) -> None:
    torch.manual_seed(0)
    pages = -(-n // PAGE)
    q = torch.randn(1, HQ, D)
    qp = torch.randn(min(n, 3), HQ, D)
    outs, pre = [], []
    for blocks in (list(range(2, 2 + pages)), [7, 1, 10][:pages]):
        torch.manual_seed(1)  # same K/V values in both placements
        kc, vc, table = _placed(n, blocks)
        lens = torch.tensor([n], dtype=torch.int32)
        outs.append(decode_attention_reference(q, kc, vc, table, lens, 0.25))
        cu = torch.tensor([0, qp.shape[0]], dtype=torch.int32)
        pre.append(prefill_attention_reference(qp, kc, vc, cu, lens, table, 0.25))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pre[0], pre[1], rtol=1e-6, atol=1e-6)


def test_gqa_heads_read_their_own_kv_head() -> None:
    # Query head h must use KV head h // (HQ / HK): give the KV heads very different values.
    kc, vc, table = _placed(5, [0, 1])
    vc[:, :, 0] = 1.0
    vc[:, :, 1] = -1.0
    out = decode_attention_reference(torch.randn(1, HQ, D), kc, vc, table,
                                     torch.tensor([5], dtype=torch.int32), 0.25)
    group = HQ // HK
    assert torch.allclose(out[0, :group], torch.ones(group, D))
    assert torch.allclose(out[0, group:], -torch.ones(group, D))


def test_bad_block_ids_are_rejected_on_both_paths() -> None:
    kc, vc, _ = _placed(8, [0, 1])
    lens = torch.tensor([8], dtype=torch.int32)
    q = torch.randn(1, HQ, D)
    for table in ([[11, 12]], [[-1, 0]], [[3]]):  # past the pool, negative, too short
        with pytest.raises(ValueError):
            decode_attention_reference(q, kc, vc, torch.tensor(table, dtype=torch.int32),
                                       lens, 0.25)


@pytest.mark.parametrize("slots", [[5, 6, 7, 8], [9, 2, 30, 3], [4, -1, 6, -1], [-1, -1]])
def test_write_kv_cache_paths_match_a_plain_loop(slots: list[int]) -> None:
    k = torch.randn(len(slots), HK, D)
    v = torch.randn(len(slots), HK, D)
    kc, vc = torch.zeros(8, PAGE, HK, D), torch.zeros(8, PAGE, HK, D)
    write_kv_cache_reference(k, v, kc, vc, torch.tensor(slots))
    ek, ev = torch.zeros(8 * PAGE, HK, D), torch.zeros(8 * PAGE, HK, D)
    for i, s in enumerate(slots):
        if s >= 0:
            ek[s], ev[s] = k[i], v[i]
    assert torch.equal(kc.view(-1, HK, D), ek) and torch.equal(vc.view(-1, HK, D), ev)


@pytest.mark.parametrize("slots", [[0, 32], [-2, 1]])
def test_write_kv_cache_rejects_out_of_range_slots(slots: list[int]) -> None:
    kc, vc = torch.zeros(8, PAGE, HK, D), torch.zeros(8, PAGE, HK, D)
    with pytest.raises(ValueError, match="slots"):
        write_kv_cache_reference(torch.randn(2, HK, D), torch.randn(2, HK, D), kc, vc,
                                 torch.tensor(slots))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("group", "heads"), [(1, 4), (3, 2), (7, 1)])
@pytest.mark.parametrize(
    ("m", "n", "causal"),
    [(17, 17, True), (97, 97, True), (5, 40, True), (33, 257, True), (9, 23, False),
     (23, 9, False)],
    ids=["square-17", "square-97", "prefix-5-of-40", "prefix-33-of-257", "cross-9x23",
         "cross-23x9"],
)
def test_fused_attention_matches_the_dense_math(
    m: int, n: int, causal: bool, group: int, heads: int, dtype: torch.dtype
) -> None:
    """SDPA-backed attention (CPU, several queries) against the explicit matmul/softmax.

    Both are held to the float64 dense result: the fused error within 2x the dense one in
    the same dtype (REFERENCE.md's rule); in float64 both must agree to rounding.
    """
    from kernels.reference_attention import _attend, _attend_dense, _attend_fused

    gen = torch.Generator().manual_seed(m * 1000 + n)
    q = torch.randn(m, group * heads, D, generator=gen, dtype=torch.float64)
    k = torch.randn(n, heads, D, generator=gen, dtype=torch.float64)
    v = torch.randn(n, heads, D, generator=gen, dtype=torch.float64)
    exact = _attend_dense(q, k, v, 0.3, causal, torch.float64)
    q_, k_, v_ = (x.to(dtype) for x in (q, k, v))
    fused = _attend_fused(q_, k_, v_, 0.3, causal, dtype)
    dense = _attend_dense(q_, k_, v_, 0.3, causal, dtype)
    assert fused.dtype == dtype and fused.shape == exact.shape
    err_fused = (fused.double() - exact).abs().max().item()
    err_dense = (dense.double() - exact).abs().max().item()
    assert err_fused <= 2 * err_dense + (1e-12 if dtype == torch.float64 else 1e-6)
    assert torch.equal(_attend(q_, k_, v_, 0.3, causal, dtype), fused)  # the path CPU takes


def test_dense_math_serves_what_the_fused_kernel_cannot() -> None:
    """One query, more queries than keys under the causal mask (rows that see nothing)."""
    from kernels.reference_attention import _attend

    q, k, v = torch.randn(6, HQ, D), torch.randn(4, HK, D), torch.randn(4, HK, D)
    out = _attend(q, k, v, 0.25, True, torch.float32)
    assert torch.equal(out[:2], torch.zeros(2, HQ, D))  # queries before the first key
    assert torch.isfinite(out).all()
