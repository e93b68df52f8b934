"""A failed engine step ends only the requests that were in it; the engine carries on
from a clean state (their KV blocks free) and stops for good only when steps keep
failing. Tiny random Llama, fp32, CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hf_tiny import build_tokenizer, collect, save_checkpoint, tiny_config, tiny_model

import engine.async_engine as async_engine
from engine import (
    AsyncEngine,
    EngineConfig,
    EngineDeadError,
    LLMEngine,
    LoadedModel,
    SamplingParams,
    StepFailedError,
    load_model,
)

PARAMS = SamplingParams(temperature=0, max_new_tokens=24, ignore_eos=True)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    tok = build_tokenizer()
    ckpt = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), tok, tmp_path_factory.mktemp("tiny")
    )
    return load_model(ckpt, dtype="float32", device="cpu")


def make_engine(loaded: LoadedModel, max_num_seqs: int = 8) -> LLMEngine:
    return LLMEngine(
        loaded.model,
        loaded.tokenizer,
        loaded.model_config,
        EngineConfig(block_size=4, num_kv_blocks=128, max_num_seqs=max_num_seqs),
        chat_template=loaded.chat_template,
    )


def failing_steps(engine: LLMEngine, fails: Callable[[int], bool]) -> None:
    """Make ``engine.step`` raise on the calls ``fails`` picks (1-based), as a
    transient out-of-memory or kernel fault would."""
    original, calls = engine.step, [0]

    def step() -> Any:
        calls[0] += 1
        if fails(calls[0]):
            original()  # the step runs (writes KV), then its result is lost
            raise RuntimeError("simulated fault in a kernel")
        return original()

    engine.step = step  # type: ignore[method-assign]


async def test_one_failed_step_fails_its_requests_and_the_engine_serves_on(
    loaded: LoadedModel,
) -> None:
    engine = make_engine(loaded)
    reference = await _reply(engine, "Hello there")
    failing_steps(engine, lambda n: n == 4)
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        streams = [collect(aeng.submit(p, PARAMS)) for p in ("Hi", "How are you")]
        results = await asyncio.gather(*streams, return_exceptions=True)
        assert all(isinstance(r, StepFailedError) for r in results), results
        assert "simulated fault" in str(results[0])
        assert aeng.running and not aeng.dead and aeng.step_failures == 1
        assert engine.load.kv_blocks_free == engine.num_kv_blocks  # nothing leaked
        # Later requests are served, and give what a fresh engine gives.
        text, final = await collect(aeng.submit("Hello there", PARAMS))
        assert (text, final.completion_tokens) == reference
    finally:
        await aeng.close()


async def test_requests_not_in_the_failed_step_carry_on(loaded: LoadedModel) -> None:
    engine = make_engine(loaded, max_num_seqs=1)  # the second request waits
    failing_steps(engine, lambda n: n == 3)
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        first = collect(aeng.submit("Hi", PARAMS))
        second = collect(aeng.submit("How are you", PARAMS))
        failed, served = await asyncio.gather(first, second, return_exceptions=True)
        assert isinstance(failed, StepFailedError)
        assert not isinstance(served, BaseException) and served[1].completion_tokens == 24
    finally:
        await aeng.close()


async def test_steps_failing_in_a_row_stop_the_engine(loaded: LoadedModel) -> None:
    engine = make_engine(loaded)
    failing_steps(engine, lambda n: True)  # a broken device: every step fails
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        outcomes = []
        for _ in range(async_engine.MAX_CONSECUTIVE_STEP_FAILURES):
            try:
                await collect(aeng.submit("Hi", PARAMS))
            except Exception as exc:
                outcomes.append(type(exc))
        limit = async_engine.MAX_CONSECUTIVE_STEP_FAILURES
        assert outcomes == [StepFailedError] * (limit - 1) + [EngineDeadError]
        assert aeng.dead and not aeng.running and aeng.step_failures == limit
        with pytest.raises(EngineDeadError, match="simulated fault"):
            await collect(aeng.submit("Hi", PARAMS))
    finally:
        await aeng.close()


async def _reply(engine: LLMEngine, prompt: str) -> tuple[str, int]:
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        text, final = await collect(aeng.submit(prompt, PARAMS))
        return text, final.completion_tokens
    finally:
        await aeng.close()
