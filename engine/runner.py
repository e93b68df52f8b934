"""Model runner: turns a ``SchedulerOutput`` into tensors, runs the model, samples.

Step layout (the attention-metadata contract): all prefill chunks packed back to back,
then one token per decoding sequence. Pure-decode steps on CUDA replay a CUDA graph
captured for the next bucket size up (1, 2, 4, 8, ...): at batch 1 a 0.5B model has
~14 µs per layer, so kernel-launch overhead, not bandwidth, would otherwise be the wall.
Everything else runs eagerly (always on CPU).

A step's sampled tokens come back as ``SampledTokens``, which reads them to the host only
when asked. That lets the engine launch the next decode step first (``launch_fed``: its
input ids are copied on the device from this step's tokens), so the host's scheduling
and input preparation run while the GPU computes instead of between its steps.

On the CPU a decode step is a chain of matrix-vector products bound by memory bandwidth,
so the runner (1) stores projection weights column-major, the layout MKL streams fastest
(``engine.layers.use_column_major_weights``); (2) runs decode-only steps of Llama-family
models through ``engine.cpu_decode.CpuDecoder``, a lean forward on the same parameters
whose projections can be split over the cores, with the thread count per step chosen
from measured step times (``engine.cpu_threads.DecodeThreads``: split when the cores are
free, one thread when another process holds one); and (3) runs other steps of at most
``cpu_single_thread_tokens`` tokens on one intra-op thread: MKL's matrix-vector product
uses one core anyway, and every multi-threaded small op would only add a fork/join — or,
on a shared machine, wait a scheduler time slice for a preempted worker thread. Larger
(prefill) steps keep all threads for their GEMMs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import torch
from torch import nn

from engine.attention_metadata import AttentionMetadata
from engine.cpu_decode import CpuDecoder
from engine.cpu_threads import DecodeThreads, available_threads
from engine.cuda_graphs import DecodeGraphs, PrefillGraphs
from engine.graph_inputs import flat_rows
from engine.layers import use_column_major_weights
from engine.sampler import Sampler
from engine.scheduler import ScheduledSeq, SchedulerOutput

__all__ = ["ModelRunner", "SampledTokens", "graph_buckets", "prefill_graph_buckets"]

log = logging.getLogger(__name__)

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]


def graph_buckets(max_batch: int) -> list[int]:
    """Powers of two up to the first one >= ``max_batch``."""
    sizes = [1]
    while sizes[-1] < max_batch:
        sizes.append(sizes[-1] * 2)
    return sizes


def prefill_graph_buckets(max_tokens: int) -> list[int]:
    """Token counts 16, 32, 64, ... up to the first one >= ``max_tokens`` (none for 0)."""
    if max_tokens < 1:
        return []
    sizes = [16]
    while sizes[-1] < max_tokens:
        sizes.append(sizes[-1] * 2)
    return sizes


class SampledTokens:
    """One step's sampled token per sampling entry, possibly still being computed.

    On CUDA the copy to the host is queued behind the step and ``result()`` waits for it;
    ``device`` stays readable by later steps without any host round trip.
    """

    def __init__(self, tokens: torch.Tensor | list[int]) -> None:
        self.device: torch.Tensor | None = None
        self._host: list[int] | None = None
        self._copy: torch.Tensor | None = None
        self._ready: torch.cuda.Event | None = None
        if isinstance(tokens, list):
            self._host = tokens
            return
        self.device = tokens
        if tokens.is_cuda:
            # non_blocking to the CPU lands in pinned memory: the copy runs behind the step.
            self._copy = tokens.to("cpu", non_blocking=True)
            self._ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
            self._ready.record()
        else:
            self._copy = tokens

    def result(self) -> list[int]:
        """The tokens as Python ints (waits for the step on CUDA)."""
        if self._host is None:
            assert self._copy is not None
            if self._ready is not None:
                self._ready.synchronize()
            self._host = [int(t) for t in self._copy.tolist()]
        return self._host


# Most sequences one graphed prefill step packs (a burst of new messages).
PREFILL_GRAPH_SEQS = 8

# Steps with at most this many tokens run on one intra-op thread on the CPU (see above).
CPU_SINGLE_THREAD_TOKENS = 8


@contextlib.contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ModelRunner:
    """Runs steps of one model on one device.

    Args:
        model: an engine model (``forward(input_ids, positions, kv_caches, meta)``).
        vocab_size: logits width.
        block_size: tokens per KV block.
        device: where the model and cache live.
        max_num_seqs: largest decode batch (sizes the CUDA-graph buckets).
        max_model_len: longest sequence (sizes graph block tables).
        cpu_single_thread_tokens: on the CPU, steps of at most this many tokens run on one
            intra-op thread (0: never), except decode steps of the lean CPU decoder.
        cpu_decode: run CPU decode-only steps through ``CpuDecoder`` when the model
            supports it (False: the model's own forward, as on CUDA).
        cpu_decode_threads: threads a CPU decode step may split its products over (None:
            torch's intra-op threads, capped at this process's cores; 1: never split).
        prefill_graph_tokens: prefill-only steps of up to this many tokens replay CUDA
            graphs too (0: never); a new message on a cached conversation is one. Graphs
            are captured for 16, 32, ... tokens up to the first power of two that holds it.
    """

    def __init__(self, model: nn.Module, *, vocab_size: int, block_size: int,
                 device: torch.device, max_num_seqs: int, max_model_len: int,
                 cpu_single_thread_tokens: int = CPU_SINGLE_THREAD_TOKENS,
                 cpu_decode: bool = True, cpu_decode_threads: int | None = None,
                 prefill_graph_tokens: int = 256) -> None:
        self.model = model
        self.block_size = block_size
        self.device = device
        self.max_num_seqs = max_num_seqs
        self.max_model_len = max_model_len
        self.kv_caches: KVCaches = []
        self.sampler = Sampler(vocab_size, device)
        self.graphs: DecodeGraphs | None = None
        self.prefill_graphs: PrefillGraphs | None = None
        self.prefill_graph_tokens = prefill_graph_tokens
        cpu = device.type == "cpu"
        self.single_thread_tokens = cpu_single_thread_tokens if cpu else 0
        self.cpu_decoder: CpuDecoder | None = None
        threads = available_threads() if cpu_decode_threads is None else cpu_decode_threads
        self.decode_threads = DecodeThreads(threads if cpu else 1)
        if cpu:
            use_column_major_weights(model)  # before the decoder takes its weight views
            if cpu_decode:
                self.cpu_decoder = CpuDecoder.for_model(model, max_parts=threads)

    def _tensor(self, data: list[int], dtype: torch.dtype) -> torch.Tensor:
        t = torch.tensor(data, dtype=dtype)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    # ------------------------------------------------------------- setup
    @torch.inference_mode()
    def profile_peak_bytes(self, num_tokens: int, num_seqs: int) -> int:
        """Peak activation bytes of a largest step (CUDA only; 0 elsewhere).

        Runs the model without a cache (a fresh prompt of ``num_tokens``) before the KV
        cache exists, so the cache can take what is left.
        """
        if self.device.type != "cuda":
            return 0
        n = max(1, num_tokens)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        ids = torch.zeros(n, dtype=torch.int64, device=self.device)
        pos = torch.arange(n, dtype=torch.int64, device=self.device) % self.max_model_len
        meta = AttentionMetadata(
            slot_mapping=torch.full((n,), -1, dtype=torch.int64, device=self.device),
            num_prefill_tokens=n,
            prefill_cu_seqlens_q=torch.tensor([0, n], dtype=torch.int32, device=self.device),
            prefill_context_lens=torch.tensor([n], dtype=torch.int32, device=self.device),
            logits_indices=torch.full((min(num_seqs, n),), n - 1, dtype=torch.int64,
                                      device=self.device),
        )
        logits = self.model(ids, pos, [], meta)
        logits.softmax(-1).sort(dim=-1)  # the sampler's own peak on the logits
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device) - base
        return int(peak)

    def set_kv_caches(self, kv_caches: KVCaches) -> None:
        self.kv_caches = kv_caches

    def capture_cuda_graphs(self) -> None:
        """Capture decode graphs for every bucket up to ``max_num_seqs``, and prefill
        graphs up to ``prefill_graph_tokens`` (CUDA only).

        A model that cannot be captured (a host sync inside forward) falls back to eager
        with a warning rather than failing the engine.
        """
        if self.device.type != "cuda" or not self.kv_caches:
            return
        try:
            self.use_graphs(capture=True)
        except Exception as exc:  # capture errors come from arbitrary model code
            log.warning("CUDA graph capture failed, running eagerly: %s", exc)
            self.graphs = self.prefill_graphs = None

    def use_graphs(self, *, capture: bool) -> None:
        """Run decode and small prefill steps on static graph inputs, replaying captured
        CUDA graphs when ``capture``; without it (any device) the same steps run eagerly,
        which is how the tests check the padding on the CPU."""
        width = -(-self.max_model_len // self.block_size)
        graphs = DecodeGraphs(self.model, self.kv_caches, self.device,
                              graph_buckets(self.max_num_seqs), width, capture=capture)
        graphs.capture_all()
        self.graphs = graphs
        buckets = prefill_graph_buckets(self.prefill_graph_tokens)
        if buckets:
            # The padding sink's context is its own tokens, up to a whole bucket: its
            # table row must address them even where max_model_len is shorter.
            sink_width = max(width, -(-buckets[-1] // self.block_size))
            prefill = PrefillGraphs(self.model, self.kv_caches, self.device, buckets,
                                    min(PREFILL_GRAPH_SEQS, self.max_num_seqs), sink_width,
                                    capture=capture)  # fmt: skip
            prefill.capture_all()
            self.prefill_graphs = prefill

    # ------------------------------------------------------------- stepping
    def execute(self, out: SchedulerOutput) -> list[int]:
        """Run one step; return one sampled token per ``out.sampling`` entry."""
        return self.launch(out).result()

    @torch.inference_mode()
    def launch(self, out: SchedulerOutput) -> SampledTokens:
        """Start one step; its tokens (one per ``out.sampling`` entry) read when asked."""
        if out.is_empty:
            return SampledTokens([])
        if self.cpu_decoder is not None and not out.prefills:
            return SampledTokens(self._execute_cpu_decode(out))
        if 0 < out.num_batched_tokens <= self.single_thread_tokens:
            with _intra_op_threads(1):
                return SampledTokens(self._execute(out))
        return SampledTokens(self._execute(out))

    def can_feed(self, num_decodes: int) -> bool:
        """Whether a decode step of this many sequences can take its input ids from an
        earlier step's device tokens (``launch_fed``): the graphed decode path only, and
        not where the CPU's lean decoder runs decode steps."""
        return (self.cpu_decoder is None and self.graphs is not None
                and 0 < num_decodes and self.graphs.fits(num_decodes))  # fmt: skip

    @torch.inference_mode()
    def launch_fed(self, out: SchedulerOutput, previous: SampledTokens,
                   rows: list[int]) -> SampledTokens:
        """Start a decode-only step whose sequences' newest tokens are still on the
        device: entry ``i`` of ``out.decodes`` reads ``previous``'s token ``rows[i]``.

        The step is queued behind ``previous`` on the device; nothing waits for it here.
        A failed row of ``previous`` (``SAMPLING_FAILED``) feeds token 0: its sequence
        ends when the engine reads ``previous``, and this step's token for it is dropped.
        """
        assert self.graphs is not None and previous.device is not None
        assert not out.prefills and len(out.decodes) == len(rows)
        tokens = previous.device
        if rows != list(range(len(tokens))):
            tokens = tokens.index_select(0, self._tensor(rows, torch.int64))
        logits = self._decode_graph(out.decodes, fed_ids=tokens.clamp(min=0))
        return SampledTokens(self.sampler(logits, [s.seq for s in out.decodes]))

    def _execute(self, out: SchedulerOutput) -> torch.Tensor | list[int]:
        sampling = out.sampling
        prefill = self.prefill_graphs
        if out.prefills:
            if (prefill is not None and not out.decodes
                    and prefill.fits(len(out.prefills), out.num_batched_tokens)):  # fmt: skip
                logits = self._prefill_graph(out.prefills)
            else:
                logits = self._eager(out)
        elif self.graphs is not None and self.graphs.fits(len(out.decodes)):
            logits = self._decode_graph(out.decodes)
        else:
            logits = self._decode_eager(out.decodes)
        if not sampling:
            return []
        return self.sampler(logits, [s.seq for s in sampling])

    def _execute_cpu_decode(self, out: SchedulerOutput) -> list[int]:
        """A decode-only CPU step on the lean decoder, on the thread count it measures best."""
        assert self.cpu_decoder is not None
        decodes = out.decodes
        rows = [i for i, s in enumerate(decodes) if s.sample]
        threads = self.decode_threads.choose()
        t0 = time.perf_counter()
        with _intra_op_threads(threads):
            logits = self.cpu_decoder.forward(
                [s.seq.token_ids[s.start] for s in decodes], [s.start for s in decodes],
                [s.seq.block_table for s in decodes], self.kv_caches, sample_rows=rows)
            tokens = (self.sampler(logits, [s.seq for s in out.sampling]).tolist()
                      if rows else [])
        self.decode_threads.record(threads, time.perf_counter() - t0)
        return [int(t) for t in tokens]

    def _decode_eager(self, decodes: list[ScheduledSeq]) -> torch.Tensor:
        """A decode-only step: inputs from two small tensors, no gather when all sample."""
        ids, pos, slots, ctx = self._decode_rows(decodes)
        flat, width = flat_rows([s.seq.block_table for s in decodes])
        b = len(decodes)
        longs = self._tensor(ids + pos + slots, torch.int64)
        ints = self._tensor(ctx + flat, torch.int32)
        rows = [i for i, s in enumerate(decodes) if s.sample]
        meta = AttentionMetadata(
            slot_mapping=longs[2 * b :], num_prefill_tokens=0,
            decode_context_lens=ints[:b], decode_block_tables=ints[b:].view(b, width),
            logits_indices=None if len(rows) == b else self._tensor(rows, torch.int64))
        logits: torch.Tensor = self.model(longs[:b], longs[b : 2 * b], self.kv_caches, meta)
        return logits

    def _decode_rows(self, decodes: list[ScheduledSeq], *, with_ids: bool = True
                     ) -> tuple[list[int], list[int], list[int], list[int]]:
        """Input ids (none without ``with_ids``: a fed step's are on the device),
        positions, cache slots and context lengths of decode entries."""
        bs = self.block_size
        ids, pos, slots, ctx = [], [], [], []
        for s in decodes:
            p = s.start
            if with_ids:
                ids.append(s.seq.token_ids[p])
            pos.append(p)
            slots.append(s.seq.block_table[p // bs] * bs + p % bs)
            ctx.append(p + 1)
        return ids, pos, slots, ctx

    def _decode_graph(self, decodes: list[ScheduledSeq],
                      fed_ids: torch.Tensor | None = None) -> torch.Tensor:
        assert self.graphs is not None
        ids, pos, slots, ctx = self._decode_rows(decodes, with_ids=fed_ids is None)
        tables = [s.seq.block_table for s in decodes]
        logits = self.graphs.replay(ids if fed_ids is None else fed_ids, pos, slots, ctx, tables)
        rows = [i for i, s in enumerate(decodes) if s.sample]
        if len(rows) == len(decodes):
            return logits
        return logits[torch.tensor(rows, dtype=torch.int64, device=self.device)]

    def _prefill_graph(self, prefills: list[ScheduledSeq]) -> torch.Tensor:
        """A prefill-only step of at most the largest graphed token count."""
        assert self.prefill_graphs is not None
        bs = self.block_size
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        cu = [0]
        ctx: list[int] = []
        rows: list[int] = []
        for s in prefills:
            table, end = s.seq.block_table, s.start + s.num_tokens
            ids += s.seq.token_ids[s.start : end]
            pos += range(s.start, end)
            slots += [table[p // bs] * bs + p % bs for p in range(s.start, end)]
            cu.append(cu[-1] + s.num_tokens)
            ctx.append(end)
            if s.sample:
                rows.append(cu[-1] - 1)
        tables = [s.seq.block_table for s in prefills]
        return self.prefill_graphs.replay(ids, pos, slots, cu, ctx, tables, rows)

    def _eager(self, out: SchedulerOutput) -> torch.Tensor:
        bs = self.block_size
        ids: list[int] = []
        pos: list[int] = []
        cu = [0]
        logits_idx: list[int] = []
        for s in out.prefills:
            ids.extend(s.seq.token_ids[s.start : s.start + s.num_tokens])
            pos.extend(range(s.start, s.start + s.num_tokens))
            cu.append(cu[-1] + s.num_tokens)
            if s.sample:
                logits_idx.append(cu[-1] - 1)
        n_prefill = cu[-1]
        # Prefill slots: gather from the padded block tables on the device (vectorised;
        # a long prompt chunk is thousands of tokens).
        slots_parts: list[torch.Tensor] = []
        meta = AttentionMetadata(slot_mapping=torch.empty(0), num_prefill_tokens=n_prefill)
        if out.prefills:
            flat, width = flat_rows([s.seq.block_table for s in out.prefills])
            tables = self._tensor(flat, torch.int32).view(-1, width)
            pos_t = self._tensor(pos, torch.int64)
            row_t = torch.repeat_interleave(  # output_size: no device-to-host sync
                torch.arange(len(out.prefills), device=self.device),
                self._tensor([s.num_tokens for s in out.prefills], torch.int64),
                output_size=n_prefill)
            blocks = tables[row_t, pos_t // bs].to(torch.int64)
            slots_parts.append(blocks * bs + pos_t % bs)
            meta.prefill_cu_seqlens_q = self._tensor(cu, torch.int32)
            meta.prefill_context_lens = self._tensor(
                [s.start + s.num_tokens for s in out.prefills], torch.int32)
            meta.prefill_block_tables = tables
        if out.decodes:
            d_ids, d_pos, d_slots, d_ctx = self._decode_rows(out.decodes)
            ids.extend(d_ids)
            pos.extend(d_pos)
            slots_parts.append(self._tensor(d_slots, torch.int64))
            meta.decode_context_lens = self._tensor(d_ctx, torch.int32)
            flat, width = flat_rows([s.seq.block_table for s in out.decodes])
            meta.decode_block_tables = self._tensor(flat, torch.int32).view(-1, width)
            logits_idx.extend(n_prefill + i for i, s in enumerate(out.decodes) if s.sample)
        meta.slot_mapping = torch.cat(slots_parts) if len(slots_parts) > 1 else slots_parts[0]
        meta.logits_indices = self._tensor(logits_idx, torch.int64)
        logits: torch.Tensor = self.model(self._tensor(ids, torch.int64),
                                          self._tensor(pos, torch.int64), self.kv_caches, meta)
        return logits
