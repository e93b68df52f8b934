"""N customers chatting at once through ``AsyncEngine``: what one deployment serves.

For each N, rounds of N chats are submitted together (a burst, as when N customers write
in the same second) until at least ``min_requests`` replies were measured. Each chat is
the bot's system prompt and a different customer message from the shipped
customer-service sentences (10 languages), rendered with the model's chat template in the
engine thread as in production; replies are greedy, ``reply`` tokens long (EOS ignored).

Times are taken where the bot sees them, on the event loop: TTFT is submit -> first
streamed text (queue wait, prefill, detokenization and the hand-over to the loop
included), ITL the gap between streamed deltas, output tok/s all rounds' tokens over
their wall time. The loop's worst lag (a 5 ms sleeper woken late) is reported as a
diagnostic of the model step staying off the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from benchmarks._engine_bench import Budget, pct, random_prompts
from benchmarks._engine_measure import timed_stream
from benchmarks._texts import load_texts
from engine import AsyncEngine, LLMEngine
from engine.prompt import Prompt

__all__ = ["SYSTEM_PROMPT", "chats_at_once"]

SYSTEM_PROMPT = (
    "You are the customer-service assistant of an online shop. Answer politely and "
    "briefly, in the customer's language."
)


def customer_chats(count: int, offset: int = 0, vocab: int | None = None) -> list[Prompt]:
    """``count`` different chats (system prompt + one customer message); with ``vocab``
    (a model without a chat template: the smoke run) 48 random token ids each."""
    if vocab is not None:
        return list(random_prompts(count, 48, vocab, seed=offset))
    languages = load_texts()
    pool = [s for group in itertools.zip_longest(*languages) for s in group if s]
    return [
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": pool[(offset + i) % len(pool)]},
        ]
        for i in range(count)
    ]


async def _watch_lag(worst: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.005)
        worst[0] = max(worst[0], loop.time() - before - 0.005)


async def _rounds(
    engine: LLMEngine,
    n: int,
    reply: int,
    min_requests: int,
    budget: Budget,
    offset: int,
    vocab: int | None,
) -> dict[str, Any]:
    aeng = AsyncEngine(engine)
    aeng.start()
    lag = [0.0]
    watcher = asyncio.create_task(_watch_lag(lag))
    records: list[dict[str, Any]] = []
    wall = 0.0
    steps_before = engine.stats.steps
    try:
        rounds = max(1, -(-min_requests // n))
        for r in range(rounds):
            if budget.expired and records:
                break
            chats = customer_chats(n, offset + r * n, vocab)
            t = time.perf_counter()
            records += await asyncio.gather(*(timed_stream(aeng, c, reply) for c in chats))
            wall += time.perf_counter() - t
    finally:
        watcher.cancel()
        await aeng.close()
    ttfts = [r["ttft"] for r in records]
    itls = [x for r in records for x in r["itl"]]
    tokens = sum(r["tokens"] for r in records)
    steps = engine.stats.steps - steps_before
    return {
        "requests": len(records),
        "output_tok_s": tokens / wall,
        "per_chat_tok_s": tokens / wall / n,
        "ttft_p50_ms": 1e3 * pct(ttfts, 50),
        "ttft_p99_ms": 1e3 * pct(ttfts, 99),
        "itl_p50_ms": 1e3 * pct(itls, 50),
        "itl_p99_ms": 1e3 * pct(itls, 99),
        "tokens_per_step": tokens / max(steps, 1),
        "loop_lag_worst_ms": 1e3 * lag[0],
        "truncated": len(records) < max(1, -(-min_requests // n)) * n,
    }


def chats_at_once(
    engine: LLMEngine,
    ns: list[int],
    reply: int,
    budget: Budget,
    min_requests: int = 16,
    *,
    chat: bool = True,
) -> dict[str, Any]:
    """Output tok/s and TTFT/ITL p50/p99 at each N of ``ns`` chats at once (``chat``
    False: random token prompts, for a model without a chat template)."""
    max_seqs = engine.scheduler.config.max_num_seqs
    result: dict[str, Any] = {"reply_tokens": reply, "max_num_seqs": max_seqs}
    vocab = None if chat else engine.model_config.vocab_size
    # Warm-up (first prefill and decode shapes, thread policy), not timed.
    asyncio.run(_rounds(engine, 1, 8, 1, Budget(None), 10_000, vocab))
    offset = 0
    for n in ns:
        run = _rounds(engine, n, reply, min_requests, budget, offset, vocab)
        result[f"n{n}"] = asyncio.run(run)
        offset += max(min_requests, n)  # other messages: no reply served from the cache
    return result
