"""Sampler math against transformers' logits processors, seeded determinism, validation."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from engine.request import Sequence
from engine.request_errors import InvalidRequestError
from engine.sampler import (
    Sampler,
    SamplingBatch,
    apply_repetition_penalty,
    apply_top_k_top_p,
    sample,
)
from engine.sampling import SamplingParams

V = 50


def logits(rows: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * 3


def seq(rid: str, params: SamplingParams, tokens: list[int] | None = None) -> Sequence:
    return Sequence(rid, tokens or [1, 2, 3], params, 10**6)


@pytest.mark.parametrize("k", [1, 3, 17, V])
@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 1.0])
def test_top_k_top_p_match_transformers(k: int, p: float) -> None:
    x = logits(6, seed=k)
    t = 0.7
    ours = apply_top_k_top_p(x / t, torch.full((6,), k), torch.full((6,), p))
    ref = TemperatureLogitsWarper(t)(None, x.clone())  # type: ignore[arg-type]
    ref = TopKLogitsWarper(k)(None, ref)  # type: ignore[arg-type]
    if p < 1.0:
        ref = TopPLogitsWarper(p)(None, ref)  # type: ignore[arg-type]
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    torch.testing.assert_close(ours[~torch.isinf(ours)], ref[~torch.isinf(ref)])


def test_top_k_keeps_exactly_the_k_largest() -> None:
    x = logits(3)
    out = apply_top_k_top_p(x, torch.tensor([1, 4, V]), None)
    for row, k in zip(range(3), [1, 4, V], strict=True):
        kept = torch.isfinite(out[row]).nonzero().flatten().tolist()
        assert sorted(kept) == sorted(x[row].topk(k).indices.tolist())


def test_top_p_always_keeps_the_most_likely_token() -> None:
    x = torch.tensor([[10.0, 0.0, 0.0, 0.0]])
    out = apply_top_k_top_p(x, None, torch.tensor([1e-6]))
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]


def test_repetition_penalty_matches_transformers() -> None:
    x = logits(2)
    ids = torch.tensor([[1, 5, 5, 9], [0, 2, 3, 49]])
    seen = torch.zeros(2, V, dtype=torch.bool)
    seen.scatter_(1, ids, True)
    ours = apply_repetition_penalty(x, seen, torch.tensor([1.3, 1.3]))
    ref = RepetitionPenaltyLogitsProcessor(1.3)(ids, x.clone())
    torch.testing.assert_close(ours, ref)
    # positive logits shrink, negative ones grow more negative
    assert ours[0, 1] == (x[0, 1] / 1.3 if x[0, 1] > 0 else x[0, 1] * 1.3)


def test_greedy_is_argmax_of_penalized_logits() -> None:
    x = torch.tensor([[5.0, 4.0, 0.0]])
    batch = SamplingBatch(temperatures=torch.zeros(1), all_greedy=True,
                          repetition_penalties=torch.tensor([2.0]),
                          seen_mask=torch.tensor([[True, False, False]]))
    assert sample(x, batch).tolist() == [1]


def draw(params: list[SamplingParams], steps: int = 20, seed_logits: int = 0) -> list[list[int]]:
    sampler = Sampler(V, torch.device("cpu"))
    seqs = [seq(f"s{i}", p) for i, p in enumerate(params)]
    out: list[list[int]] = [[] for _ in seqs]
    for t in range(steps):
        toks = sampler(logits(3, seed=seed_logits + t)[: len(seqs)], seqs)
        for i, tok in enumerate(toks.tolist()):
            out[i].append(tok)
            seqs[i].append_token(tok)
    return out


def test_seeded_request_is_reproducible_whatever_its_batch() -> None:
    p = SamplingParams(temperature=1.0, top_p=0.95, seed=1234)
    alone = draw([p])[0]
    # Same logits row 0, but batched with unseeded and differently-seeded neighbours.
    batched = draw([p, SamplingParams(temperature=0.8), SamplingParams(seed=7, top_k=5)])[0]
    assert alone == batched
    assert draw([SamplingParams(temperature=1.0, top_p=0.95, seed=99)])[0] != alone


def test_sampling_follows_the_distribution() -> None:
    x = torch.log(torch.tensor([[0.6, 0.3, 0.1, 0.0]]).clamp_min(1e-30)).repeat(4000, 1)
    gen = torch.Generator().manual_seed(0)
    batch = SamplingBatch(temperatures=torch.ones(4000), all_greedy=False,
                          generators=[gen] * 4000)
    counts = torch.bincount(sample(x, batch), minlength=4).float() / 4000
    torch.testing.assert_close(counts, torch.tensor([0.6, 0.3, 0.1, 0.0]), atol=0.03, rtol=0)
    # top-k 2 renormalises over the two best tokens and never picks the others
    batch.top_ks = torch.full((4000,), 2)
    counts = torch.bincount(sample(x, batch), minlength=4).float() / 4000
    torch.testing.assert_close(counts, torch.tensor([2 / 3, 1 / 3, 0.0, 0.0]), atol=0.03, rtol=0)


def test_mixed_greedy_and_sampled_rows() -> None:
    x = logits(2)
    batch = SamplingBatch(temperatures=torch.tensor([0.0, 1.0]), all_greedy=False,
                          generators=[None, torch.Generator().manual_seed(3)])
    assert sample(x, batch)[0] == x[0].argmax()


def test_sampler_tracks_seen_tokens_for_the_penalty() -> None:
    sampler = Sampler(V, torch.device("cpu"))
    s = seq("a", SamplingParams(temperature=0, repetition_penalty=10.0), tokens=[3])
    x = torch.full((1, V), -1.0)
    x[0, 3], x[0, 7], x[0, 9] = 2.0, 1.0, 0.5  # 3 is in the prompt: 2.0 -> 0.2
    first = int(sampler(x, [s])[0])
    assert first == 7
    s.append_token(first)
    assert s.seen_mask is not None and bool(s.seen_mask[7])
    assert int(sampler(x, [s])[0]) == 9  # 7 -> 0.1 now


BAD = [
    {"temperature": -0.1}, {"temperature": math.nan}, {"temperature": math.inf},
    {"temperature": "1"}, {"temperature": 1e9}, {"top_p": 0.0}, {"top_p": 1.5},
    {"top_p": math.nan}, {"top_k": -1}, {"top_k": 2.5}, {"top_k": True},
    {"repetition_penalty": 0.0}, {"repetition_penalty": -1.0},
    {"repetition_penalty": math.inf}, {"max_new_tokens": 0}, {"max_new_tokens": True},
    {"max_new_tokens": 1.0}, {"stop": "END"}, {"stop": ("",)}, {"stop": (1,)},
    {"stop": tuple(str(i) for i in range(17))}, {"stop": ("x" * 300,)}, {"seed": -1},
    {"seed": 2**64}, {"seed": "7"}, {"stop_token_ids": (-1,)}, {"ignore_eos": 1},
]


@pytest.mark.parametrize("kwargs", BAD, ids=[str(sorted(b)) + str(i) for i, b in enumerate(BAD)])
def test_invalid_sampling_values_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError, match=next(iter(kwargs))):
        SamplingParams(**kwargs)  # type: ignore[arg-type]


def test_valid_sampling_values_normalise() -> None:
    p = SamplingParams(temperature=0, top_k=5, stop=["a", "b"], seed=0)  # type: ignore[arg-type]
    assert p.greedy and p.stop == ("a", "b")
    hash(p)
