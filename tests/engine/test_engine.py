"""End to end on a tiny random Llama loaded with ``engine.loader.load_model`` (fp32, CPU).

Reference: transformers ``generate`` on the same saved weights. Every variant — batched,
chunked, preempted by a tiny KV pool, prefix-cached — must give the tokens the request
gets alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny import build_tokenizer, collect, save_checkpoint, tiny_config, tiny_model

from engine import (
    AsyncEngine,
    EngineBusyError,
    EngineConfig,
    FinishReason,
    InvalidRequestError,
    LLMEngine,
    LoadedModel,
    SamplingParams,
    load_model,
)

GREEDY = SamplingParams(temperature=0, max_new_tokens=12, ignore_eos=True)
SYSTEM = (
    "You are a helpful assistant for an online shop. Answer politely and briefly, "
    "in the customer's language."
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tok = build_tokenizer()
    hf = tiny_model(tiny_config("LlamaForCausalLM"))
    path = save_checkpoint(hf, tok, tmp_path_factory.mktemp("tiny-llama"))
    return path, hf


@pytest.fixture(scope="module")
def loaded(ckpt: tuple[Path, Any]) -> LoadedModel:
    return load_model(ckpt[0], dtype="float32", device="cpu")


def make_engine(loaded: LoadedModel, **cfg: Any) -> LLMEngine:
    config = EngineConfig(**{"block_size": 4, "num_kv_blocks": 128, **cfg})
    return LLMEngine(
        loaded.model,
        loaded.tokenizer,
        loaded.model_config,
        config,
        chat_template=loaded.chat_template,
    )


def prompts(loaded: LoadedModel) -> list[list[int]]:
    tok = loaded.tokenizer
    texts = [
        "Hello, how can I help you",
        "Refunds take five days.",
        "Votre commande est en route, merci",
        "0123456789 quick brown fox jumps",
    ]
    return [tok.encode(t, add_special_tokens=False) for t in texts]


def hf_greedy(hf: Any, prompt: list[int], n: int) -> list[int]:
    out = hf.generate(
        torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0
    )
    return [int(t) for t in out[0, len(prompt) :]]


def alone(loaded: LoadedModel, prompt: Any, params: SamplingParams) -> list[int]:
    return make_engine(loaded).generate([prompt], params)[0][1]


def test_greedy_batched_matches_transformers_generate(
    loaded: LoadedModel, ckpt: tuple[Path, Any]
) -> None:
    ps = prompts(loaded)
    ours = make_engine(loaded).generate(ps, GREEDY)
    for p, (_, toks) in zip(ps, ours, strict=True):
        assert toks == hf_greedy(ckpt[1], p, 12)


def test_chunked_prefill_and_decode_mixing_match_alone(loaded: LoadedModel) -> None:
    ps = prompts(loaded)
    ref = [alone(loaded, p, GREEDY) for p in ps]
    eng = make_engine(
        loaded, max_num_batched_tokens=8, long_prefill_token_threshold=3, max_num_seqs=3
    )
    assert [t for _, t in eng.generate(ps, GREEDY)] == ref


def test_preempted_runs_match_alone(loaded: LoadedModel) -> None:
    ps = prompts(loaded)
    params = SamplingParams(temperature=0.9, top_k=20, seed=5, max_new_tokens=16, ignore_eos=True)
    ref = [alone(loaded, p, params) for p in ps]
    eng = make_engine(loaded, num_kv_blocks=14)  # 56 token slots for ~4 x 25 tokens
    assert [t for _, t in eng.generate(ps, params)] == ref
    assert eng.scheduler.num_preemptions > 0
    assert eng.block_manager.num_free_blocks == 14


def test_prefix_cached_runs_match_uncached(loaded: LoadedModel) -> None:
    chats = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
        for q in ("Where is my order?", "Can I get a refund?")
    ]
    ref = [alone(loaded, c, GREEDY) for c in chats]
    eng = make_engine(loaded)
    first = eng.generate(chats[:1], GREEDY)[0][1]
    seq = eng.add_request("second", chats[1], GREEDY)
    while eng.has_unfinished():
        eng.step()
    assert [first, seq.output_token_ids] == ref
    assert seq.num_cached_tokens >= 16  # the shared system prompt came from the cache
    # next turn of the same conversation reuses the whole earlier exchange
    turn2 = [
        *chats[1],
        {"role": "assistant", "content": eng.tokenizer.decode(ref[1])},
        {"role": "user", "content": "Thanks!"},
    ]
    seq2 = eng.add_request("turn2", turn2, GREEDY)
    while eng.has_unfinished():
        eng.step()
    assert seq2.num_cached_tokens > seq.num_cached_tokens
    assert seq2.output_token_ids == alone(loaded, turn2, GREEDY)


def test_stop_strings_eos_and_finish_reasons(loaded: LoadedModel) -> None:
    eng = make_engine(loaded)
    p = prompts(loaded)[0]
    text, toks = eng.generate([p], SamplingParams(temperature=0, max_new_tokens=12))[0]
    full = eng.tokenizer.decode(toks, skip_special_tokens=True)
    # A character the reply was cut in the middle of is dropped, not shown as U+FFFD.
    assert text == full.rstrip("\ufffd") or not toks
    stop = full[3:6]
    assert stop.strip() and full.index(stop) == 3
    seq = eng.add_request("s", p, SamplingParams(temperature=0, max_new_tokens=12, stop=(stop,)))
    outs = []
    while eng.has_unfinished():
        outs += eng.step()
    assert "".join(o.text for o in outs) == full[:3]
    assert seq.finish_reason is FinishReason.STOP
    # the model's EOS id ends generation: make the greedy token an EOS via stop_token_ids
    seq = eng.add_request("e", p, SamplingParams(temperature=0, stop_token_ids=(toks[2],)))
    while eng.has_unfinished():
        eng.step()
    assert seq.finish_reason is FinishReason.STOP and seq.output_token_ids[-1] == toks[2]


def test_abort_frees_blocks(loaded: LoadedModel) -> None:
    eng = make_engine(loaded)
    for i, p in enumerate(prompts(loaded)):
        eng.add_request(f"r{i}", p, GREEDY)
    eng.step()
    eng.step()
    assert eng.block_manager.num_free_blocks < 128
    for i in range(4):
        assert eng.abort_request(f"r{i}")
    assert eng.block_manager.num_free_blocks == 128
    finals = eng.step()
    assert {o.request_id for o in finals} == {"r0", "r1", "r2", "r3"}
    assert all(o.finished and o.finish_reason is FinishReason.ABORT for o in finals)
    assert not eng.has_unfinished()


def test_bad_requests_fail_alone(loaded: LoadedModel) -> None:
    eng = make_engine(loaded, max_model_len=64)
    good = eng.add_request("good", prompts(loaded)[0], GREEDY)
    with pytest.raises(InvalidRequestError, match="context"):
        eng.add_request("long", [5] * 64, GREEDY)
    with pytest.raises(InvalidRequestError, match="vocabulary"):
        eng.add_request("vocab", [5, 10**6], GREEDY)
    with pytest.raises(InvalidRequestError, match="role"):
        eng.add_request("role", [{"role": "wizard", "content": "hi"}], GREEDY)
    with pytest.raises(InvalidRequestError, match="empty"):
        eng.add_request("empty", "", GREEDY)
    with pytest.raises(InvalidRequestError, match="content"):
        eng.add_request("content", [{"role": "user", "content": None}], GREEDY)
    with pytest.raises(InvalidRequestError, match="no messages"):
        eng.add_request("nothing", [], GREEDY)
    while eng.has_unfinished():
        eng.step()
    assert good.num_output_tokens == 12


# ------------------------------------------------------------------- async API
async def test_async_streams_concurrent_chats(loaded: LoadedModel) -> None:
    chats = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(3)]
    ref = [make_engine(loaded).generate([c], GREEDY)[0][0] for c in chats]
    aeng = AsyncEngine(make_engine(loaded))
    aeng.start()
    try:
        results = await asyncio.gather(*(collect(aeng.submit(c, GREEDY)) for c in chats))
    finally:
        await aeng.close()
    assert [t for t, _ in results] == ref
    final = results[0][1]
    assert final.finish_reason == "length" and final.completion_tokens == 12
    assert final.prompt_tokens > 0 and final.ttft_s is not None
    assert 0 <= final.ttft_s <= final.latency_s


async def test_async_cancel_frees_blocks_at_next_step(loaded: LoadedModel) -> None:
    eng = make_engine(loaded)
    aeng = AsyncEngine(eng)
    aeng.start()
    try:
        long = SamplingParams(temperature=0, max_new_tokens=200, ignore_eos=True)
        stream = aeng.submit(prompts(loaded)[0], long)
        await anext(stream)
        other = asyncio.create_task(collect(aeng.submit(prompts(loaded)[1], long)))
        await asyncio.sleep(0.05)
        await stream.aclose()
        other.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await other
        for _ in range(200):
            if eng.block_manager.num_free_blocks == 128 and not eng.has_unfinished():
                break
            await asyncio.sleep(0.01)
        assert eng.block_manager.num_free_blocks == 128
        assert not eng.has_unfinished()
        # and the engine still serves
        _text, final = await collect(aeng.submit(prompts(loaded)[2], GREEDY))
        assert final.completion_tokens == 12
    finally:
        await aeng.close()


async def test_async_bad_request_fails_alone_and_busy_times_out(loaded: LoadedModel) -> None:
    # max_num_seqs=1: while the slow request decodes (>= 240 steps), the next one waits.
    aeng = AsyncEngine(make_engine(loaded, max_num_seqs=1, queue_timeout_s=0.02))
    aeng.start()
    try:
        slow = asyncio.create_task(
            collect(
                aeng.submit(
                    prompts(loaded)[0],
                    SamplingParams(temperature=0, max_new_tokens=240, ignore_eos=True),
                )
            )
        )
        with pytest.raises(InvalidRequestError, match="context"):
            await collect(aeng.submit([7] * 300, GREEDY))
        with pytest.raises(EngineBusyError, match="busy"):
            await collect(aeng.submit(prompts(loaded)[1], GREEDY))
        assert not slow.done()
        _text, final = await slow
        assert final.completion_tokens == 240
    finally:
        await aeng.close()


async def test_async_engine_crash_and_close_fail_streams(loaded: LoadedModel) -> None:
    from engine import EngineDeadError

    eng = make_engine(loaded)
    aeng = AsyncEngine(eng)
    aeng.start()
    long = SamplingParams(temperature=0, max_new_tokens=200, ignore_eos=True)
    stream = aeng.submit(prompts(loaded)[0], long)
    await anext(stream)
    await aeng.close()  # closing while a reply streams ends it with a clear error
    with pytest.raises(EngineDeadError):
        async for _ in stream:
            pass
    with pytest.raises(EngineDeadError):
        await collect(aeng.submit(prompts(loaded)[0], GREEDY))

    def boom(out: Any) -> Any:
        raise RuntimeError("device lost")

    # A device that fails every step: each failed step ends its request, and steps
    # failing in a row stop the engine (test_engine_step_failures has the details).
    from engine import StepFailedError
    from engine.async_engine import MAX_CONSECUTIVE_STEP_FAILURES

    eng2 = make_engine(loaded)
    eng2.runner.launch = boom  # type: ignore[method-assign]
    aeng2 = AsyncEngine(eng2)
    aeng2.start()
    try:
        for _ in range(MAX_CONSECUTIVE_STEP_FAILURES - 1):
            with pytest.raises(StepFailedError, match="device lost"):
                await collect(aeng2.submit(prompts(loaded)[0], GREEDY))
            assert aeng2.running
        with pytest.raises(EngineDeadError, match="device lost"):
            await collect(aeng2.submit(prompts(loaded)[0], GREEDY))
        assert not aeng2.running
        with pytest.raises(EngineDeadError, match="device lost"):
            await collect(aeng2.submit(prompts(loaded)[1], GREEDY))
    finally:
        await aeng2.close()


async def test_a_request_that_cannot_be_prepared_fails_alone(
    loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing of a request that add_request refuses may stay queued: a sequence without
    # its detokenizer (or with params that are not SamplingParams) failed the next step,
    # and the async engine then failed every live request.
    eng = make_engine(loaded)
    with pytest.raises(InvalidRequestError, match="SamplingParams"):
        eng.add_request("dict", prompts(loaded)[0], {"temperature": 0})  # type: ignore[arg-type]
    assert not eng.has_unfinished()

    import engine.llm_engine as llm_engine

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no decoder for this tokenizer")

    with monkeypatch.context() as m:
        m.setattr(llm_engine, "IncrementalDetokenizer", broken)
        with pytest.raises(RuntimeError, match="no decoder"):
            eng.add_request("detok", prompts(loaded)[0], GREEDY)
    assert not eng.has_unfinished()

    aeng = AsyncEngine(eng)
    aeng.start()
    try:
        good = asyncio.create_task(collect(aeng.submit(prompts(loaded)[1], GREEDY)))
        with pytest.raises(InvalidRequestError, match="SamplingParams"):
            await collect(aeng.submit(prompts(loaded)[0], {"temperature": 0}))  # type: ignore[arg-type]
        _text, final = await good
        assert final.completion_tokens == 12 and aeng.running
    finally:
        await aeng.close()


async def test_close_aborts_live_requests_and_frees_their_blocks(loaded: LoadedModel) -> None:
    eng = make_engine(loaded)
    aeng = AsyncEngine(eng)
    aeng.start()
    long = SamplingParams(temperature=0, max_new_tokens=200, ignore_eos=True)
    streams = [aeng.submit(p, long, request_id="chat") for p in prompts(loaded)[:2]]
    for stream in streams:
        await anext(stream)
    await aeng.close()
    assert eng.block_manager.num_free_blocks == 128
    assert not eng.has_unfinished() and not eng.load.running and not eng.load.waiting
    # An engine driven again serves new requests only (its ids start over).
    again = AsyncEngine(eng)
    again.start()
    try:
        _text, final = await collect(again.submit(prompts(loaded)[2], GREEDY, request_id="chat"))
        assert final.completion_tokens == 12
    finally:
        await again.close()
    for stream in streams:
        await stream.aclose()


async def test_final_record_carries_the_callers_request_id(loaded: LoadedModel) -> None:
    aeng = AsyncEngine(make_engine(loaded))
    aeng.start()
    try:
        finals = await asyncio.gather(
            *(collect(aeng.submit(p, GREEDY, request_id="ticket-7")) for p in prompts(loaded)[:2])
        )
        assert [f.request_id for _t, f in finals] == ["ticket-7", "ticket-7"]
        _text, anonymous = await collect(aeng.submit(prompts(loaded)[0], GREEDY))
        assert anonymous.request_id
    finally:
        await aeng.close()


# ------------------------------------------------------------ botkit backend
def backend(path: Path, **kw: Any) -> Any:
    from botkit.backends.local_engine import LocalEngineBackend
    from botkit.config.settings import EngineSettings

    settings = EngineSettings(
        model=str(path),
        dtype="float32",
        device="cpu",
        # The tiny model's context is 256 tokens: start refuses a max_new_tokens (default
        # 256) that leaves no room for a prompt. Requests below set their own.
        **{"queue_timeout_seconds": 30.0, "max_new_tokens": 64, **kw},
    )
    return LocalEngineBackend(settings, kv_cache_blocks=64, max_num_seqs=1)


def chat(text: str, **kw: Any) -> Any:
    from botkit.backends.protocol import ChatMessage, GenerationRequest

    return GenerationRequest(messages=(ChatMessage("user", text),), **kw)


async def test_backend_loads_in_a_thread_that_ends_before_serving(
    ckpt: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An executor thread that ran the load would keep an OpenMP pool beside the engine
    # thread's, and libgomp then slows every CPU step (engine.cpu_threads.in_own_thread).
    import threading

    from engine.llm_engine import LLMEngine

    loaders: list[threading.Thread] = []
    real = LLMEngine.from_pretrained

    def watched(*args: Any, **kwargs: Any) -> LLMEngine:
        loaders.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(LLMEngine, "from_pretrained", watched)
    b = backend(ckpt[0])
    await b.start()
    try:
        (loader,) = loaders
        assert loader.name == "engine-load" and not loader.is_alive()
        assert [d async for d in b.generate(chat("Hi", max_new_tokens=2, temperature=0))]
    finally:
        await b.close()


async def test_backend_streams_and_maps_errors(ckpt: tuple[Path, Any]) -> None:
    from botkit.errors import BackendBusyError, BackendError

    b = backend(ckpt[0], queue_timeout_seconds=0.02)
    assert not await b.ready() and b.engine_report() is None
    await b.start()
    try:
        assert await b.ready() and b.count_tokens("Hello, how can I help") > 0
        parts = [d async for d in b.generate(chat("Hi", max_new_tokens=5, temperature=0))]
        assert b.last_record is not None and 1 <= b.last_record.completion_tokens <= 5
        report = b.engine_report()  # what the bot's metrics read
        assert report is not None and report["steps"] >= b.last_record.completion_tokens
        assert report["computed_tokens"] >= b.last_record.prompt_tokens
        assert (report["running"], report["waiting"], report["kv_blocks"]) == (0, 0, 64)
        assert all(isinstance(p, str) for p in parts)
        with pytest.raises(BackendError, match="top_p"):
            [d async for d in b.generate(chat("Hi", top_p=5.0))]
        with pytest.raises(BackendError, match="role"):
            from botkit.backends.protocol import ChatMessage, GenerationRequest

            bad = GenerationRequest(messages=(ChatMessage("wizard", "x"),))  # type: ignore[arg-type]
            [d async for d in b.generate(bad)]
        # busy: one long reply holds the only slot; the next request times out in the queue
        long = b.generate(chat("Tell me everything", max_new_tokens=200, temperature=0))
        await anext(long)
        with pytest.raises(BackendBusyError):
            [d async for d in b.generate(chat("Me too", max_new_tokens=2))]
        # closing the consumer aborts the sequence and frees its blocks
        await long.aclose()
        pool = b.engine.engine.block_manager
        for _ in range(200):
            if pool.num_free_blocks == 64:
                break
            await asyncio.sleep(0.01)
        assert pool.num_free_blocks == 64
    finally:
        await b.close()
    assert not await b.ready()


async def test_backend_missing_model_is_a_backend_error(tmp_path: Path) -> None:
    from botkit.errors import BackendError

    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendError, match="no-such-model"):
        await backend(missing).start()


# ------------------------------------------------------------------ CUDA only
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_decode_matches_eager_alone_and_transformers(ckpt: tuple[Path, Any]) -> None:
    lm = load_model(ckpt[0], dtype="float32", device="cuda")
    ps = prompts(lm)

    def run(graphs: bool, *batches: list[list[int]]) -> list[list[int]]:
        eng = LLMEngine(
            lm.model,
            lm.tokenizer,
            lm.model_config,
            EngineConfig(block_size=16, num_kv_blocks=64, max_num_seqs=8, cuda_graphs=graphs),
        )
        if graphs:  # every bucket captured, none left eager by a failed capture
            decode, prefill = eng.runner.graphs, eng.runner.prefill_graphs
            assert decode is not None and set(decode._graphs) == set(decode.buckets)
            assert prefill is not None and set(prefill._graphs) == set(prefill.buckets)
        else:
            assert eng.runner.graphs is None and eng.runner.prefill_graphs is None
        return [t for batch in batches for _, t in eng.generate(batch, GREEDY)]

    eager = run(False, ps)
    assert run(True, ps) == eager  # batch 4: bucket 4
    assert [run(True, [p])[0] for p in ps[:2]] == eager[:2]  # bucket 1
    assert run(True, ps[:3]) == eager[:3]  # padded bucket
    # A second turn on a cached prefix: a small prefill-only step, replayed from a graph.
    follow_up = [p + t[:3] for p, t in zip(ps[:2], eager[:2], strict=True)]
    assert run(True, ps[:2], follow_up) == run(False, ps[:2], follow_up)
    hf = ckpt[1].to("cuda")
    try:
        ids = torch.tensor([ps[0]], device="cuda")
        ref = hf.generate(
            ids, max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0
        )[0, len(ps[0]) :].tolist()
    finally:
        ckpt[1].to("cpu")
    assert eager[0] == ref


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_num_seqs": 0},
        {"block_size": -4},
        {"num_kv_blocks": True},
        {"gpu_memory_utilization": 1.5},
        {"queue_timeout_s": 0.0},
        {"max_model_len": 2.5},
        {"cuda_graph_prefill_tokens": -1},
        {"cuda_graph_prefill_tokens": 4097},
        {"cuda_graph_prefill_tokens": "256"},
    ],
)
def test_invalid_engine_config(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EngineConfig(**kwargs)
