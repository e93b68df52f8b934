"""Paged KV block allocator with reference counts and prefix caching.

A full block is identified by a chained hash: ``H(parent block's hash, its token ids)``, so
two sequences that start with the same tokens (a deployment's system prompt, the earlier
turns of a conversation) map to the same physical blocks. Only *full* blocks are
registered, and a sequence only ever writes past its last shared full block, so shared
blocks are read-only and need no copy-on-write.

Blocks are published when the step that computes them is *scheduled* (``publish``), not
after it ran: a request admitted later in the same step can then reuse them. That is safe
because every attention layer writes the whole step's K/V before any of the step's
queries read the cache, so a same-step reader sees them (the runner keeps that order).
A burst of conversations on a fresh deployment thus computes the system prompt once.

Freed blocks that hold a registered prefix are not wiped: they go to an LRU list and keep
serving hits until an allocation needs the space. Blocks are freed tail-first so that the
end of a conversation is evicted before the shared beginning.

SHA-256 is used rather than Python's ``hash``: token ids come from users, and a crafted
collision of a non-cryptographic hash would let one conversation read another's K/V.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict, deque

from engine.request import Sequence

__all__ = ["BlockManager"]

_ROOT_HASH = b"\x00" * 32


def hash_block(parent: bytes, token_ids: list[int]) -> bytes:
    """Chained hash of one full block of token ids."""
    return hashlib.sha256(parent + array("q", token_ids).tobytes()).digest()


class BlockManager:
    """Owns ``num_blocks`` KV blocks of ``block_size`` tokens each.

    Args:
        num_blocks: blocks in the pool (the KV cache's first dimension).
        block_size: tokens per block.
        enable_prefix_caching: register and reuse full blocks across sequences.
    """

    def __init__(self, num_blocks: int, block_size: int, *, enable_prefix_caching: bool = True):
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"need num_blocks >= 1 and block_size >= 1, got {num_blocks}, "
                             f"{block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._ref = [0] * num_blocks
        self._hash_of: list[bytes | None] = [None] * num_blocks
        self._free: deque[int] = deque(range(num_blocks))  # hold nothing worth keeping
        self._evictable: OrderedDict[int, None] = OrderedDict()  # ref 0, cached, LRU first
        self._cached: dict[bytes, int] = {}
        self.prefix_query_tokens = 0
        self.prefix_hit_tokens = 0

    # ----------------------------------------------------------------- queries
    @property
    def num_free_blocks(self) -> int:
        """Blocks an allocation can take now (free + evictable cached)."""
        return len(self._free) + len(self._evictable)

    @property
    def num_cached_blocks(self) -> int:
        return len(self._cached)

    def ref_count(self, block_id: int) -> int:
        return self._ref[block_id]

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def _block_hashes(self, seq: Sequence, num_full: int) -> list[bytes]:
        hashes = seq.block_hashes
        bs = self.block_size
        toks = seq.token_ids
        while len(hashes) < num_full:
            i = len(hashes)
            parent = hashes[-1] if hashes else _ROOT_HASH
            hashes.append(hash_block(parent, toks[i * bs : (i + 1) * bs]))
        return hashes

    def lookup_prefix(self, seq: Sequence) -> list[int]:
        """Cached blocks covering the longest prefix of ``seq`` (read-only lookup).

        At least one token is always left uncached so the step that admits the sequence
        computes logits for its last token.
        """
        if not self.enable_prefix_caching:
            return []
        max_blocks = (seq.num_tokens - 1) // self.block_size
        hits: list[int] = []
        for h in self._block_hashes(seq, max_blocks):
            block = self._cached.get(h)
            if block is None:
                break
            hits.append(block)
        return hits

    # ------------------------------------------------------------- allocation
    def allocate(self, seq: Sequence, num_new_tokens: int,
                 prefix_blocks: list[int] | None = None) -> bool:
        """Make room for ``num_new_tokens`` more computed tokens of ``seq``.

        ``prefix_blocks`` (from ``lookup_prefix``, only when the sequence holds no blocks)
        are shared into its block table and its computed count jumps past them.

        Returns:
            False, changing nothing, when the pool cannot supply the blocks.
        """
        prefix = prefix_blocks or []
        if prefix and seq.block_table:
            raise ValueError("prefix blocks can only be attached to a sequence with no blocks")
        computed = len(prefix) * self.block_size if prefix else seq.num_computed_tokens
        have = len(prefix) if prefix else len(seq.block_table)
        need = self.blocks_for(computed + num_new_tokens) - have
        revived = sum(1 for b in prefix if self._ref[b] == 0)
        if need + revived > self.num_free_blocks:
            return False
        if prefix:
            for b in prefix:
                if self._ref[b] == 0:
                    del self._evictable[b]
                self._ref[b] += 1
            seq.block_table = list(prefix)
            seq.num_computed_tokens = computed
            seq.extra["registered_blocks"] = len(prefix)
        for _ in range(need):
            seq.block_table.append(self._take_block())
        return True

    def _take_block(self) -> int:
        if self._free:
            block = self._free.popleft()
        else:
            block, _ = self._evictable.popitem(last=False)  # least recently freed
            h = self._hash_of[block]
            if h is not None:
                del self._cached[h]
                self._hash_of[block] = None
        self._ref[block] = 1
        return block

    def register_computed(self, seq: Sequence) -> None:
        """Publish ``seq``'s full blocks up to its computed tokens (see ``publish``)."""
        self.publish(seq, seq.num_computed_tokens)

    def publish(self, seq: Sequence, num_tokens: int) -> None:
        """Publish the full blocks of ``seq``'s first ``num_tokens`` tokens for reuse.

        Called when a step that computes them is scheduled (or after it ran). A block whose
        content is already cached under another block id stays private.
        """
        if not self.enable_prefix_caching:
            return
        done: int = seq.extra.get("registered_blocks", 0)
        full = min(num_tokens // self.block_size, len(seq.block_table))
        if full <= done:
            return
        hashes = self._block_hashes(seq, full)
        for i in range(done, full):
            block = seq.block_table[i]
            h = hashes[i]
            if h not in self._cached and self._hash_of[block] is None:
                self._cached[h] = block
                self._hash_of[block] = h
        seq.extra["registered_blocks"] = full

    def free(self, seq: Sequence) -> None:
        """Drop ``seq``'s references; cached blocks become evictable, tail first."""
        for block in reversed(seq.block_table):
            self._ref[block] -= 1
            if self._ref[block] == 0:
                if self._hash_of[block] is not None:
                    self._evictable[block] = None
                else:
                    self._free.append(block)
        seq.block_table = []
        seq.extra["registered_blocks"] = 0

    def record_prefix_query(self, num_tokens: int, num_hit_tokens: int) -> None:
        self.prefix_query_tokens += num_tokens
        self.prefix_hit_tokens += num_hit_tokens

    def reset_prefix_cache(self) -> None:
        """Forget every cached-but-unused block (e.g. after weights change)."""
        for block in self._evictable:
            h = self._hash_of[block]
            if h is not None:
                del self._cached[h]
            self._hash_of[block] = None
            self._free.append(block)
        self._evictable.clear()
