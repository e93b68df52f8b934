"""Batched token sampling on the logits' device.

Order and semantics follow Hugging Face ``generate`` so greedy and seeded runs can be
compared with it: repetition penalty (over prompt + output) -> temperature -> top-k ->
top-p -> sample; temperature 0 rows take the argmax of the penalized logits.

Sampling uses the exponential-race trick, ``argmax(p / q)`` with ``q ~ Exp(1)``, which
draws exactly from ``p`` and lets each seeded request draw its noise from its own
``torch.Generator`` — so a seeded request gives the same tokens whatever it is batched
with, and the whole batch is still picked with one argmax.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as Seq
from dataclasses import dataclass

import torch

from engine.request import Sequence

__all__ = [
    "SAMPLING_FAILED",
    "Sampler",
    "SamplingBatch",
    "apply_repetition_penalty",
    "apply_top_k_top_p",
    "sample",
]

log = logging.getLogger(__name__)

# The token a Sampler reports for a row whose sampling raised (never a real token id).
SAMPLING_FAILED = -1


@dataclass
class SamplingBatch:
    """Per-row sampling parameters for one step, as tensors on the logits' device.

    ``None`` fields are disabled for every row (a fast path).
    """

    temperatures: torch.Tensor  # [S] float32, 0 = greedy
    all_greedy: bool
    top_ks: torch.Tensor | None = None  # [S] int64, vocab size = disabled
    top_ps: torch.Tensor | None = None  # [S] float32, 1 = disabled
    repetition_penalties: torch.Tensor | None = None  # [S] float32, 1 = disabled
    seen_mask: torch.Tensor | None = None  # [S, V] bool: token in prompt or output
    generators: Seq[torch.Generator | None] = ()


def apply_repetition_penalty(
    logits: torch.Tensor, seen_mask: torch.Tensor, penalties: torch.Tensor
) -> torch.Tensor:
    """CTRL penalty: seen tokens' positive logits / p, negative logits * p. [S, V]."""
    p = penalties.to(logits.dtype).unsqueeze(1)
    penalized = torch.where(logits > 0, logits / p, logits * p)
    return torch.where(seen_mask, penalized, logits)


def apply_top_k_top_p(
    logits: torch.Tensor, top_ks: torch.Tensor | None, top_ps: torch.Tensor | None
) -> torch.Tensor:
    """Set logits outside each row's top-k and then top-p nucleus to -inf. [S, V].

    Ties at the k-th value are kept (as Hugging Face does); the most likely token always
    survives top-p.
    """
    if top_ks is None and top_ps is None:
        return logits
    vocab = logits.shape[-1]
    sorted_logits, order = logits.sort(dim=-1, descending=False)  # [S, V] ascending
    if top_ks is not None:
        kth_pos = (vocab - top_ks.clamp(1, vocab)).unsqueeze(1)  # [S, 1]
        kth = sorted_logits.gather(1, kth_pos)
        sorted_logits = sorted_logits.masked_fill(sorted_logits < kth, float("-inf"))
    if top_ps is not None:
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cum <= (1.0 - top_ps.to(cum.dtype)).unsqueeze(1)
        drop[:, -1] = False
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(1, order, sorted_logits)


def sample(logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
    """Pick one token per row of ``logits`` [S, V] (float32). Returns [S] int64."""
    if batch.repetition_penalties is not None and batch.seen_mask is not None:
        logits = apply_repetition_penalty(logits, batch.seen_mask, batch.repetition_penalties)
    greedy_tokens = logits.argmax(dim=-1)
    if batch.all_greedy:
        return greedy_tokens
    temps = batch.temperatures
    is_greedy = temps == 0
    scaled = logits / torch.where(is_greedy, torch.ones_like(temps), temps).unsqueeze(1)
    scaled = apply_top_k_top_p(scaled, batch.top_ks, batch.top_ps)
    probs = scaled.softmax(dim=-1)
    noise = torch.empty_like(probs)
    gens = list(batch.generators) or [None] * probs.shape[0]
    unseeded = [i for i, g in enumerate(gens) if g is None]
    if unseeded:
        noise.exponential_()
    for i, g in enumerate(gens):
        if g is not None:
            noise[i].exponential_(generator=g)
    # An exact 0 draw would make a masked token's 0/0 a NaN that argmax picks.
    noise.clamp_(min=torch.finfo(noise.dtype).tiny)
    sampled = (probs / noise).argmax(dim=-1)
    return torch.where(is_greedy, greedy_tokens, sampled)


class Sampler:
    """Builds ``SamplingBatch`` from sequences and keeps their per-request device state."""

    def __init__(self, vocab_size: int, device: torch.device) -> None:
        self.vocab_size = vocab_size
        self.device = device
        self._fallback_logged: set[type[BaseException]] = set()

    def _upload(self, values: list[float] | list[int], dtype: torch.dtype) -> torch.Tensor:
        """``values`` on the device without waiting for it: a copy from pageable memory
        would block the host until the device's queued work is done, and with it the
        next step the engine queues ahead (``LLMEngine.step``)."""
        host = torch.tensor(values, dtype=dtype)
        if self.device.type != "cuda":
            return host
        return host.pin_memory().to(self.device, non_blocking=True)

    def prepare(self, seqs: list[Sequence]) -> SamplingBatch:
        """Gather the parameters of the sequences sampling this step, in row order."""
        params = [s.params for s in seqs]
        temps = self._upload([p.temperature for p in params], torch.float32)
        batch = SamplingBatch(temperatures=temps, all_greedy=all(p.greedy for p in params))
        if any(p.repetition_penalty != 1.0 for p in params):
            batch.repetition_penalties = self._upload(
                [p.repetition_penalty for p in params], torch.float32
            )
            batch.seen_mask = torch.stack([self._seen_mask(s) for s in seqs])
        if batch.all_greedy:
            return batch
        sampling = [p for p in params if not p.greedy]
        vocab = self.vocab_size
        # Clamped on the host: k >= vocab keeps everything, and a client's "no limit"
        # (2**64) would not fit the int64 tensor.
        if any(0 < p.top_k < vocab for p in sampling):
            batch.top_ks = self._upload(
                [min(p.top_k, vocab) if p.top_k > 0 else vocab for p in params], torch.int64
            )
        if any(p.top_p < 1.0 for p in sampling):
            batch.top_ps = self._upload([p.top_p for p in params], torch.float32)
        batch.generators = [self._generator(s) for s in seqs]
        return batch

    def _generator(self, seq: Sequence) -> torch.Generator | None:
        if seq.params.seed is None or seq.params.greedy:
            return None
        if seq.generator is None:
            seq.generator = torch.Generator(device=self.device)
            seq.generator.manual_seed(seq.params.seed)
        return seq.generator

    def _seen_mask(self, seq: Sequence) -> torch.Tensor:
        if seq.seen_mask is None:
            mask = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
            ids = self._upload(seq.token_ids, torch.int64)
            mask[ids.clamp(0, self.vocab_size - 1)] = True
            seq.seen_mask = mask
        return seq.seen_mask

    def record(self, seqs: list[Sequence], tokens: torch.Tensor) -> None:
        """Mark freshly sampled tokens as seen for the repetition penalty."""
        for i, seq in enumerate(seqs):
            if seq.seen_mask is not None:
                seq.seen_mask.index_fill_(0, tokens[i : i + 1], True)

    def __call__(self, logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        """One token per row of ``logits`` [S, V]; [S] int64.

        A row whose sampling raises gets ``SAMPLING_FAILED`` and its sequence's
        ``extra["sampling_error"]``; the other rows are sampled as usual, so one request's
        parameters can never fail the whole batch (and with it the engine).
        """
        if all(s.params.greedy and s.params.repetition_penalty == 1.0 for s in seqs):
            return logits.argmax(dim=-1)  # the common greedy step: no per-row tensors
        # Seeded rows' generators as they were: a batch that fails after drawing noise
        # must not leave them advanced, or the rows sampled again one by one would draw
        # other tokens than the same request alone (its seed's promise).
        drawn = [(s, None if s.generator is None else s.generator.get_state())
                 for s in seqs if s.params.seed is not None]  # fmt: skip
        try:
            tokens = sample(logits, self.prepare(seqs))
        except Exception as exc:  # params are validated: defence in depth, so not fast
            if type(exc) not in self._fallback_logged:  # once per kind, not every step
                self._fallback_logged.add(type(exc))
                log.warning("batched sampling failed; sampling rows one by one", exc_info=exc)
            for seq, state in drawn:
                if state is None:
                    seq.generator = None  # made (and maybe drawn from) by this batch
                elif seq.generator is not None:
                    seq.generator.set_state(state)
            return self._sample_rows_alone(logits, seqs)
        self.record(seqs, tokens)
        return tokens

    def _sample_rows_alone(self, logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        # Row by row gives the same tokens: a seeded row draws its noise from its own
        # generator, and every other step is per row.
        out: list[int] = []
        for i, seq in enumerate(seqs):
            try:
                token = sample(logits[i : i + 1], self.prepare([seq]))
                self.record([seq], token)
                out.append(int(token[0]))
            except Exception as exc:
                log.exception("sampling failed for request %s", seq.request_id)
                seq.extra["sampling_error"] = exc
                out.append(SAMPLING_FAILED)
        return torch.tensor(out, dtype=torch.int64, device=logits.device)
