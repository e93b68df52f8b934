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
