"""CUDA graphs for pure-decode steps, one per batch-size bucket.

Graphs replay fixed device addresses, so every input lives in a static buffer sized for
the largest bucket; a step copies its rows in and pads the rest of the bucket with rows
that write nothing (slot -1) and attend to nothing (context length 0). Block tables are
captured at full width (``max_model_len / block_size``) so one graph serves every
context length.
"""

from __future__ import annotations

import bisect

import torch
from torch import nn

from engine.attention_metadata import AttentionMetadata

__all__ = ["DecodeGraphs"]

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]


class DecodeGraphs:
    """Captured decode steps for batch sizes ``buckets`` (ascending)."""

    def __init__(self, model: nn.Module, kv_caches: KVCaches, device: torch.device,
                 buckets: list[int], max_blocks_per_seq: int) -> None:
        self.model = model
        self.kv_caches = kv_caches
        self.device = device
        self.buckets = sorted(buckets)
        n = self.buckets[-1]
        self.input_ids = torch.zeros(n, dtype=torch.int64, device=device)
        self.positions = torch.zeros(n, dtype=torch.int64, device=device)
        self.slots = torch.full((n,), -1, dtype=torch.int64, device=device)
        self.context_lens = torch.zeros(n, dtype=torch.int32, device=device)
        self.block_tables = torch.zeros((n, max_blocks_per_seq), dtype=torch.int32,
                                        device=device)
        self.logits_indices = torch.arange(n, dtype=torch.int64, device=device)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    def fits(self, batch: int) -> bool:
        return bool(self._graphs) and batch <= self.buckets[-1]

    def _meta(self, b: int) -> AttentionMetadata:
        return AttentionMetadata(
            slot_mapping=self.slots[:b], num_prefill_tokens=0,
            decode_context_lens=self.context_lens[:b],
            decode_block_tables=self.block_tables[:b],
            logits_indices=self.logits_indices[:b])

    def _run(self, b: int) -> torch.Tensor:
        out: torch.Tensor = self.model(self.input_ids[:b], self.positions[:b], self.kv_caches,
                                       self._meta(b))
        return out

    @torch.inference_mode()
    def capture(self) -> None:
        """Capture largest bucket first so smaller ones reuse its memory pool."""
        pool = None
        for b in reversed(self.buckets):
            side = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):  # compile Triton kernels / autotune outside capture
                    self._run(b)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                out = self._run(b)
            pool = graph.pool()
            self._graphs[b] = (graph, out)
        torch.cuda.synchronize(self.device)

    def replay(self, ids: torch.Tensor, pos: torch.Tensor, slots: torch.Tensor,
               ctx: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        """Run a decode step of ``len(ids)`` rows; returns logits ``[len(ids), V]``."""
        n = ids.shape[0]
        b = self.buckets[bisect.bisect_left(self.buckets, n)]
        self.input_ids[:n].copy_(ids, non_blocking=True)
        self.positions[:n].copy_(pos, non_blocking=True)
        self.slots[:n].copy_(slots, non_blocking=True)
        self.context_lens[:n].copy_(ctx, non_blocking=True)
        self.block_tables[:n, : tables.shape[1]].copy_(tables, non_blocking=True)
        if b > n:
            self.slots[n:b].fill_(-1)
            self.context_lens[n:b].zero_()
        graph, out = self._graphs[b]
        graph.replay()
        return out[:n]
