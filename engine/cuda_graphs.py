"""CUDA graphs for decode steps (per batch-size bucket) and small prefill steps (per
token-count bucket).

Graphs replay fixed device addresses, so every input lives in a static buffer sized for
the largest bucket (``engine.graph_inputs``: one upload per step). A decode step copies
its rows in and pads the rest of the bucket with rows that write nothing (slot -1) and
attend to nothing (context length 0). A prefill step packs its sequences' tokens first;
the unused sequence entries up to ``max_seqs`` have no tokens, and one more "sink"
sequence owns the padding tokens: they write nothing, attend to whatever cache pages the
sink's table row names (stale, never written by them), and no sampled row reads them.
Block tables are captured at full width (``max_model_len / block_size``; the prefill
tables at least a bucket's worth) so one graph serves every context length.

Without ``capture`` (the CPU; the tests) the same steps run eagerly on the same buffers,
which is how the padding and packing are tested without a GPU.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from engine.attention_metadata import AttentionMetadata
from engine.graph_capture import capture_checked
from engine.graph_inputs import Field, StaticInputs, flat_rows

__all__ = ["DecodeGraphs", "PrefillGraphs"]

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]


class _Graphs:
    """One captured step per bucket size, sharing a memory pool, over static inputs
    (``input_ids``, ``positions``, ``slots`` and what the subclass's metadata reads)."""

    name = "step"

    def __init__(
        self,
        model: nn.Module,
        kv_caches: KVCaches,
        device: torch.device,
        buckets: Sequence[int],
        fields: Mapping[str, Field],
        *,
        capture: bool,
    ) -> None:
        self.model, self.kv_caches, self.device = model, kv_caches, device
        self.buckets = sorted(buckets)
        self.capture = capture
        self.inputs = StaticInputs(device, fields)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    def bucket(self, n: int) -> int:
        """The smallest bucket holding ``n`` (the caller checked ``n <= buckets[-1]``)."""
        return self.buckets[bisect.bisect_left(self.buckets, n)]

    def _meta(self, b: int) -> AttentionMetadata:
        """The attention metadata of bucket ``b``, views of the static inputs."""
        raise NotImplementedError

    def _prepare(self, b: int) -> None:
        """Make the static inputs a valid step of bucket ``b`` (before capturing it)."""

    def _forward(self, b: int) -> torch.Tensor:
        v = self.inputs.device_view
        out: torch.Tensor = self.model(
            v("input_ids")[:b], v("positions")[:b], self.kv_caches, self._meta(b)
        )
        return out

    def _write_tokens(self, ids: list[int] | None, pos: list[int], slots: list[int]) -> None:
        n, host = len(pos), self.inputs.host
        if ids is not None:
            host("input_ids")[:n] = torch.tensor(ids)
        host("positions")[:n] = torch.tensor(pos)
        host("slots")[:n] = torch.tensor(slots)

    @torch.inference_mode()
    def capture_all(self) -> None:
        """Capture largest bucket first so smaller ones reuse its memory pool; a bucket
        whose capture fails runs eagerly (``engine.graph_capture`` logs why)."""
        if not self.capture:
            return
        pool = None
        for b in reversed(self.buckets):
            self._prepare(b)
            captured = capture_checked(
                functools.partial(self._forward, b), self.device, pool, what=f"{self.name} {b}"
            )
            if captured is not None:
                self._graphs[b] = captured
                pool = captured[0].pool()

    def run(self, b: int) -> torch.Tensor:
        """Replay bucket ``b`` (or run it eagerly: no capture, or its capture failed)."""
        captured = self._graphs.get(b)
        if captured is None:
            return self._forward(b)
        graph, out = captured
        graph.replay()
        return out


class DecodeGraphs(_Graphs):
    """Decode steps for batch sizes ``buckets`` (ascending)."""

    name = "decode batch"

    def __init__(
        self,
        model: nn.Module,
        kv_caches: KVCaches,
        device: torch.device,
        buckets: list[int],
        max_blocks_per_seq: int,
        *,
        capture: bool = True,
    ) -> None:
        n, i64, i32 = max(buckets), torch.int64, torch.int32
        fields: dict[str, Field] = {
            "input_ids": (i64, (n,), 0),
            "positions": (i64, (n,), 0),
            "slots": (i64, (n,), -1),
            "logits_indices": (i64, (n,), 0),
            "context_lens": (i32, (n,), 0),
            "block_tables": (i32, (n, max_blocks_per_seq), 0),
        }
        super().__init__(model, kv_caches, device, buckets, fields, capture=capture)
        self.width = max_blocks_per_seq
        self.inputs.host("logits_indices").copy_(torch.arange(n))
        self.inputs.upload()

    def fits(self, batch: int) -> bool:
        return batch <= self.buckets[-1] and (bool(self._graphs) or not self.capture)

    def _meta(self, b: int) -> AttentionMetadata:
        v = self.inputs.device_view
        return AttentionMetadata(
            slot_mapping=v("slots")[:b],
            num_prefill_tokens=0,
            decode_context_lens=v("context_lens")[:b],
            decode_block_tables=v("block_tables")[:b],
            logits_indices=v("logits_indices")[:b],
        )

    def replay(
        self,
        ids: list[int] | torch.Tensor,
        pos: list[int],
        slots: list[int],
        ctx: list[int],
        tables: list[list[int]],
    ) -> torch.Tensor:
        """Run a decode step of ``len(pos)`` rows; returns logits ``[len(pos), V]``.

        ``ids`` may be a tensor on the device (an earlier step's sampled tokens): it is
        copied into the input buffer behind the upload, with no host round trip.
        """
        n = len(pos)
        b = self.bucket(n)
        fed = ids if isinstance(ids, torch.Tensor) else None
        self._write_tokens(None if isinstance(ids, torch.Tensor) else ids, pos, slots)
        host = self.inputs.host
        host("slots")[n:b] = -1
        lens = host("context_lens")
        lens[:n] = torch.tensor(ctx)
        lens[n:b] = 0
        _write_tables(host("block_tables"), tables)
        self.inputs.upload({"block_tables": n * self.width})
        if fed is not None:
            self.inputs.device_view("input_ids")[:n].copy_(fed)
        return self.run(b)[:n]


class PrefillGraphs(_Graphs):
    """Prefill-only steps of up to ``max_seqs`` sequences, for token counts ``buckets``."""

    name = "prefill tokens"

    def __init__(
        self,
        model: nn.Module,
        kv_caches: KVCaches,
        device: torch.device,
        buckets: list[int],
        max_seqs: int,
        max_blocks_per_seq: int,
        *,
        capture: bool = True,
    ) -> None:
        t, s, i64, i32 = max(buckets), max_seqs, torch.int64, torch.int32
        fields: dict[str, Field] = {
            "input_ids": (i64, (t,), 0),
            "positions": (i64, (t,), 0),
            "slots": (i64, (t,), -1),
            "logits_indices": (i64, (s,), 0),
            "cu_seqlens_q": (i32, (s + 2,), 0),
            "context_lens": (i32, (s + 1,), 0),
            "block_tables": (i32, (s + 1, max_blocks_per_seq), 0),
        }
        super().__init__(model, kv_caches, device, buckets, fields, capture=capture)
        self.max_seqs = max_seqs
        self._prepare(t)

    def fits(self, num_seqs: int, num_tokens: int) -> bool:
        return (num_seqs <= self.max_seqs and num_tokens <= self.buckets[-1]
                and (bool(self._graphs) or not self.capture))  # fmt: skip

    def _prepare(self, b: int) -> None:
        self._sink(0, b)  # every token in the sink: no real sequence, nothing written
        self.inputs.upload()

    def _sink(self, real: int, b: int) -> None:
        """Sequences after the real ones are empty; the sink takes tokens real..b."""
        cu, lens = self.inputs.host("cu_seqlens_q"), self.inputs.host("context_lens")
        cu[-1] = b
        lens[-1] = b - real
        self.inputs.host("slots")[real:b] = -1

    def _meta(self, b: int) -> AttentionMetadata:
        v = self.inputs.device_view
        return AttentionMetadata(
            slot_mapping=v("slots")[:b],
            num_prefill_tokens=b,
            prefill_cu_seqlens_q=v("cu_seqlens_q"),
            prefill_context_lens=v("context_lens"),
            prefill_block_tables=v("block_tables"),
            logits_indices=v("logits_indices"),
        )

    def replay(
        self,
        ids: list[int],
        pos: list[int],
        slots: list[int],
        cu: list[int],
        ctx: list[int],
        tables: list[list[int]],
        logits_rows: list[int],
    ) -> torch.Tensor:
        """Run a prefill step: tokens ``ids`` of ``len(ctx)`` sequences packed at ``cu``
        (``[0, ..., len(ids)]``); returns the logits of ``logits_rows``."""
        n, seqs = len(ids), len(ctx)
        b = self.bucket(n)
        self._write_tokens(ids, pos, slots)
        host = self.inputs.host
        rows = host("logits_indices")
        rows[: len(logits_rows)] = torch.tensor(logits_rows, dtype=torch.int64)
        rows[len(logits_rows) :] = 0  # a bigger bucket's rows may be past this one's end
        host("cu_seqlens_q")[: seqs + 1] = torch.tensor(cu)
        host("cu_seqlens_q")[seqs + 1 : -1] = n
        host("context_lens")[:seqs] = torch.tensor(ctx)
        host("context_lens")[seqs:-1] = 0
        _write_tables(host("block_tables"), tables)
        self._sink(n, b)
        self.inputs.upload()
        return self.run(b)[: len(logits_rows)]


def _write_tables(host: torch.Tensor, tables: list[list[int]]) -> None:
    """Rows of ``tables`` into the top-left of ``host`` (entries past a row's end are
    never read: context lengths bound them)."""
    if tables:
        flat, width = flat_rows(tables)
        host[: len(tables), :width] = torch.tensor(flat, dtype=torch.int32).view(-1, width)
