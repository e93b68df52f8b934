"""``pivot`` mode end to end on the CPU, as the customer sees it, per thread layout.

One conversation is what ``botkit.pipeline.middleware.translation`` does with a
message: the customer's message translated into the working language, then the chat
reply generated through ``AsyncEngine`` and translated back sentence by sentence as each
completes (``botkit.language.translate.TextTranslator``, the bot's own code: sentence
buffer, one translator call per batch of finished sentences, the stream waiting on it).
Times are taken on the event loop from the message's arrival: ``inbound`` (its
translation done), ``first_sentence`` (the first translated reply sentence the customer
sees) and ``whole_reply`` (the last one).

Layouts: the translator on the chat engine's thread (``shared``: the process's
``engine.cpu_worker``, what the bot does) or on a ``CpuWorker`` of its own (``own-thread``,
an OpenMP pool of its own: the layout before it), or a candidate turn policy on the
shared thread (``shared-translation-first``): a translation round runs through without
letting the chat engine step between its decode steps (the translator's
``between_steps`` unset for the run), or lets it step once per ``SLICE_S`` of decoding
(``shared-sliced``), since in pivot mode a customer waits on every
translation while the chat's new tokens only wait in a sentence buffer. The translator is one random
OPUS-MT-shaped Marian model serving both directions (a deployment has two, one per
direction, of the same shape). Random weights never end a sentence (the build keeps EOS
from winning), so each sentence is given as many output tokens as its source has: the
length a real translation has, about.

Measured (2-core VM, 64-token replies, 1 / 4 / 8 conversations, medians of 4-5 repeats):
shared over own thread, first translated sentence p50 0.80 / 1.42 / 1.22 but worst
0.80 / 0.86 / 0.76, whole reply 0.84 / 0.87 / 0.83: one thread serves the customers more
evenly and finishes sooner. Translation first does the opposite trade (first sentence
p50 0.95 / 0.53 / 0.70 of shared, whole reply 0.99 / 1.28 / 1.31; sliced: 0.73 / 0.70 /
0.70, whole 0.98 / 1.12 / 1.19, worst first sentence 0.73 / 1.17 / 1.42): a chat step
held back delays every conversation's later sentences.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from benchmarks._engine_bench import greedy
from benchmarks._engine_concurrency import customer_chats
from botkit.language.translate import TextTranslator
from engine import AsyncEngine, LLMEngine, TextDelta
from engine.cpu_worker import CpuWorker, shared_cpu_worker
from engine.prompt import Prompt
from engine.translation import AsyncTranslator, TranslationEngine

__all__ = ["PIVOT_LAYOUTS", "pivot_run", "source_length_outputs"]

PIVOT_LAYOUTS = ("shared", "own-thread", "shared-translation-first", "shared-sliced")
SLICE_S = 0.1  # shared-sliced: translation decode time between two chat steps
# The directions the one random model serves (it supports en -> de only): the message
# "in", the reply "out". Same model shape and sentence lengths either way.
SOURCE, TARGET = "en", "de"


def source_length_outputs(translation: TranslationEngine) -> None:
    """Make each sentence generate as many tokens as its source has (EOS never wins)."""
    cap = translation.max_new_tokens_limit

    def limit(source_len: int, max_new_tokens: int | None) -> int:
        return min(source_len if max_new_tokens is None else max_new_tokens, cap)

    vars(translation)["_limit"] = limit  # the instance's, not the class's


def _sliced(between: Callable[[], None], hold_s: float) -> Callable[[], None]:
    """``between`` at most once per ``hold_s`` of the caller's steps."""
    last = [time.perf_counter()]

    def between_steps() -> None:
        if time.perf_counter() - last[0] >= hold_s:
            between()
            last[0] = time.perf_counter()

    return between_steps


async def _deltas(aeng: AsyncEngine, prompt: Prompt, n: int) -> AsyncIterator[str]:
    async for item in aeng.submit(prompt, greedy(n)):
        if isinstance(item, TextDelta) and item.text:
            yield item.text


async def _conversation(
    aeng: AsyncEngine, text: TextTranslator, prompt: Prompt, n: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    message = cast("list[dict[str, str]]", prompt)[-1]["content"]  # customer_chats
    await text.translate_text(message, SOURCE, TARGET)  # the customer's message, in
    inbound = time.perf_counter() - t0
    first: float | None = None
    pieces = 0
    async for piece in text.translate_stream(_deltas(aeng, prompt, n), SOURCE, TARGET):
        if piece.strip():
            pieces += 1
            if first is None:
                first = time.perf_counter() - t0
    whole = time.perf_counter() - t0
    return {
        "inbound_s": inbound,
        "first_sentence_s": first if first is not None else whole,
        "whole_reply_s": whole,
        "pieces": pieces,
    }


async def pivot_run(
    engine: LLMEngine,
    translation: TranslationEngine,
    layout: str,
    n_chats: int,
    n: int,
    offset: int,
) -> dict[str, Any]:
    """``n_chats`` conversations arriving together, replies of ``n`` tokens; medians and
    worst over the conversations."""
    aeng = AsyncEngine(engine)
    aeng.start()
    own = CpuWorker("translator") if layout == "own-thread" else None
    translator = AsyncTranslator(translation, cpu_worker=own)
    text = TextTranslator(translator)  # type: ignore[arg-type]
    try:
        await translator.translate(["Hello."], SOURCE, TARGET)  # its thread ran parallel ops
        if layout == "shared-translation-first":  # set again by the next translator's start
            translation.between_steps = None
        elif layout == "shared-sliced":
            translation.between_steps = _sliced(shared_cpu_worker().between_steps, SLICE_S)
        chats = customer_chats(n_chats, offset)
        t = time.perf_counter()
        rows = await asyncio.gather(*(_conversation(aeng, text, c, n) for c in chats))
        wall = time.perf_counter() - t
    finally:
        await aeng.close()
        await translator.close()
    out: dict[str, Any] = {"wall_s": wall}
    for key in ("inbound_s", "first_sentence_s", "whole_reply_s"):
        values = [r[key] for r in rows]
        out[key.removesuffix("_s") + "_p50_s"] = statistics.median(values)
        out[key.removesuffix("_s") + "_max_s"] = max(values)
    out["translated_pieces_per_reply"] = statistics.fmean(r["pieces"] for r in rows)
    return out
