"""Decoder state of one translation batch: self-attention KV cache and cross-attention K/V.

Self-attention cache layout. Decoder rows (a sentence under greedy search, one beam of a
sentence under beam search) advance in lockstep, one token per step. Step t writes the new
K/V of row r into a fresh slot ``t * max_rows + r`` of a per-layer pool
``[capacity * max_rows, 1, heads, head_dim]``, and a table ``[rows, capacity]`` maps each
row's positions to slots. The kernels read that as a paged cache with one-token pages
(``kernels.decode_attention`` with the table as block table). So:

* beam search reorders rows by gathering table rows (``[rows, steps]`` int32) instead of
  copying the whole cache of every layer every step, which is what ``transformers`` does;
* finished sentences leave the batch the same way (their slots simply go unused);
* the pool grows along the step axis, so existing slot numbers stay valid.

Cross-attention K/V are computed once per source, packed ``[source_tokens, heads, D]``;
sentence b's rows (its beams, contiguous) form one query group attending to its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DecodeMeta", "DecoderState", "exclusive_cumsum"]

_GROW = 32  # steps added to the pool when it is full

KV = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DecodeMeta:
    """Per-step kernel metadata shared by all decoder layers.

    Attributes:
        slots: [N] int64 pool slot of each row's new token.
        block_tables: [N, capacity] int32 slot of each cached position (one-token pages).
        context_lens: [N] int32 tokens each row attends to (cached + the new one).
        cu_seqlens_q: [B+1] int32 decoder rows of each sentence (cross-attention queries).
        cu_seqlens_k: [B+1] int32 source tokens of each sentence (cross-attention keys).
    """

    slots: torch.Tensor
    block_tables: torch.Tensor
    context_lens: torch.Tensor
    cu_seqlens_q: torch.Tensor
    cu_seqlens_k: torch.Tensor


class DecoderState:
    """Caches of a batch of B sentences with ``rows_per_sentence`` decoder rows each.

    Args:
        cross_kv: per decoder layer, packed encoder-side (k, v), each [S, heads, D].
        source_lens: [B] int source length of each sentence (the packing of ``cross_kv``).
        rows_per_sentence: 1 for greedy search, the beam count for beam search.
        num_heads, head_dim, dtype: decoder self-attention cache geometry.
        capacity: steps to allocate up front (the pool grows past it on demand).
    """

    def __init__(
        self,
        cross_kv: list[KV],
        source_lens: torch.Tensor,
        rows_per_sentence: int,
        *,
        num_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        capacity: int = _GROW,
    ) -> None:
        self.cross_kv = cross_kv
        self.device = source_lens.device
        self.source_lens = source_lens.to(torch.int64)
        self.rows_per_sentence = rows_per_sentence
        self.max_rows = self.num_rows
        self.length = 0  # cached tokens per row
        cap = max(1, capacity)
        shape = (cap * self.max_rows, 1, num_heads, head_dim)
        self.pools: list[KV] = [
            (
                torch.empty(shape, dtype=dtype, device=self.device),
                torch.empty(shape, dtype=dtype, device=self.device),
            )
            for _ in cross_kv
        ]
        self.table = torch.zeros((self.max_rows, cap), dtype=torch.int32, device=self.device)
        self._cu = self._cu_seqlens()

    def _cu_seqlens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoder rows, source tokens) boundaries per sentence; fixed until compaction."""
        zero = torch.zeros(1, dtype=torch.int64, device=self.device)
        cu_q = torch.arange(
            0, self.num_rows + 1, self.rows_per_sentence, device=self.device, dtype=torch.int32
        )
        return cu_q, torch.cat([zero, self.source_lens.cumsum(0)]).to(torch.int32)

    @property
    def num_sentences(self) -> int:
        """Sentences still in the batch."""
        return int(self.source_lens.shape[0])

    @property
    def num_rows(self) -> int:
        """Decoder rows (sentences x rows per sentence)."""
        return self.num_sentences * self.rows_per_sentence

    @property
    def capacity(self) -> int:
        """Steps the pool holds before it must grow."""
        return int(self.table.shape[1])

    def step_meta(self) -> DecodeMeta:
        """Kernel metadata for the next token of every row (grows the pool if full)."""
        if self.length >= self.capacity:
            self._grow(self.capacity + _GROW)
        n, dev = self.num_rows, self.device
        slots = self.length * self.max_rows + torch.arange(n, device=dev)
        self.table[:, self.length] = slots.to(torch.int32)
        return DecodeMeta(
            slots=slots,
            block_tables=self.table,
            context_lens=torch.full((n,), self.length + 1, dtype=torch.int32, device=dev),
            cu_seqlens_q=self._cu[0],
            cu_seqlens_k=self._cu[1],
        )

    def advance(self) -> None:
        """Record that every row received one more cached token (after a decoder step)."""
        self.length += 1

    def reorder_rows(self, rows: torch.Tensor) -> None:
        """Row i continues the history of old row ``rows[i]`` (beam search).

        Rows must stay within their sentence: cross-attention groups are not touched.
        """
        if rows.shape[0] != self.num_rows:
            raise ValueError(f"reorder needs {self.num_rows} rows, got {rows.shape[0]}")
        self.table = self.table.index_select(0, rows)

    def keep_sentences(self, sentences: torch.Tensor) -> None:
        """Keep only ``sentences`` (increasing indices into the current batch)."""
        per = self.rows_per_sentence
        rows = (sentences[:, None] * per + torch.arange(per, device=self.device)).reshape(-1)
        self.table = self.table.index_select(0, rows)
        lens = self.source_lens.index_select(0, sentences)
        starts = exclusive_cumsum(self.source_lens).index_select(0, sentences)
        # Old token index of every kept source token, sentence by sentence.
        tokens = torch.arange(int(lens.sum()), device=self.device) + torch.repeat_interleave(
            starts - exclusive_cumsum(lens), lens
        )
        self.cross_kv = [
            (k.index_select(0, tokens), v.index_select(0, tokens)) for k, v in self.cross_kv
        ]
        self.source_lens = lens
        self._cu = self._cu_seqlens()

    def _grow(self, capacity: int) -> None:
        # The pool is step-major, so growing appends slots and keeps the old numbers.
        used = self.capacity * self.max_rows
        grown: list[KV] = []
        for k, v in self.pools:
            nk = k.new_empty((capacity * self.max_rows, *k.shape[1:]))
            nv = v.new_empty(nk.shape)
            nk[:used] = k
            nv[:used] = v
            grown.append((nk, nv))
        self.pools = grown
        table = self.table.new_zeros((self.table.shape[0], capacity))
        table[:, : self.capacity] = self.table
        self.table = table


def exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    """[0, x0, x0+x1, ...] without the total: where each packed segment starts."""
    return torch.cat([x.new_zeros(1), x.cumsum(0)[:-1]])
