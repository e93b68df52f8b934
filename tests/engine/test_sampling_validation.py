"""Hostile sampling values: rejected per request with InvalidRequestError (never an
OverflowError or a NaN row), the sampler's own defences, and botkit's settings bounds."""

from __future__ import annotations

import logging
import math

import pytest
import torch

import engine.sampler
from engine import sampling
from engine.request import Sequence
from engine.request_errors import InvalidRequestError
from engine.sampler import SAMPLING_FAILED, Sampler, SamplingBatch
from engine.sampling import SamplingParams

V = 50
HUGE = 10**400  # an int no float holds: math.isfinite() raises OverflowError on it
TOO_BIG_TO_PRINT = 10**5000  # past Python's int -> str digit limit


def seq(rid: str, params: SamplingParams, tokens: tuple[int, ...] = (1, 2, 3)) -> Sequence:
    return Sequence(rid, list(tokens), params, 10**6)


def logits(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize(
    "value", [HUGE, -HUGE, TOO_BIG_TO_PRINT], ids=["huge", "-huge", "unprintable"]
)
@pytest.mark.parametrize("field", ["temperature", "top_p", "repetition_penalty"])
def test_huge_ints_are_invalid_requests(field: str, value: int) -> None:
    with pytest.raises(InvalidRequestError, match=field):
        SamplingParams(**{field: value})  # type: ignore[arg-type]


REJECTED = [
    {"temperature": 1e-39},  # float32 logits / t overflow to inf, the softmax to NaN
    {"temperature": 0.009},
    {"temperature": 100.5},
    {"repetition_penalty": 1e-50},  # 0 in float32: a division by zero
    {"repetition_penalty": 0.009},
    {"repetition_penalty": 1e39},  # inf in float32: 0 * inf = NaN
    {"repetition_penalty": 101.0},
    # Error messages must not choke on printing the value either.
    {"max_new_tokens": -TOO_BIG_TO_PRINT},
    {"seed": TOO_BIG_TO_PRINT},
    {"stop_token_ids": (-TOO_BIG_TO_PRINT,)},
]


@pytest.mark.parametrize(
    "kwargs", REJECTED, ids=[f"{next(iter(k))}{i}" for i, k in enumerate(REJECTED)]
)
def test_values_that_break_float32_math_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidRequestError, match=next(iter(kwargs))):
        SamplingParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 0},
        {"temperature": 0.01},
        {"temperature": 100},
        {"repetition_penalty": 0.01},
        {"repetition_penalty": 100.0},
        {"top_k": 2**64},  # "no limit", as some clients send it
        {"max_new_tokens": HUGE},  # the context length caps it
    ],
    ids=repr,
)
def test_bounds_themselves_are_accepted(kwargs: dict[str, float]) -> None:
    SamplingParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("temperature", "penalty", "best"),
    [(0.01, 1.0, 2), (0, 100.0, 3), (0.01, 0.01, 2), (0, 0.01, 2)],
)
def test_extreme_accepted_values_sample_the_best_token(
    temperature: float, penalty: float, best: int
) -> None:
    """At the bounds the float32 math stays finite: never a NaN row (whose argmax is 0)."""
    x = torch.tensor([[0.0, 2.0, 30.0, 3.0]])  # token 0 (logit exactly 0) and 2 are seen
    sampler = Sampler(4, torch.device("cpu"))
    p = SamplingParams(temperature=temperature, repetition_penalty=penalty, seed=1)
    # A fresh sequence each draw: the sampler marks what it picked as seen.
    assert [int(sampler(x, [seq(f"s{i}", p, (0, 2))])[0]) for i in range(5)] == [best] * 5


def test_huge_top_k_means_no_limit() -> None:
    """k >= vocabulary is clamped on the host (it used to overflow the int64 tensor)."""
    x = logits(1)
    draws = {}
    for k in (0, V, 2**64):
        sampler = Sampler(V, torch.device("cpu"))
        s = seq("k", SamplingParams(temperature=1.0, top_k=k, seed=11))
        draws[k] = [int(sampler(x, [s])[0]) for _ in range(10)]
    assert draws[2**64] == draws[0] == draws[V]


def test_a_row_whose_sampling_fails_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Defence in depth: a value that slipped past validation fails its own row only,
    and the fallback to row-by-row sampling is logged (once per kind of error)."""
    good = [SamplingParams(temperature=0.8, seed=5), SamplingParams(temperature=1.0, seed=6)]
    bad = SamplingParams(temperature=0.7, seed=7)
    object.__setattr__(bad, "temperature", HUGE)  # what validation now refuses
    x = logits(3, seed=4)
    alone = [
        int(Sampler(V, torch.device("cpu"))(x[i : i + 1], [seq(f"a{i}", p)])[0])
        for i, p in zip((0, 2), good, strict=True)
    ]
    seqs = [seq("g0", good[0]), seq("bad", bad), seq("g1", good[1])]
    sampler = Sampler(V, torch.device("cpu"))
    with caplog.at_level(logging.WARNING, logger="engine.sampler"):
        tokens = sampler(x, seqs).tolist()
        sampler(x, [seq("g2", good[0]), seq("bad2", bad)])
    fallbacks = [r for r in caplog.records if "sampling rows one by one" in r.getMessage()]
    assert len(fallbacks) == 1
    assert tokens[1] == SAMPLING_FAILED
    assert isinstance(seqs[1].extra["sampling_error"], Exception)
    assert [tokens[0], tokens[2]] == alone  # seeded rows draw what they draw alone


def test_botkit_engine_settings_repeat_the_engine_bounds() -> None:
    """botkit cannot import the engine at import time, so it repeats the bounds."""
    from botkit.config import settings as bk

    assert bk.ENGINE_MIN_TEMPERATURE == sampling.MIN_TEMPERATURE
    assert bk.ENGINE_MAX_TEMPERATURE == sampling.MAX_TEMPERATURE
    assert bk.ENGINE_MIN_REPETITION_PENALTY == sampling.MIN_REPETITION_PENALTY
    assert bk.ENGINE_MAX_REPETITION_PENALTY == sampling.MAX_REPETITION_PENALTY


SWEEP = [0.0, 0.005, 0.01, 0.5, 1.0, 1.3, 2.0, 100.0, 100.5, 1e39, math.inf, -1.0, math.nan]


@pytest.mark.parametrize("field", ["temperature", "top_p", "repetition_penalty"])
def test_engine_settings_accept_what_sampling_params_accept(field: str) -> None:
    from pydantic import ValidationError

    from botkit.config.settings import EngineSettings

    for value in SWEEP:
        try:
            SamplingParams(**{field: value})  # type: ignore[arg-type]
            engine_ok = True
        except InvalidRequestError:
            engine_ok = False
        try:
            EngineSettings(**{field: value})  # type: ignore[arg-type]
            settings_ok = True
        except ValidationError:
            settings_ok = False
        assert settings_ok == engine_ok, (field, value, engine_ok)


def test_a_batch_that_fails_after_drawing_leaves_seeded_rows_as_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch raises after the seeded generators drew their noise; the rows sampled
    again one by one must draw what they would have drawn without the failure."""
    params = [SamplingParams(temperature=1.0, seed=21), SamplingParams(temperature=0.9, seed=22)]
    real = engine.sampler.sample

    def drawn_then_failed(x: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        tokens = real(x, batch)
        if x.shape[0] > 1:
            raise RuntimeError("failed after drawing")
        return tokens

    def run(fail_at: int | None) -> list[list[int]]:
        sampler = Sampler(V, torch.device("cpu"))
        seqs = [seq(f"r{i}", p) for i, p in enumerate(params)]
        out: list[list[int]] = [[] for _ in seqs]
        for step in range(4):
            if step == fail_at:
                monkeypatch.setattr(engine.sampler, "sample", drawn_then_failed)
            tokens = sampler(logits(2, seed=step), seqs).tolist()
            monkeypatch.undo()
            for i, token in enumerate(tokens):
                out[i].append(token)
                seqs[i].append_token(token)
        return out

    expected = run(None)
    assert run(0) == expected  # generators made by the failed batch
    assert run(2) == expected  # generators that had drawn before
