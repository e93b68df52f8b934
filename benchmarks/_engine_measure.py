"""Measurements for ``benchmarks/engine.py``: ours and transformers, each time-bounded.

Every function takes a ``Budget``; when it runs out mid-measurement the request is
aborted (ours) or generation is stopped by a stopping criterion (transformers), and the
result carries ``truncated: True`` with rates computed from the tokens actually produced.
Warm-up is timed and reported on its own (``warmup_s``), never inside a rate.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import time
from typing import Any

import torch

from benchmarks._engine_bench import Budget, greedy, intra_op_threads, pct, sync
from engine import AsyncEngine, FinalRecord, LLMEngine, TextDelta
from engine.cpu_worker import CpuWorker
from engine.prompt import Prompt
from engine.translation import AsyncTranslator, TranslationEngine


def _rates(stamps: list[float]) -> dict[str, float]:
    """Decode rates from per-token timestamps: mean, and 1 / median inter-token time
    (robust to another process stealing the CPU for a moment)."""
    if len(stamps) < 2:
        return {"decode_tok_s": float("nan"), "decode_tok_s_median": float("nan")}
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "decode_tok_s": len(gaps) / (stamps[-1] - stamps[0]),
        "decode_tok_s_median": 1.0 / statistics.median(gaps),
    }


# --------------------------------------------------------------------------- ours
def ours_single(
    engine: LLMEngine, prompt: list[int], n: int, budget: Budget | None = None
) -> dict[str, Any]:
    """One request alone: TTFT, decode rate, and the prompt tokens the model computed."""
    before = engine.stats
    rid = f"single-{time.monotonic_ns()}"
    sync(engine.device)
    t0 = time.perf_counter()
    seq = engine.add_request(rid, prompt, greedy(n))
    stamps: list[float] = []
    truncated = False
    while engine.has_unfinished():
        if budget is not None and budget.expired and stamps and not truncated:
            engine.abort_request(rid)
            truncated = True
        for o in engine.step():  # the sampled ids are on the host: the step has synced
            stamps.extend(time.perf_counter() for _ in o.token_ids)
    after = engine.stats
    return {
        "ttft_ms": 1e3 * (stamps[0] - t0) if stamps else float("nan"),
        **_rates(stamps),
        "tokens": len(stamps),
        "cached_tokens": seq.num_cached_tokens,
        "prompt_tokens_computed": after.prompt_tokens_computed - before.prompt_tokens_computed,
        "truncated": truncated,
    }


def ours_batch(
    engine: LLMEngine, prompts: list[list[int]], n: int, budget: Budget | None = None
) -> dict[str, Any]:
    """Offline throughput: everything submitted at once, run to completion (or budget)."""
    tag = time.monotonic_ns()
    ids = [f"batch-{tag}-{i}" for i in range(len(prompts))]
    sync(engine.device)
    t = time.perf_counter()
    for rid, p in zip(ids, prompts, strict=True):
        engine.add_request(rid, p, greedy(n))
    tokens = 0
    truncated = False
    while engine.has_unfinished():
        if budget is not None and budget.expired and not truncated:
            for rid in ids:
                engine.abort_request(rid)
            truncated = True
        tokens += sum(len(o.token_ids) for o in engine.step())
    sync(engine.device)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "output_tok_s": tokens / wall, "tokens": tokens, "truncated": truncated}


# --------------------------------------------------------------------------- transformers
def _stopping(budget: Budget | None) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Deadline(StoppingCriteria):
        def __call__(
            self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
        ) -> torch.Tensor:
            stop = budget is not None and budget.expired
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([Deadline()])


def _stamper() -> tuple[Any, list[float]]:
    from transformers import LogitsProcessor, LogitsProcessorList

    stamps: list[float] = []

    class Stamp(LogitsProcessor):
        """Called once per generated token, right after the forward that produced it."""

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            stamps.append(time.perf_counter())
            return scores

    return LogitsProcessorList([Stamp()]), stamps


@torch.inference_mode()
def hf_single(
    hf: Any,
    prompt: list[int],
    n: int,
    device: torch.device,
    *,
    threads: int | None = None,
    budget: Budget | None = None,
    **gen: Any,
) -> dict[str, Any]:
    """transformers ``generate`` for one prompt: TTFT and decode rate, warm-up apart.

    CPU: per-token timestamps from a logits processor (TTFT = first stamp). CUDA: no
    per-step host sync is added — TTFT is a 1-token ``generate``, decode comes from the
    difference to the n-token one.
    """
    ids = torch.tensor([prompt], device=device)
    kw = {"do_sample": False, "pad_token_id": 0, **gen}
    with intra_op_threads(threads):
        sync(device)
        t = time.perf_counter()
        hf.generate(ids, max_new_tokens=2, min_new_tokens=2, **kw)  # one-time setup
        sync(device)
        warmup = time.perf_counter() - t
        stop = _stopping(budget)
        if device.type == "cuda":
            sync(device)
            t = time.perf_counter()
            hf.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
            sync(device)
            ttft = time.perf_counter() - t
            t = time.perf_counter()
            out = hf.generate(ids, max_new_tokens=n, min_new_tokens=n, stopping_criteria=stop, **kw)
            sync(device)
            total = time.perf_counter() - t
            got = out.shape[1] - len(prompt)
            return {
                "ttft_ms": 1e3 * ttft,
                "decode_tok_s": (got - 1) / max(total - ttft, 1e-9),
                "tokens": got,
                "warmup_s": warmup,
                "truncated": got < n,
            }
        procs, stamps = _stamper()
        t0 = time.perf_counter()
        hf.generate(
            ids,
            max_new_tokens=n,
            min_new_tokens=n,
            logits_processor=procs,
            stopping_criteria=stop,
            **kw,
        )
    return {
        "ttft_ms": 1e3 * (stamps[0] - t0),
        **_rates(stamps),
        "tokens": len(stamps),
        "warmup_s": warmup,
        "truncated": len(stamps) < n,
    }


@torch.inference_mode()
def hf_static_batch(
    hf: Any,
    prompts: list[list[int]],
    n: int,
    device: torch.device,
    *,
    compile: bool,
    budget: Budget | None = None,
    static: bool = True,
) -> dict[str, Any]:
    """transformers static-cache batched ``generate`` on equal-length prompts (no padding);
    ``static=False``: its default dynamic cache instead (never compiled).

    ``compile=True`` is transformers' default on CUDA with a static cache (it compiles the
    decode forward, ``reduce-overhead``: CUDA graphs). The compile is keyed on the static
    cache size (prompt + new tokens), so the warm-up is the same call as the timed one;
    a warm-up with other shapes (as before) left the compile inside the timed run.
    """
    ids = torch.tensor(prompts, device=device)
    kw: dict[str, Any] = {"do_sample": False, "pad_token_id": 0, "disable_compile": not compile}
    if static:
        kw["cache_implementation"] = "static"
    warm_ids, warm_n = (ids, n) if compile else (ids[:, :16], 4)
    sync(device)
    t = time.perf_counter()
    hf.generate(
        warm_ids,
        max_new_tokens=warm_n,
        min_new_tokens=warm_n,
        stopping_criteria=_stopping(budget),
        **kw,
    )
    sync(device)
    warmup = time.perf_counter() - t
    if budget is not None and budget.expired:
        return {"warmup_s": warmup, "output_tok_s": "not timed: budget spent in warm-up"}
    t = time.perf_counter()
    out = hf.generate(
        ids, max_new_tokens=n, min_new_tokens=n, stopping_criteria=_stopping(budget), **kw
    )
    sync(device)
    wall = time.perf_counter() - t
    tokens = (out.shape[1] - ids.shape[1]) * ids.shape[0]
    return {
        "warmup_s": warmup,
        "wall_s": wall,
        "output_tok_s": tokens / wall,
        "tokens": tokens,
        "truncated": tokens < n * ids.shape[0],
    }


@torch.inference_mode()
def hf_generate_batch(
    hf: Any, prompts: list[list[int]], n: int, device: torch.device
) -> dict[str, Any] | None:
    """transformers' own continuous batching, when this version has it (not bounded:
    run it in its own process with ``--only-hf-cb``)."""
    if not hasattr(hf, "generate_batch"):
        return None
    from transformers import GenerationConfig

    cfg = GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    sync(device)
    t = time.perf_counter()
    outputs = hf.generate_batch(inputs=prompts, generation_config=cfg)
    sync(device)
    wall = time.perf_counter() - t
    tokens = sum(len(o.generated_tokens) for o in outputs.values())  # early EOS counts less
    return {"wall_s": wall, "output_tok_s": tokens / wall, "tokens": tokens}


# --------------------------------------------------------------------------- prefix caching
def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in rows) if rows else float("nan")


def _sequential(engine: LLMEngine, prompts: list[list[int]], budget: Budget) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for p in prompts:
        if budget.expired and rows:
            break
        rows.append(ours_single(engine, p, 1))
    return {
        "ttft_ms": _mean(rows, "ttft_ms"),
        "requests": len(rows),
        "prompt_tokens_computed": _mean(rows, "prompt_tokens_computed"),
        "cached_tokens": _mean(rows, "cached_tokens"),
    }


def _burst(engine: LLMEngine, prompts: list[list[int]]) -> dict[str, Any]:
    """All requests submitted at once (a deployment's users arriving together)."""
    before = engine.stats
    tag = time.monotonic_ns()
    sync(engine.device)
    t0 = time.perf_counter()
    for i, p in enumerate(prompts):
        engine.add_request(f"burst-{tag}-{i}", p, greedy(1))
    ttfts: list[float] = []
    while engine.has_unfinished():
        for o in engine.step():
            ttfts.extend(time.perf_counter() - t0 for _ in o.token_ids)
    computed = engine.stats.prompt_tokens_computed - before.prompt_tokens_computed
    return {
        "ttft_mean_ms": 1e3 * statistics.fmean(ttfts),
        "ttft_p50_ms": 1e3 * pct(ttfts, 50),
        "ttft_max_ms": 1e3 * max(ttfts),
        "prompt_tokens_computed": computed,
    }


def prefix_caching(
    engine: LLMEngine, system: list[int], questions: list[list[int]], burst: int, budget: Budget
) -> dict[str, Any]:
    """(c) TTFT of requests sharing ``system``: cached vs uncached, alone and in a burst.

    Uncached means prefix caching disabled *and* the cache reset, so nothing can hit.
    ``prompt_tokens_computed`` (from the engine's counters) proves which case ran; the
    ``new_tokens_only`` row — the question alone, uncached — is the floor a cache hit
    should approach (TTFT reflecting only the new tokens). Every measured request has a
    question no earlier request had, so only the system prompt can come from the cache.

    Args:
        questions: ``n + 2 * burst`` distinct questions: the first ``n`` (>= 2) run one
            at a time, the rest make a cold-cache burst and a warm-cache burst.
    """
    n = len(questions) - 2 * burst
    if n < 2:
        raise ValueError("need at least 2 sequential questions besides the bursts")
    alone, cold, warm = questions[:n], questions[n : n + burst], questions[n + burst :]
    bm = engine.block_manager
    res: dict[str, Any] = {
        "system_tokens": len(system),
        "question_tokens": len(alone[0]),
        "burst_requests": burst,
    }
    try:
        bm.enable_prefix_caching = True
        bm.reset_prefix_cache()
        # A fresh deployment's users arriving together: sharing within the first step.
        res["burst_cold_cache"] = _burst(engine, [system + q for q in cold])
        bm.reset_prefix_cache()
        ours_single(engine, system + alone[0], 1)  # the cache holds the system prompt now
        res["cached"] = _sequential(engine, [system + q for q in alone[1:]], budget)
        res["burst_warm_cache"] = _burst(engine, [system + q for q in warm])
        bm.enable_prefix_caching = False
        bm.reset_prefix_cache()
        res["uncached"] = _sequential(engine, [system + q for q in alone[1:]], budget)
        res["new_tokens_only"] = _sequential(engine, alone[1:], budget)
        if not budget.expired:
            res["burst_uncached"] = _burst(engine, [system + q for q in warm])
    finally:
        bm.enable_prefix_caching = True
    cached, uncached = res["cached"]["ttft_ms"], res["uncached"]["ttft_ms"]
    res["cached_over_uncached"] = cached / uncached
    res["cached_over_new_tokens_only"] = cached / res["new_tokens_only"]["ttft_ms"]
    if "burst_uncached" in res:
        res["burst_warm_over_uncached"] = (
            res["burst_warm_cache"]["ttft_mean_ms"] / res["burst_uncached"]["ttft_mean_ms"]
        )
    res["truncated"] = budget.expired
    return res


async def timed_stream(aeng: AsyncEngine, prompt: Prompt, n: int) -> dict[str, Any]:
    """One greedy request of ``n`` tokens streamed through ``aeng``, timed where its
    consumer sees it: ``ttft``, ``itl`` (gaps between deltas), ``latency``, ``tokens``."""
    t0 = time.perf_counter()
    stamps: list[float] = []
    final: FinalRecord | None = None
    async for item in aeng.submit(prompt, greedy(n)):
        if isinstance(item, TextDelta):
            stamps.append(time.perf_counter())
        else:
            final = item
    end = time.perf_counter()
    if final is None:
        raise RuntimeError("the stream ended without a final record")
    return {
        "ttft": (stamps[0] if stamps else end) - t0,
        "itl": [b - a for a, b in itertools.pairwise(stamps)],
        "latency": end - t0,
        "tokens": final.completion_tokens,
    }


# --------------------------------------------------------------------------- online
async def _serve(
    engine: LLMEngine, prompts: list[list[int]], n: int, rate: float | None, budget: Budget
) -> dict[str, Any]:
    aeng = AsyncEngine(engine)
    aeng.start()
    rng = random.Random(1)
    records: list[dict[str, Any]] = []

    async def one(p: list[int]) -> None:
        r = await timed_stream(aeng, p, n)
        r["tpot"] = (r["latency"] - r["ttft"]) / max(r["tokens"] - 1, 1)
        records.append(r)

    t_start = time.perf_counter()
    tasks = []
    for p in prompts:
        if budget.expired:
            break  # stop arriving; the ones already in flight finish
        tasks.append(asyncio.create_task(one(p)))
        if rate:
            await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t_start
    await aeng.close()
    ttfts = [r["ttft"] for r in records]
    itls = [x for r in records for x in r["itl"]]
    good = [r for r in records if r["ttft"] <= 0.5 and r["tpot"] <= 0.030]
    return {
        "requests": len(records),
        "request_rate": rate or "burst",
        "wall_s": wall,
        "request_s": len(records) / wall,
        "output_tok_s": sum(r["tokens"] for r in records) / wall,
        "ttft_p50_ms": 1e3 * pct(ttfts, 50),
        "ttft_p99_ms": 1e3 * pct(ttfts, 99),
        "itl_p50_ms": 1e3 * pct(itls, 50),
        "itl_p99_ms": 1e3 * pct(itls, 99),
        "tpot_p50_ms": 1e3 * pct([r["tpot"] for r in records], 50),
        "goodput_request_s": len(good) / wall,
        "goodput_fraction": len(good) / len(records),
        "slo": "TTFT <= 500 ms and TPOT <= 30 ms",
        "truncated": len(records) < len(prompts),
    }


def serve(
    engine: LLMEngine, prompts: list[list[int]], n: int, rate: float | None, budget: Budget
) -> dict[str, Any]:
    """(d) Online serving through ``AsyncEngine`` (Poisson arrivals at ``rate`` req/s)."""
    return asyncio.run(_serve(engine, prompts, n, rate, budget))


# --------------------------------------------------------------------------- CPU pools
POOL_LAYOUTS = (
    "chat-alone",
    "translation-alone",
    "two-threads-idle",
    "one-thread-idle",
    "two-threads-busy",
    "one-thread-busy",
)
_POOL_TEXTS = [
    "Where is my order? I paid by card last week and nothing has arrived yet.",
    "Hello, how can I help you today? Your order has shipped.",
]
_POOL_NEW_TOKENS = 24  # per translated sentence: rounds short enough to count in a chat


def _os_threads() -> int | None:
    """Threads of this process, OpenMP workers included (Linux; None elsewhere)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


async def _translate_until(translator: AsyncTranslator, stop: asyncio.Event) -> list[float]:
    """Translate ``_POOL_TEXTS`` round after round until ``stop``; each round's end time."""
    ends: list[float] = []
    while not stop.is_set():
        await translator.translate(_POOL_TEXTS, "en", "de")
        ends.append(time.perf_counter())
    return ends


async def pools_layout(
    engine: LLMEngine, translation: TranslationEngine, layout: str, prompt: Prompt, n: int
) -> dict[str, Any]:
    """One greedy chat of ``n`` tokens through ``AsyncEngine`` beside a translator as
    ``layout`` (one of ``POOL_LAYOUTS``) says: none; one that translated once and is idle,
    or one translating all along ("busy"); on a worker thread of its own, with its own
    OpenMP pool ("two-threads": the layout before ``engine.cpu_worker``), or on the chat
    engine's ("one-thread"). "translation-alone": the translator for 3 s, no chat."""
    if layout == "translation-alone":
        alone = await translation_alone(translation, 3.0)
        nan = float("nan")
        rates = {"chat_tok_s": nan, "chat_tok_s_mean": nan, "translated_sentences_s": alone}
        return rates | {"os_threads": None}
    aeng = AsyncEngine(engine)
    aeng.start()
    translator = None
    if layout != "chat-alone":
        own = CpuWorker("translator") if layout.startswith("two-threads") else None
        translator = AsyncTranslator(translation, max_new_tokens=_POOL_NEW_TOKENS, cpu_worker=own)
        await translator.translate(_POOL_TEXTS, "en", "de")  # its thread ran parallel ops
    stop = asyncio.Event()
    busy = None
    if translator is not None and layout.endswith("-busy"):
        busy = asyncio.create_task(_translate_until(translator, stop))
        await asyncio.sleep(0.2)  # translating when the chat starts
    try:
        t0 = time.perf_counter()
        chat = await timed_stream(aeng, prompt, n)
        end = time.perf_counter()
        threads = _os_threads()
    finally:
        stop.set()
        ends = await busy if busy is not None else []
        await aeng.close()
        if translator is not None:
            await translator.close()
    itl = chat["itl"]
    rounds = sum(1 for e in ends if t0 <= e <= end)
    return {
        "chat_tok_s": 1.0 / statistics.median(itl) if itl else float("nan"),
        "chat_tok_s_mean": len(itl) / sum(itl) if itl else float("nan"),
        "translated_sentences_s": rounds * len(_POOL_TEXTS) / (end - t0),
        "os_threads": threads,
    }


async def translation_alone(translation: TranslationEngine, seconds: float) -> float:
    """Sentences/s of a translator translating alone for ``seconds`` (after one round)."""
    translator = AsyncTranslator(translation, max_new_tokens=_POOL_NEW_TOKENS)
    try:
        await translator.translate(_POOL_TEXTS, "en", "de")
        stop = asyncio.Event()
        t0 = time.perf_counter()
        busy = asyncio.create_task(_translate_until(translator, stop))
        await asyncio.sleep(seconds)
        stop.set()
        ends = await busy
        end = time.perf_counter()
    finally:
        await translator.close()
    return sum(1 for e in ends if e <= end) * len(_POOL_TEXTS) / (end - t0)
