"""A failed engine step ends only the requests that were in it; the engine carries on
from a clean state (their KV blocks free) and stops for good only when steps keep
failing. Tiny random Llama, fp32, CPU."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hf_tiny import (
    build_pair,
    build_tokenizer,
    collect,
    save_checkpoint,
    tiny_config,
    tiny_model,
)

import engine.async_engine as async_engine
from engine import (
    AsyncEngine,
    EngineBusyError,
    EngineConfig,
    EngineDeadError,
    LLMEngine,
    LoadedModel,
    SamplingParams,
    StepFailedError,
    load_model,
)
from engine.request import FinishReason

PARAMS = SamplingParams(temperature=0, max_new_tokens=24, ignore_eos=True)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    tok = build_tokenizer()
    ckpt = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), tok, tmp_path_factory.mktemp("tiny")
    )
    return load_model(ckpt, dtype="float32", device="cpu")


def make_engine(loaded: LoadedModel, max_num_seqs: int = 8, **config: Any) -> LLMEngine:
    return LLMEngine(
        loaded.model,
        loaded.tokenizer,
        loaded.model_config,
        EngineConfig(block_size=4, num_kv_blocks=128, max_num_seqs=max_num_seqs, **config),
        chat_template=loaded.chat_template,
    )


def failing_steps(engine: LLMEngine, fails: Callable[[int], bool], *, at: str = "result") -> None:
    """Make the model steps ``fails`` picks (1-based count of launches) raise inside
    ``step()``, as a transient out-of-memory or kernel fault would: at ``"launch"``
    (before the device ran anything) or at ``"result"`` (the device ran the step and
    its tokens never come back)."""
    runner, calls = engine.runner, [0]
    original = runner.launch

    def launch(out: Any) -> Any:
        calls[0] += 1
        if fails(calls[0]) and at == "launch":
            raise RuntimeError("simulated fault in a launch")
        pending = original(out)
        if fails(calls[0]):

            def result() -> list[int]:
                raise RuntimeError("simulated fault in a kernel")

            pending.result = result
        return pending

    runner.launch = launch  # type: ignore[method-assign]


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
        assert aeng.dead_reason is not None
        assert aeng.dead_reason.startswith(f"its steps failed {limit} times in a row")
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


def test_a_failed_step_hands_out_what_it_ended_before_it_failed(loaded: LoadedModel) -> None:
    """The step expiring a queued request (EngineBusyError) fails in its launch: the
    busy request's last output still comes out of ``fail_step``, or its stream would
    wait forever."""
    engine = make_engine(loaded, max_num_seqs=1, queue_timeout_s=0.5)
    engine.add_request("A", "Hi", PARAMS)
    engine.step()  # A runs; B waits behind it
    engine.add_request("B", "How are you", PARAMS, arrival_time=time.monotonic() - 10)
    engine.add_request("C", "Hello", PARAMS)
    engine.abort_request("C")  # reported by the next step, which fails
    failing_steps(engine, lambda n: True, at="launch")
    with pytest.raises(RuntimeError, match="simulated"):
        engine.step()
    cause = RuntimeError("the cause")
    outputs = {o.request_id: o for o in engine.fail_step(cause)}
    assert set(outputs) == {"A", "B", "C"}
    assert isinstance(outputs["B"].error, EngineBusyError)
    assert outputs["C"].finish_reason is FinishReason.ABORT
    assert isinstance(outputs["A"].error, StepFailedError)
    assert outputs["A"].error.__cause__ is cause
    assert all(o.finished for o in outputs.values())
    assert not engine.has_unfinished()
    assert engine.load.kv_blocks_free == engine.num_kv_blocks


def test_requests_finished_before_the_step_raised_part_way_get_their_end(
    loaded: LoadedModel,
) -> None:
    """Applying a step's tokens raises on the second request: the first, whose last
    token it was, still ends with its text; each failed request gets its own error."""
    engine = make_engine(loaded)
    short = SamplingParams(temperature=0, max_new_tokens=1, ignore_eos=True)
    engine.add_request("done", "Hi", short)
    engine.add_request("broken", "How are you", PARAMS)
    engine.add_request("other", "Hello", PARAMS)
    detok = engine._detok["broken"][1]

    def add_tokens(tokens: list[int]) -> str:
        raise RuntimeError("simulated fault in the detokenizer")

    detok.add_tokens = add_tokens  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="simulated"):
        engine.step()
    outputs = {o.request_id: o for o in engine.fail_step(RuntimeError("x"))}
    assert set(outputs) == {"done", "broken", "other"}
    assert outputs["done"].finish_reason is FinishReason.LENGTH
    assert outputs["done"].error is None and outputs["done"].completion_tokens == 1
    errors = [outputs[r].error for r in ("broken", "other")]
    assert all(isinstance(e, StepFailedError) for e in errors)
    assert errors[0] is not errors[1]  # raised in two streams: one instance each
    assert not engine.has_unfinished()


async def test_a_stream_ended_by_a_failed_step_does_not_hang(loaded: LoadedModel) -> None:
    engine = make_engine(loaded, max_num_seqs=1, queue_timeout_s=0.3)
    runner, original = engine.runner, engine.runner.launch
    failed = []

    def launch(out: Any) -> Any:  # the step that expires B fails
        if not failed and any(s.request_id.startswith("B") for s in out.finished):
            failed.append(True)
            raise RuntimeError("simulated fault in a launch")
        time.sleep(0.01)  # A's steps outlast B's queue timeout
        return original(out)

    runner.launch = launch  # type: ignore[method-assign]
    slow = SamplingParams(temperature=0, max_new_tokens=100, ignore_eos=True)
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        first = asyncio.ensure_future(collect(aeng.submit("Hi", slow)))
        await asyncio.sleep(0.05)
        second = collect(aeng.submit("How are you", PARAMS, request_id="B"))
        with pytest.raises(EngineBusyError):
            await asyncio.wait_for(second, 30)
        with pytest.raises(StepFailedError):
            await asyncio.wait_for(first, 30)
        assert failed and aeng.running
    finally:
        await aeng.close()


def test_steps_without_model_work_do_not_reset_the_failure_count(loaded: LoadedModel) -> None:
    """A broken device with an abort between two failures still reaches the stop: a
    step that only reported the abort ran nothing on the device."""
    engine = make_engine(loaded)
    failing_steps(engine, lambda n: True, at="launch")
    aeng = AsyncEngine(engine)  # driven turn by turn on this thread (no loop: no posts)
    aeng._send(("add", "r1", "Hi", PARAMS, time.monotonic()))
    assert aeng._turn(block=False) and aeng.step_failures == 1
    aeng._send(("add", "r2", "Hi", PARAMS, time.monotonic()))
    aeng._send(("abort", "r2", None, None, 0.0))
    assert aeng._turn(block=False)  # reports the abort only
    for n in range(2, async_engine.MAX_CONSECUTIVE_STEP_FAILURES):
        aeng._send(("add", f"r{n + 1}", "Hi", PARAMS, time.monotonic()))
        assert aeng._turn(block=False) and aeng.step_failures == n
    aeng._send(("add", "last", "Hi", PARAMS, time.monotonic()))
    with pytest.raises(RuntimeError, match="simulated"):
        aeng._turn(block=False)


async def test_the_reason_the_engine_stopped_is_kept(loaded: LoadedModel) -> None:
    engine = make_engine(loaded)

    def step() -> Any:
        raise KeyboardInterrupt  # not a failed step: the loop itself ends

    engine.step = step  # type: ignore[method-assign]
    aeng = AsyncEngine(engine)
    aeng.start()
    try:
        with pytest.raises(EngineDeadError):
            await asyncio.wait_for(collect(aeng.submit("Hi", PARAMS)), 30)
        assert aeng.dead and aeng.dead_reason == "its step loop crashed: KeyboardInterrupt: "
    finally:
        await aeng.close()


def test_a_failed_overlapped_step_ends_the_queued_steps_requests_only() -> None:
    """Overlapped decoding (the graphed decode path, run eagerly on the CPU): the step
    taken from the queue fails when its tokens are read. Its requests end with their
    own errors; one that arrived meanwhile (not in it) gets its whole reply."""
    _, model = build_pair("llama-gqa-llama3-rope")
    engine = LLMEngine(
        model,
        build_tokenizer(),
        model.config,
        EngineConfig(block_size=4, num_kv_blocks=64, overlap_steps=True),
    )
    engine.runner.cpu_decoder = None  # decode on the graphed path, as CUDA does
    engine.runner.use_graphs(capture=False)
    for rid, prompt in (("a", [9, 8, 7]), ("b", [4, 5, 6, 7, 8])):
        engine.add_request(rid, prompt, PARAMS)
    while engine._ahead is None:
        assert not [o for o in engine.step() if o.finished]
    queued = {s.seq.request_id for s in engine._ahead[0].scheduled}
    assert queued == {"a", "b"}
    engine.add_request("late", [200, 201, 7, 3], PARAMS)  # waits: not in the queued step
    pending = engine._ahead[1]

    def lost() -> list[int]:
        raise RuntimeError("simulated fault in a kernel")

    pending.result = lost  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="simulated"):
        engine.step()
    outputs = engine.fail_step(RuntimeError("simulated fault in a kernel"))
    assert sorted(o.request_id for o in outputs) == ["a", "b"]
    assert all(isinstance(o.error, StepFailedError) for o in outputs)
    assert outputs[0].error is not outputs[1].error
    tokens: list[int] = []
    while engine.has_unfinished():
        for o in engine.step():
            assert o.request_id == "late" and o.error is None
            tokens += o.token_ids
    assert len(tokens) == PARAMS.max_new_tokens
    assert engine.load.kv_blocks_free == engine.num_kv_blocks


def test_a_failed_step_does_not_keep_its_frames_alive(loaded: LoadedModel) -> None:
    """The errors of a failed step's requests keep its cause, not the step's frames:
    their locals (activations, after an out-of-memory) must be freed at once."""

    class Activations:
        pass

    engine = make_engine(loaded)
    engine.add_request("A", "Hi", PARAMS)
    held: list[weakref.ref[Activations]] = []

    def launch(out: Any) -> Any:
        activations = Activations()  # a tensor the failed step still referenced
        held.append(weakref.ref(activations))
        raise RuntimeError("simulated out of memory")

    engine.runner.launch = launch  # type: ignore[method-assign]
    try:
        engine.step()
    except RuntimeError as exc:
        outputs = engine.fail_step(exc)
    gc.collect()
    error = outputs[0].error
    assert isinstance(error, StepFailedError)
    assert isinstance(error.__cause__, RuntimeError)
    assert held and held[0]() is None
