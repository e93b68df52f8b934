"""Greedy and beam search over a batch of sentences, with ``transformers`` semantics.

Both follow ``GenerationMixin`` (transformers 5) step for step so that the same logits give
the same tokens: greedy takes the argmax of the processed logits; beam search is a port of
the vectorised ``_beam_search`` (top ``2 * beams`` candidates from log-softmax + running
scores, a hypothesis score of ``sum log p / generated_len ** length_penalty``, the same
early-stopping heuristic for ``early_stopping`` True / False / ``"never"``). Logits
processors applied: single-token bad words (-inf), the forced first token (M2M100 / NLLB
target language) and the forced EOS at the length limit, in ``transformers``' order.

Two differences, neither of which changes any sentence's result: a sentence leaves the
batch as soon as its result is final (``transformers`` keeps computing it until the whole
batch is done), and each sentence may have its own length limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

__all__ = ["Decoder", "SearchConfig", "beam_search", "greedy_search"]

_NEG = -1.0e9  # transformers' "impossible" score


class Decoder(Protocol):
    """The model side of a search: one step for every row, and row bookkeeping."""

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [rows] -> float32 logits [rows, vocab]."""

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues old row ``rows[i]`` (beam search)."""

    def keep(self, sentences: torch.Tensor) -> None:
        """Keep only these sentences (increasing indices into the current batch)."""


@dataclass(frozen=True)
class SearchConfig:
    """Decoding rules (from the checkpoint's generation config) and the beam count."""

    beam_size: int
    decoder_start_id: int
    pad_id: int
    eos_ids: tuple[int, ...]
    bad_ids: tuple[int, ...] = ()
    forced_eos_id: int | None = None
    length_penalty: float = 1.0
    early_stopping: bool | Literal["never"] = False


class _Processors:
    """Logits processors on [rows, V] scores, in place; decisions made from host-side lists
    so the decode loop does not stall on a GPU sync per step."""

    def __init__(self, cfg: SearchConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.bad = (
            torch.tensor(cfg.bad_ids, dtype=torch.int64, device=device) if cfg.bad_ids else None
        )

    def __call__(
        self,
        scores: torch.Tensor,
        cur_len: int,
        max_length: Sequence[int],
        forced_bos: Sequence[int],
    ) -> torch.Tensor:
        """``max_length`` / ``forced_bos`` are per row (host lists)."""
        if self.bad is not None:
            scores.index_fill_(1, self.bad, float("-inf"))
        if cur_len == 1:
            self._force(scores, [(i, f) for i, f in enumerate(forced_bos) if f >= 0])
        eos = self.cfg.forced_eos_id
        if eos is not None:
            self._force(scores, [(i, eos) for i, m in enumerate(max_length) if m - 1 == cur_len])
        return scores

    def _force(self, scores: torch.Tensor, rows: list[tuple[int, int]]) -> None:
        if rows:
            idx = torch.tensor(rows, dtype=torch.int64).to(self.device)
            scores[idx[:, 0]] = float("-inf")
            scores[idx[:, 0], idx[:, 1]] = 0.0


def greedy_search(
    decoder: Decoder,
    max_new_tokens: Sequence[int],
    forced_bos: Sequence[int],
    cfg: SearchConfig,
    device: torch.device,
) -> list[list[int]]:
    """Argmax decoding of B sentences (one decoder row each).

    Args:
        decoder: the model bound to the batch's decoder state.
        max_new_tokens: limit per sentence (>= 1).
        forced_bos: token forced first per sentence, -1 for none.
        cfg: decoding rules.
        device: the decoder's device.

    Returns:
        Generated ids of each sentence (EOS included when it was generated).
    """
    total = len(max_new_tokens)
    results: list[list[int]] = [[] for _ in range(total)]
    active = list(range(total))
    max_length = [m + 1 for m in max_new_tokens]  # decoder length incl. the start token (HF)
    forced = list(forced_bos)
    at_limit = torch.tensor(max_length, device=device)
    process = _Processors(cfg, device)
    eos = torch.tensor(cfg.eos_ids, device=device)
    history = torch.empty((total, max(max_new_tokens, default=0)), dtype=torch.int64, device=device)
    tokens = torch.full((total,), cfg.decoder_start_id, dtype=torch.int64, device=device)
    step = 0
    while active:
        scores = process(decoder.step(tokens), step + 1, max_length, forced)
        nxt = scores.argmax(dim=-1)
        history[:, step] = nxt
        done = (torch.isin(nxt, eos) | (at_limit <= step + 2)).tolist()  # the one sync
        step += 1
        if any(done):
            finished = history[:, :step].tolist()
            keep = [i for i, d in enumerate(done) if not d]
            for i, d in enumerate(done):
                if d:
                    results[active[i]] = finished[i]
            active = [active[i] for i in keep]
            if not active:
                break
            idx = torch.tensor(keep, device=device)
            decoder.keep(idx)
            history, nxt, at_limit = _select(idx, history, nxt, at_limit)
            max_length, forced = [max_length[i] for i in keep], [forced[i] for i in keep]
        tokens = nxt
    return results


def beam_search(
    decoder: Decoder,
    max_new_tokens: Sequence[int],
    forced_bos: Sequence[int],
    cfg: SearchConfig,
    device: torch.device,
) -> list[list[int]]:
    """Beam search of B sentences with ``cfg.beam_size`` decoder rows each.

    Arguments and result as :func:`greedy_search`; the result is each sentence's best
    finished hypothesis.
    """
    k = cfg.beam_size
    total = len(max_new_tokens)
    results: list[list[int]] = [[] for _ in range(total)]
    active = list(range(total))
    lengths = [m + 1 for m in max_new_tokens]  # per sentence, incl. the start token (HF)
    forced = list(forced_bos)
    max_length = torch.tensor(lengths, device=device)
    width = max(lengths, default=1)
    process = _Processors(cfg, device)
    eos = torch.tensor(cfg.eos_ids, device=device)
    keep_k = max(2, 1 + len(cfg.eos_ids)) * k
    top_mask = torch.arange(keep_k, device=device) < k
    running = torch.full((total, k, width), cfg.pad_id, dtype=torch.int64, device=device)
    running[:, :, 0] = cfg.decoder_start_id
    running_scores = torch.zeros((total, k), device=device)
    running_scores[:, 1:] = _NEG
    seqs, scores = running.clone(), torch.full((total, k), _NEG, device=device)
    lens = torch.ones((total, k), dtype=torch.int64, device=device)
    finished = torch.zeros((total, k), dtype=torch.bool, device=device)
    improvable = torch.ones((total, 1), dtype=torch.bool, device=device)
    cur_len = 1
    while active:
        b = len(active)
        logp = torch.log_softmax(decoder.step(running[:, :, cur_len - 1].reshape(-1)), dim=-1)
        logp = process(
            logp,
            cur_len,
            [m for m in lengths for _ in range(k)],
            [f for f in forced for _ in range(k)],
        )
        vocab = logp.shape[-1]
        logp = (logp.view(b, k, vocab) + running_scores[:, :, None]).view(b, k * vocab)
        # c. top-K continuations over all beams
        top_logp, top_idx = torch.topk(logp, keep_k)
        parent = top_idx // vocab
        top_seqs = torch.take_along_dim(running, parent[:, :, None], dim=1)
        top_seqs[:, :, cur_len] = top_idx % vocab
        # d. which candidates end here (EOS or the length limit)
        hits = torch.isin(top_seqs[:, :, cur_len], eos) | (max_length[:, None] <= cur_len + 1)
        # e. the best K unfinished candidates keep running
        run_logp = top_logp + hits.to(torch.float32) * _NEG
        nxt = torch.topk(run_logp, k)[1]
        running = torch.take_along_dim(top_seqs, nxt[:, :, None], dim=1)
        running_scores = torch.take_along_dim(run_logp, nxt, dim=1)
        offsets = torch.arange(b, device=device)[:, None] * k
        rows = torch.take_along_dim(parent, nxt, dim=1) + offsets
        # f. finished candidates among the top K enter the hypotheses if they score better
        just_done = hits & top_mask[None, :]
        cand = top_logp / ((cur_len + 1 - 1) ** cfg.length_penalty)
        full = finished.all(dim=-1, keepdim=True) & (cfg.early_stopping is True)
        cand = cand + full.to(torch.float32) * _NEG
        cand = cand + (~improvable).to(torch.float32) * _NEG
        cand = cand + (~just_done) * _NEG
        best = torch.topk(torch.cat((scores, cand), dim=1), k)[1]
        seqs = torch.take_along_dim(torch.cat((seqs, top_seqs), dim=1), best[:, :, None], dim=1)
        scores = torch.take_along_dim(torch.cat((scores, cand), dim=1), best, dim=1)
        cand_lens = torch.full_like(hits, cur_len + 1, dtype=torch.int64)
        lens = torch.take_along_dim(torch.cat((lens, cand_lens), dim=1), best, dim=1)
        finished = torch.take_along_dim(torch.cat((finished, just_done), dim=1), best, dim=1)
        # g. caches follow their beams; can any sentence still improve?
        decoder.reorder(rows.reshape(-1))
        cur_len += 1
        if cfg.early_stopping == "never" and cfg.length_penalty > 0.0:
            # Python float powers, as transformers computes them (bit-identical scores).
            powers = [float(m - 1) ** cfg.length_penalty for m in lengths]
            best_running = running_scores[:, :1] / torch.tensor(powers, device=device)[:, None]
        else:
            best_running = running_scores[:, :1] / ((cur_len - 1) ** cfg.length_penalty)
        worst = torch.where(finished, torch.min(scores, dim=1, keepdim=True)[0], _NEG)
        improvable = improvable & torch.any(best_running > worst, dim=-1, keepdim=True)
        done = ~improvable[:, 0] | hits.all(dim=-1)
        if cfg.early_stopping is True:
            done |= finished.all(dim=-1)
        done_list = done.tolist()
        if any(done_list):
            best_seq, best_len = seqs[:, 0].cpu().tolist(), lens[:, 0].cpu().tolist()
            keep = [i for i, d in enumerate(done_list) if not d]
            for i, d in enumerate(done_list):
                if d:
                    results[active[i]] = best_seq[i][1 : best_len[i]]
            active = [active[i] for i in keep]
            if not active:
                break
            idx = torch.tensor(keep, device=device)
            decoder.keep(idx)
            (running, running_scores, seqs, scores, lens, finished, improvable, max_length) = (
                _select(
                    idx,
                    running,
                    running_scores,
                    seqs,
                    scores,
                    lens,
                    finished,
                    improvable,
                    max_length,
                )
            )
            lengths, forced = [lengths[i] for i in keep], [forced[i] for i in keep]
    return results


def _select(idx: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows ``idx`` of each tensor (the sentences that stay in the batch)."""
    return tuple(t.index_select(0, idx) for t in tensors)
