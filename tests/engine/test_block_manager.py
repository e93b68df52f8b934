"""Block pool: ref counts, prefix hits, LRU eviction — no model involved."""

from __future__ import annotations

import pytest

from engine.block_manager import BlockManager
from engine.request import Sequence
from engine.sampling import SamplingParams

BS = 4


def seq(tokens: list[int], rid: str = "r") -> Sequence:
    return Sequence(request_id=rid, prompt_token_ids=tokens, params=SamplingParams(),
                    max_total_tokens=10_000)


def compute_all(bm: BlockManager, s: Sequence) -> None:
    """Allocate and 'compute' the whole sequence, as a prefill step would."""
    prefix = bm.lookup_prefix(s)
    cached = len(prefix) * BS
    assert bm.allocate(s, s.num_tokens - cached, prefix)
    s.num_computed_tokens = s.num_tokens
    bm.register_computed(s)


def test_allocate_and_free_track_ref_counts() -> None:
    bm = BlockManager(8, BS)
    s = seq(list(range(10)))
    assert bm.allocate(s, 10)
    assert len(s.block_table) == 3 and bm.num_free_blocks == 5
    assert all(bm.ref_count(b) == 1 for b in s.block_table)
    bm.free(s)
    assert bm.num_free_blocks == 8 and s.block_table == []


def test_allocation_that_does_not_fit_changes_nothing() -> None:
    bm = BlockManager(2, BS)
    s = seq(list(range(12)))
    assert not bm.allocate(s, 12)
    assert s.block_table == [] and bm.num_free_blocks == 2


def test_identical_prefix_shares_blocks() -> None:
    bm = BlockManager(16, BS)
    system = list(range(100, 112))  # 3 full blocks
    a = seq([*system, 1, 2], "a")
    compute_all(bm, a)
    b = seq([*system, 7, 8, 9], "b")
    hits = bm.lookup_prefix(b)
    assert hits == a.block_table[:3]
    compute_all(bm, b)
    assert b.block_table[:3] == a.block_table[:3]
    assert b.block_table[3] != a.block_table[3]
    assert all(bm.ref_count(x) == 2 for x in a.block_table[:3])
    assert b.num_computed_tokens == b.num_tokens


def test_lookup_always_leaves_the_last_token_to_compute() -> None:
    bm = BlockManager(16, BS)
    a = seq(list(range(8)), "a")  # exactly 2 full blocks
    compute_all(bm, a)
    again = seq(list(range(8)), "b")
    assert len(bm.lookup_prefix(again)) == 1  # the 2nd block holds the last token


def test_hash_is_chained_on_the_parent() -> None:
    bm = BlockManager(16, BS)
    compute_all(bm, seq([1, 2, 3, 4, 5, 6, 7, 8, 0], "a"))
    # Same second block, different first block: no hit at all.
    assert bm.lookup_prefix(seq([9, 9, 9, 9, 5, 6, 7, 8, 0], "b")) == []


def test_prefix_caching_disabled_never_hits() -> None:
    bm = BlockManager(16, BS, enable_prefix_caching=False)
    compute_all(bm, seq(list(range(9)), "a"))
    assert bm.lookup_prefix(seq(list(range(9)), "b")) == []


def test_freed_prefix_survives_until_space_is_needed_lru_tail_first() -> None:
    bm = BlockManager(4, BS)
    a = seq(list(range(13)), "a")  # 4 blocks, 3 full and registered
    compute_all(bm, a)
    blocks = list(a.block_table)
    bm.free(a)
    assert bm.num_free_blocks == 4
    # Revivable: a new request with the same prefix hits all 3 full blocks.
    assert bm.lookup_prefix(seq(list(range(13)), "b")) == blocks[:3]
    # Taking two blocks uses the never-cached one first, then evicts the *tail* block.
    c = seq([50] * 8, "c")
    assert bm.allocate(c, 8)
    assert c.block_table[0] == blocks[3]
    assert c.block_table[1] == blocks[2]
    assert bm.lookup_prefix(seq(list(range(13)), "d")) == blocks[:2]


def test_hit_on_evictable_block_revives_it() -> None:
    bm = BlockManager(3, BS)
    a = seq(list(range(9)), "a")
    compute_all(bm, a)
    bm.free(a)
    b = seq(list(range(9)), "b")
    hits = bm.lookup_prefix(b)
    assert bm.allocate(b, 1, hits)
    assert all(bm.ref_count(x) == 1 for x in hits)
    # 2 revived + 1 new: nothing left to evict.
    assert bm.num_free_blocks == 0


def test_allocation_counts_revived_blocks() -> None:
    bm = BlockManager(3, BS)
    a = seq(list(range(9)), "a")
    compute_all(bm, a)
    bm.free(a)
    b = seq([*range(8), 42, 43, 44, 45, 46], "b")
    hits = bm.lookup_prefix(b)
    assert len(hits) == 2
    # needs 2 new blocks for 5 tokens + 2 revived = 4 > 3: must refuse, untouched
    assert not bm.allocate(b, 5, hits)
    assert b.block_table == [] and all(bm.ref_count(x) == 0 for x in hits)


def test_identical_prompts_computed_together_keep_one_cached_copy() -> None:
    bm = BlockManager(8, BS)
    a, b = seq(list(range(9)), "a"), seq(list(range(9)), "b")
    for s in (a, b):
        assert bm.allocate(s, 9)
    for s in (a, b):
        s.num_computed_tokens = 9
        bm.register_computed(s)
    assert bm.num_cached_blocks == 2
    bm.free(a)
    bm.free(b)
    assert bm.num_free_blocks == 8


def test_reset_prefix_cache_forgets_unused_blocks() -> None:
    bm = BlockManager(4, BS)
    a = seq(list(range(9)), "a")
    compute_all(bm, a)
    bm.free(a)
    bm.reset_prefix_cache()
    assert bm.num_cached_blocks == 0 and bm.num_free_blocks == 4
    assert bm.lookup_prefix(seq(list(range(9)), "b")) == []


@pytest.mark.parametrize(("blocks", "size"), [(0, 16), (4, 0), (-1, 16)])
def test_rejects_empty_pools(blocks: int, size: int) -> None:
    with pytest.raises(ValueError):
        BlockManager(blocks, size)
