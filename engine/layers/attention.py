"""Paged attention: write this step's K/V into the cache, then attend from the cache.

A step's tokens are all prefill tokens first, then one token per decoding sequence
(see ``engine.attention_metadata``). Prefill queries go to ``kernels.prefill_attention``
(which also handles a prompt chunk that extends an already-cached prefix), decode queries
to ``kernels.decode_attention``.
"""

from __future__ import annotations

import torch
from torch import nn

import kernels
from engine.attention_metadata import AttentionMetadata

__all__ = ["KVCache", "PagedAttention"]

KVCache = tuple[torch.Tensor, torch.Tensor]  # (k_cache, v_cache), each [blocks, bs, Hk, D]


class PagedAttention(nn.Module):
    """Multi-head / grouped-query attention over a paged KV cache (no parameters)."""

    def __init__(self, num_heads: int, num_kv_heads: int, head_dim: int, scale: float) -> None:
        super().__init__()
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads {num_heads} is not a multiple of {num_kv_heads}")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.scale = scale

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        kv_cache: KVCache | None,
        meta: AttentionMetadata,
    ) -> torch.Tensor:
        """q [T, Hq, D], k/v [T, Hk, D] -> out [T, Hq, D].

        With ``kv_cache=None`` (a warm-up / memory-profiling pass before the cache exists)
        only fresh prompts are allowed and attention runs on the packed k/v directly.
        """
        if kv_cache is None:
            _check_tokens(q, meta)
            return self._no_cache(q, k, v, meta)
        kernels.write_kv_cache(k, v, kv_cache[0], kv_cache[1], meta.slot_mapping)
        return self.attend_cached(q, kv_cache, meta)

    def attend_cached(
        self, q: torch.Tensor, kv_cache: KVCache, meta: AttentionMetadata
    ) -> torch.Tensor:
        """q [T, Hq, D] -> out [T, Hq, D], over K/V already in the cache (this step's
        included: `kernels.rope_and_cache` wrote them)."""
        _check_tokens(q, meta)
        n_prefill, n_decode = meta.num_prefill_tokens, meta.num_decode_tokens
        k_cache, v_cache = kv_cache
        prefill_out = decode_out = None
        if n_prefill:
            if (
                meta.prefill_cu_seqlens_q is None
                or meta.prefill_context_lens is None
                or meta.prefill_block_tables is None
            ):
                raise ValueError("prefill tokens without prefill metadata")
            prefill_out = kernels.prefill_attention(
                q[:n_prefill],
                k_cache,
                v_cache,
                meta.prefill_cu_seqlens_q,
                meta.prefill_context_lens,
                meta.prefill_block_tables,
                self.scale,
                causal=True,
            )
        if n_decode:
            if meta.decode_block_tables is None or meta.decode_context_lens is None:
                raise ValueError("decode tokens without decode metadata")
            decode_out = kernels.decode_attention(
                q[n_prefill:],
                k_cache,
                v_cache,
                meta.decode_block_tables,
                meta.decode_context_lens,
                self.scale,
            )
        parts = [p for p in (prefill_out, decode_out) if p is not None]
        if not parts:
            return torch.empty_like(q)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)

    def _no_cache(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: AttentionMetadata
    ) -> torch.Tensor:
        cu = meta.prefill_cu_seqlens_q
        if meta.num_decode_tokens or cu is None:
            raise ValueError("a step without a KV cache may only hold fresh prompts")
        return kernels.varlen_attention(q, k, v, cu, cu, self.scale, causal=True)


def _check_tokens(q: torch.Tensor, meta: AttentionMetadata) -> None:
    n_prefill, n_decode = meta.num_prefill_tokens, meta.num_decode_tokens
    if n_prefill + n_decode != q.shape[0]:
        raise ValueError(f"metadata describes {n_prefill}+{n_decode} tokens, q has {q.shape[0]}")
