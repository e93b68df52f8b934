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


def _process(
    scores: torch.Tensor, cur_len: int, max_length: torch.Tensor, forced_bos: torch.Tensor,
    cfg: SearchConfig,
) -> torch.Tensor:
    """Logits processors on [rows, V]; ``max_length`` / ``forced_bos`` are per row."""
    if cfg.bad_ids:
        scores[:, list(cfg.bad_ids)] = float("-inf")
    if cur_len == 1:
        rows = forced_bos >= 0
        if bool(rows.any()):
            scores[rows] = float("-inf")
            scores[rows, forced_bos[rows]] = 0.0
    if cfg.forced_eos_id is not None:
        rows = max_length - 1 == cur_len
        if bool(rows.any()):
            scores[rows] = float("-inf")
            scores[rows, cfg.forced_eos_id] = 0.0
    return scores


def greedy_search(
    decoder: Decoder, max_new_tokens: torch.Tensor, forced_bos: torch.Tensor, cfg: SearchConfig
) -> list[list[int]]:
    """Argmax decoding of B sentences (one decoder row each).

    Args:
        decoder: the model bound to the batch's decoder state.
        max_new_tokens: [B] int64 limit per sentence (on the decoder's device).
        forced_bos: [B] int64 token forced first per sentence, -1 for none.
        cfg: decoding rules.

    Returns:
        Generated ids of each sentence (EOS included when it was generated).
    """
    device = max_new_tokens.device
    total = int(max_new_tokens.shape[0])
    results: list[list[int]] = [[] for _ in range(total)]
    active = list(range(total))
    max_length = max_new_tokens + 1  # decoder length incl. the start token, as in HF
    eos = torch.tensor(cfg.eos_ids, device=device)
    history = torch.empty((total, int(max_new_tokens.max()) if total else 0),
                          dtype=torch.int64, device=device)
    tokens = torch.full((total,), cfg.decoder_start_id, dtype=torch.int64, device=device)
    step = 0
    while active:
        scores = _process(decoder.step(tokens), step + 1, max_length, forced_bos, cfg)
        nxt = scores.argmax(dim=-1)
        history[:, step] = nxt
        done = (torch.isin(nxt, eos) | (max_length <= step + 2)).cpu()
        step += 1
        if bool(done.any()):
            finished = history[:, :step].cpu().tolist()
            keep = [i for i, d in enumerate(done.tolist()) if not d]
            for i, d in enumerate(done.tolist()):
                if d:
                    results[active[i]] = finished[i]
            active = [active[i] for i in keep]
            if not active:
                break
            idx = torch.tensor(keep, device=device)
            decoder.keep(idx)
            history, nxt, max_length, forced_bos = _select(idx, history, nxt, max_length,
                                                           forced_bos)
        tokens = nxt
    return results


def beam_search(
    decoder: Decoder, max_new_tokens: torch.Tensor, forced_bos: torch.Tensor, cfg: SearchConfig
) -> list[list[int]]:
    """Beam search of B sentences with ``cfg.beam_size`` decoder rows each.

    Arguments and result as :func:`greedy_search`; the result is each sentence's best
    finished hypothesis.
    """
    k = cfg.beam_size
    device = max_new_tokens.device
    total = int(max_new_tokens.shape[0])
    results: list[list[int]] = [[] for _ in range(total)]
    active = list(range(total))
    max_length = max_new_tokens + 1  # per sentence, incl. the start token
    width = int(max_length.max()) if total else 1
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
        rows_max = max_length.repeat_interleave(k)
        logp = torch.log_softmax(decoder.step(running[:, :, cur_len - 1].reshape(-1)), dim=-1)
        logp = _process(logp, cur_len, rows_max, forced_bos.repeat_interleave(k), cfg)
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
            powers = [float(m - 1) ** cfg.length_penalty for m in max_length.tolist()]
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
            (running, running_scores, seqs, scores, lens, finished, improvable, max_length,
             forced_bos) = _select(idx, running, running_scores, seqs, scores, lens, finished,
                                   improvable, max_length, forced_bos)
    return results


def _select(idx: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows ``idx`` of each tensor (the sentences that stay in the batch)."""
    return tuple(t.index_select(0, idx) for t in tensors)
