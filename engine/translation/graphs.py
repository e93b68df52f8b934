"""Translation decode steps on static buffers, replayed as CUDA graphs.

A decoder step of a translation model is ~20 small kernels per layer: at the batch sizes
of a chat's sentences the GPU finishes each in a few microseconds, and launching them
from Python (what the first H200 run measured: ~4.7 ms per step of OPUS-MT) is the whole
cost. A CUDA graph replays a captured step as one launch, but replays fixed device
addresses and sizes, so this module keeps every per-batch tensor in a buffer allocated
once per engine:

* the self-attention pools ``[steps * rows, 1, heads, D]`` per layer and the table
  ``[rows, steps]`` (the one-token-page layout of ``engine.translation.state``, with
  ``rows`` as the step stride);
* the cross-attention K/V ``[source_tokens, heads, D]`` per layer;
* the step's tokens and the decoder position, a device scalar the graph advances.

A batch of ``n`` rows runs the graph of the next bucket up (a power of two of sentences,
times the rows per sentence): the extra rows compute garbage that nothing reads. Their
cross-attention sentences have no keys, and one more empty "sink" sentence owns the
unused tail of the key buffer, so the packed boundaries always end at its size. Beam
reordering and finished sentences leaving are copies inside the buffers, so every
captured graph stays valid. Graphs are captured when the engine is built, for the beam
sizes in ``GraphLimits.beams`` (``engine.graph_capture``: never while serving); other
beam sizes, and a bucket whose capture failed, run the same steps eagerly.

Without ``capture`` (the CPU; the tests) the same step runs eagerly on the same
buffers, which is how the bucket, padding and compaction logic is tested without a GPU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from itertools import accumulate

import torch

from engine.graph_capture import capture_checked
from engine.translation.model import Seq2SeqLM
from engine.translation.state import DecodeMeta

__all__ = ["GraphLimits", "StaticDecoding"]

_KV = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class GraphLimits:
    """The largest batch the static buffers hold (bigger ones decode eagerly).

    Attributes:
        rows: decoder rows (sentences x beams).
        steps: generated tokens per sentence.
        source_tokens: packed source tokens of the batch.
        beams: the beam sizes (1: greedy) whose graphs are captured up front.
    """

    rows: int = 64
    steps: int = 128
    source_tokens: int = 4096
    beams: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if min(self.rows, self.steps, self.source_tokens, *self.beams, 1) < 1:
            raise ValueError(f"graph limits must be >= 1, got {self}")


@dataclass
class _Bucket:
    """One graph: ``sentences`` query groups of ``per`` rows, plus the sink."""

    per: int
    sentences: int
    cu_q: torch.Tensor  # [sentences + 2] int32, constant
    cu_k: torch.Tensor  # [sentences + 2] int32, rewritten when the batch changes
    cu_k_version: int = -1
    graph: torch.cuda.CUDAGraph | None = None
    out: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return self.sentences * self.per


@dataclass
class _Batch:
    """Host-side view of the batch being decoded."""

    per: int = 1
    source_lens: list[int] = field(default_factory=list)
    length: int = 0  # decoder tokens cached per row
    version: int = 0  # bumped whenever the source packing changes

    @property
    def rows(self) -> int:
        return len(self.source_lens) * self.per


class StaticDecoding:
    """Static-buffer decoding for one model: ``fits`` a batch, ``begin`` it, then use it
    as the search's ``Decoder`` (``step`` / ``reorder`` / ``keep``).

    Args:
        model: the translation model (its device and dtype size the buffers).
        limits: the buffers' sizes.
        capture: capture CUDA graphs now and replay them (CUDA only); False runs the
            same steps eagerly.
    """

    def __init__(self, model: Seq2SeqLM, limits: GraphLimits, *, capture: bool) -> None:
        c = model.config
        device = next(model.parameters()).device
        if capture and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA model, not {device}")
        self.model, self.limits, self.capture, self.device = model, limits, capture, device
        heads = c.decoder_heads
        dim = c.d_model // heads

        def pair(rows: int, page: tuple[int, ...]) -> _KV:
            shape = (rows, *page, heads, dim)
            return (
                torch.zeros(shape, dtype=c.dtype, device=device),
                torch.zeros(shape, dtype=c.dtype, device=device),
            )

        layers = range(c.decoder_layers)
        self.pools: list[_KV] = [pair(limits.steps * limits.rows, (1,)) for _ in layers]
        self.cross: list[_KV] = [pair(limits.source_tokens, ()) for _ in layers]
        self.table = torch.zeros((limits.rows, limits.steps), dtype=torch.int32, device=device)
        self.tokens = torch.zeros(limits.rows, dtype=torch.int64, device=device)
        self.position = torch.zeros(1, dtype=torch.int64, device=device)
        self.row_index = torch.arange(limits.rows, device=device)
        self._buckets: dict[tuple[int, int], _Bucket] = {}
        self._batch = _Batch()
        if capture:
            self._capture_all()

    @property
    def nbytes(self) -> int:
        """Device memory the buffers and the captured graphs' outputs take."""
        tensors = [t for pair in self.pools + self.cross for t in pair] + [self.table]
        tensors += [b.out for b in self._buckets.values() if b.out is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def fits(self, sentences: int, per: int, source_tokens: int, max_new_tokens: int) -> bool:
        """Whether a batch of this geometry fits the buffers."""
        lim = self.limits
        return (
            sentences * per <= lim.rows
            and source_tokens <= lim.source_tokens
            and max_new_tokens <= lim.steps  # one decoder step per generated token
        )

    def begin(self, cross_kv: list[_KV], source_lens: list[int], per: int) -> None:
        """Start a batch: sentence b's ``per`` rows attend to its ``source_lens[b]``
        tokens of ``cross_kv`` (per layer, packed ``[S, heads, D]``)."""
        total = sum(source_lens)
        if not self.fits(len(source_lens), per, total, 0):
            raise ValueError("the batch does not fit the static buffers; check fits() first")
        for (k, v), (sk, sv) in zip(cross_kv, self.cross, strict=True):
            sk[:total].copy_(k)
            sv[:total].copy_(v)
        self._batch = _Batch(per, list(source_lens), 0, self._batch.version + 1)
        self.position.zero_()

    # ------------------------------------------------------------ search.Decoder
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [rows] -> float32 logits [rows, vocab] (a view into a static buffer,
        valid until the next step)."""
        batch = self._batch
        n = tokens.shape[0]
        if n != batch.rows:
            raise ValueError(f"step needs {batch.rows} tokens, got {n}")
        self.model.check_decoder_length(batch.length)
        if batch.length >= self.limits.steps:
            raise ValueError(f"the batch ran past the {self.limits.steps} static steps")
        bucket = self._bucket(batch.per, -(-n // batch.per))
        if bucket.cu_k_version != batch.version:
            bucket.cu_k.copy_(self._cu_k(bucket.sentences))
            bucket.cu_k_version = batch.version
        self.tokens[:n].copy_(tokens)
        if bucket.graph is not None:
            bucket.graph.replay()
            assert bucket.out is not None
            out = bucket.out
        else:
            out = self._forward(bucket)
        batch.length += 1
        return out[:n]

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues the history of old row ``rows[i]`` (beam search)."""
        n = self._batch.rows
        if rows.shape[0] != n:
            raise ValueError(f"reorder needs {n} rows, got {rows.shape[0]}")
        self.table[:n].copy_(self.table.index_select(0, rows))

    def keep(self, sentences: torch.Tensor) -> None:
        """Keep only ``sentences`` (increasing indices into the current batch)."""
        batch = self._batch
        kept = [int(i) for i in sentences.tolist()]
        rows = sentences[:, None] * batch.per + torch.arange(batch.per, device=self.device)
        self.table[: rows.numel()].copy_(self.table.index_select(0, rows.reshape(-1)))
        starts = [0, *accumulate(batch.source_lens)]
        tokens = [t for i in kept for t in range(starts[i], starts[i + 1])]
        index = torch.tensor(tokens, dtype=torch.int64).to(self.device, non_blocking=True)
        for sk, sv in self.cross:
            sk[: len(tokens)].copy_(sk.index_select(0, index))
            sv[: len(tokens)].copy_(sv.index_select(0, index))
        batch.source_lens = [batch.source_lens[i] for i in kept]
        batch.version += 1

    # ------------------------------------------------------------ internals
    def _cu_k(self, sentences: int) -> torch.Tensor:
        """Key boundaries of a bucket: the batch's sentences, empty padding sentences,
        then the sink owning the rest of the buffer (so the last boundary is its size)."""
        ends = list(accumulate(self._batch.source_lens))
        total = ends[-1] if ends else 0
        values = [0, *ends] + [total] * (sentences - len(ends)) + [self.limits.source_tokens]
        return torch.tensor(values, dtype=torch.int32)

    def graphed(self, sentences: int, per: int) -> bool:
        """Whether a batch of ``sentences`` x ``per`` rows (that ``fits``) replays a
        captured graph rather than running its steps eagerly."""
        if sentences * per > self.limits.rows:
            return False
        bucket = self._buckets.get((per, self._bucket_size(per, sentences)))
        return bucket is not None and bucket.graph is not None

    def _bucket_size(self, per: int, sentences: int) -> int:
        size = 1
        while size < sentences:
            size *= 2
        return min(size, self.limits.rows // per)

    def _bucket(self, per: int, sentences: int) -> _Bucket:
        size = self._bucket_size(per, sentences)
        bucket = self._buckets.get((per, size))
        if bucket is None:
            cu_q = [i * per for i in range(size + 1)] + [size * per]
            bucket = _Bucket(
                per=per,
                sentences=size,
                cu_q=torch.tensor(cu_q, dtype=torch.int32, device=self.device),
                cu_k=torch.zeros(size + 2, dtype=torch.int32, device=self.device),
            )
            self._buckets[(per, size)] = bucket
        return bucket

    def _forward(self, bucket: _Bucket) -> torch.Tensor:
        """One step of the bucket's rows, all on the device (what a graph captures)."""
        b, pos = bucket.rows, self.position
        slots = pos * self.limits.rows + self.row_index[:b]
        table = self.table[:b]
        table.index_copy_(1, pos, slots.to(torch.int32)[:, None])
        meta = DecodeMeta(
            slots=slots,
            block_tables=table,
            context_lens=(pos + 1).to(torch.int32).repeat(b),
            cu_seqlens_q=bucket.cu_q,
            cu_seqlens_k=bucket.cu_k,
        )
        x = self.model.decoder_embed(self.tokens[:b], pos.expand(b))
        logits = self.model.decode_forward(x, meta, self.pools, self.cross)
        pos.add_(1)
        return logits

    def _rewind(self) -> None:
        """Back to the batch's position (a step the capture ran advanced it)."""
        self.position.fill_(self._batch.length)

    def _capture_all(self) -> None:
        """Capture every bucket of every beam size in ``limits.beams``, largest first so
        the smaller ones reuse its memory pool, on a dummy batch (sources without keys)."""
        pool = None
        for per in self.limits.beams:
            most = self.limits.rows // per  # the top bucket (see _bucket)
            sizes = [1 << i for i in range(most.bit_length()) if 1 << i < most] + [most]
            for sentences in reversed(sizes if most else []):
                # Sentences without keys, on whatever the buffers hold.
                self._batch = _Batch(per, [0] * sentences, 0, self._batch.version + 1)
                self.position.zero_()
                bucket = self._bucket(per, sentences)
                bucket.cu_k.copy_(self._cu_k(sentences))
                captured = capture_checked(
                    functools.partial(self._forward, bucket),
                    self.device,
                    pool,
                    reset=self._rewind,
                    what=f"translation decoding ({sentences} x {per} rows)",
                )
                if captured is not None:
                    bucket.graph, bucket.out = captured
                    pool = bucket.graph.pool()
        self._batch = _Batch()
