"""The chat engine and a translator in one process on the CPU: one thread runs both.

Two long-lived threads that run parallel torch ops keep two OpenMP pools, and libgomp then
slows every parallel op of both (``engine.cpu_worker``; the numbers come from
``benchmarks/engine.py --only-cpu-pools``). These tests check the structure, never a time:
every chat step and every translation decode step runs on the one worker thread, the chat
steps between the translation's decode steps (neither waits for the other's whole job),
and closing, cancelling or crashing either leaves the other serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from file_modules import load
from seq2seq_tiny import SENTENCES, build_m2m100

from engine import (
    AsyncEngine,
    EngineConfig,
    EngineDeadError,
    FinalRecord,
    LLMEngine,
    LoadedModel,
    SamplingParams,
    StepFailedError,
    load_model,
)
from engine.async_engine import MAX_CONSECUTIVE_STEP_FAILURES
from engine.cpu_worker import CpuWorker, shared_cpu_worker
from engine.translation import AsyncTranslator, TranslationEngine

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
MAX_NEW = 10  # translation tokens per sentence
CHAT_TOKENS = 40  # more chat steps than a translation round has decode steps
PROMPT = [{"role": "user", "content": "Where is my order?"}]


def _hf_tiny() -> ModuleType:
    return load("engine/hf_tiny.py")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = _hf_tiny()
    hf = tiny.tiny_model(tiny.tiny_config("LlamaForCausalLM"))
    path: Path = tiny.save_checkpoint(hf, tiny.build_tokenizer(), tmp_path_factory.mktemp("llama"))
    return path


@pytest.fixture(scope="module")
def chat_model(llama: Path) -> LoadedModel:
    return load_model(llama, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def m2m100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m2m100") / "m2m100"
    build_m2m100(path)
    return path


def chat_engine(loaded: LoadedModel) -> LLMEngine:
    config = EngineConfig(block_size=4, num_kv_blocks=128)
    return LLMEngine(loaded.model, loaded.tokenizer, loaded.model_config, config,
                     chat_template=loaded.chat_template)  # fmt: skip


async def collect(stream: Any) -> tuple[str, FinalRecord]:
    text_and_final: tuple[str, FinalRecord] = await _hf_tiny().collect(stream)
    return text_and_final


def greedy(n: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)


class Steps:
    """Records ("chat" | "tr", thread) for every chat step and translation decode step;
    ``hold`` keeps the first chat step waiting until released."""

    def __init__(self, llm: LLMEngine, translation: TranslationEngine) -> None:
        self.events: list[tuple[str, threading.Thread]] = []
        self.in_step = threading.Event()
        self.release = threading.Event()
        self.release.set()
        step, decode = llm.step, translation._decode_step

        def chat_step() -> Any:
            self.events.append(("chat", threading.current_thread()))
            self.in_step.set()
            assert self.release.wait(10)
            return step()

        def tr_step(tokens: torch.Tensor, state: Any) -> torch.Tensor:
            self.events.append(("tr", threading.current_thread()))
            return decode(tokens, state)

        llm.step = chat_step  # type: ignore[method-assign]
        translation._decode_step = tr_step

    def kinds(self) -> str:
        return "".join("c" if kind == "chat" else "t" for kind, _ in self.events)


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 - polled: the state is another thread's
            await asyncio.sleep(0.001)


async def test_chat_and_translation_steps_share_one_thread_and_interleave(
    chat_model: LoadedModel, m2m100: Path
) -> None:
    llm = chat_engine(chat_model)
    expected_chat = chat_engine(chat_model).generate([PROMPT], greedy(CHAT_TOKENS))[0][0]
    translation = TranslationEngine.load(m2m100, dtype="float32", device="cpu")
    expected = translation.translate(SENTENCES, "en", "es", max_new_tokens=MAX_NEW)
    steps = Steps(llm, translation)
    steps.release.clear()
    aeng = AsyncEngine(llm)  # both on the process's shared CPU worker, as in the bot
    translator = AsyncTranslator(translation, max_new_tokens=MAX_NEW)
    worker = shared_cpu_worker()
    assert aeng._worker is worker and translator._worker is worker
    aeng.start()
    try:
        chat = asyncio.create_task(collect(aeng.submit(PROMPT, greedy(CHAT_TOKENS))))
        assert await asyncio.to_thread(steps.in_step.wait, 10)  # the worker is in a step
        translated = asyncio.create_task(translator.translate(SENTENCES, "en", "es"))
        await until(lambda: translator._queued > 0)
        steps.release.set()
        assert await translated == expected
        text, final = await chat
    finally:
        await aeng.close()
        await translator.close()
    assert text == expected_chat and final.completion_tokens == CHAT_TOKENS
    threads = {thread for _, thread in steps.events}
    assert len(threads) == 1
    (thread,) = threads
    assert thread.name == "engine-step"
    assert not any(t.name in ("translator", "engine-load") for t in threading.enumerate())
    # The first chat step, then each translation decode step right after a chat step:
    # the round let the chat engine step before each of its steps.
    kinds = steps.kinds()
    first, last = kinds.index("t"), kinds.rindex("t")
    assert kinds[0] == "c" and first > 0 and kinds[first - 1 : last + 1].replace("ct", "") == ""
    assert aeng not in worker._clients and translator not in worker._clients


async def test_closing_or_cancelling_the_chat_mid_translation(
    chat_model: LoadedModel, m2m100: Path
) -> None:
    worker = CpuWorker("engine-step")
    llm = chat_engine(chat_model)
    translation = TranslationEngine.load(m2m100, dtype="float32", device="cpu")
    expected = translation.translate(SENTENCES, "en", "es", max_new_tokens=MAX_NEW)
    steps = Steps(llm, translation)
    aeng = AsyncEngine(llm, cpu_worker=worker)
    translator = AsyncTranslator(translation, max_new_tokens=MAX_NEW, cpu_worker=worker)
    aeng.start()
    thread = worker.thread
    assert thread is not None
    try:
        # A chat stream closed by its consumer while a round runs: its abort is applied
        # between the round's decode steps, and its KV blocks come back.
        steps.release.clear()
        cut = aeng.submit(PROMPT, greedy(200))
        first = asyncio.ensure_future(anext(cut))
        assert await asyncio.to_thread(steps.in_step.wait, 10)
        translated = asyncio.create_task(translator.translate(SENTENCES, "en", "es"))
        await until(lambda: translator._queued > 0)
        steps.release.set()
        await first
        await cut.aclose()
        assert await translated == expected
        await until(lambda: llm.block_manager.num_free_blocks == 128)
        # The chat engine closed while a round runs: its stream ends, the round does not.
        steps.release.clear()
        steps.in_step.clear()
        stream = aeng.submit(PROMPT, greedy(200))
        live = asyncio.create_task(collect(stream))
        assert await asyncio.to_thread(steps.in_step.wait, 10)
        translated = asyncio.create_task(translator.translate(SENTENCES, "en", "es"))
        await until(lambda: translator._queued > 0)
        closing = asyncio.create_task(aeng.close())
        steps.release.set()
        await closing
        with pytest.raises(EngineDeadError):
            await live
        assert await translated == expected
        assert not llm.has_unfinished() and llm.block_manager.num_free_blocks == 128
        assert await translator.translate(SENTENCES[:2], "en", "es") == expected[:2]
        assert worker.thread is thread  # still serving the translator
    finally:
        await aeng.close()
        await translator.close()
    thread.join(10)
    assert not thread.is_alive() and worker.thread is None  # its OpenMP pool went with it


class WorkerKilled(BaseException):
    """Stands for what no ``except Exception`` catches (SystemExit, a C-level abort...)."""


async def test_a_crash_of_either_leaves_the_other_serving(
    chat_model: LoadedModel, m2m100: Path
) -> None:
    worker = CpuWorker("engine-step")
    llm = chat_engine(chat_model)
    translation = TranslationEngine.load(m2m100, dtype="float32", device="cpu")
    expected = translation.translate(SENTENCES[:2], "en", "es", max_new_tokens=MAX_NEW)
    decode = translation._decode_step

    def killed(tokens: torch.Tensor, state: Any) -> torch.Tensor:
        raise WorkerKilled("the translation worker is gone")

    translation._decode_step = killed
    aeng = AsyncEngine(llm, cpu_worker=worker)
    translator = AsyncTranslator(translation, max_new_tokens=MAX_NEW, cpu_worker=worker)
    aeng.start()
    try:
        with pytest.raises(WorkerKilled):
            await translator.translate(SENTENCES[:2], "en", "es")
        with pytest.raises(EngineDeadError, match="WorkerKilled"):
            await translator.translate(SENTENCES[:2], "en", "es")
        _text, final = await collect(aeng.submit(PROMPT, greedy(8)))  # the chat still works
        assert final.completion_tokens == 8 and aeng.running
    finally:
        await translator.close()
        await aeng.close()

    translation._decode_step = decode
    llm2 = chat_engine(chat_model)

    def boom(out: Any) -> Any:
        raise RuntimeError("device lost")

    llm2.runner.launch = boom  # type: ignore[method-assign]
    aeng2 = AsyncEngine(llm2, cpu_worker=worker)
    translator2 = AsyncTranslator(translation, max_new_tokens=MAX_NEW, cpu_worker=worker)
    aeng2.start()
    try:
        for _ in range(MAX_CONSECUTIVE_STEP_FAILURES - 1):  # each failed step fails its request
            with pytest.raises(StepFailedError, match="device lost"):
                await collect(aeng2.submit(PROMPT, greedy(8)))
        with pytest.raises(EngineDeadError, match="device lost"):  # then the engine stops
            await collect(aeng2.submit(PROMPT, greedy(8)))
        assert not aeng2.running
        assert await translator2.translate(SENTENCES[:2], "en", "es") == expected
    finally:
        await aeng2.close()
        await translator2.close()
    await until(lambda: worker.thread is None)


async def test_off_the_cpu_each_keeps_a_thread_of_its_own(m2m100: Path) -> None:
    """The GPU path is unchanged: a translator whose engine is not on the CPU serves on
    its own "translator" thread (a stand-in engine reports a CUDA device)."""
    translation = TranslationEngine.load(m2m100, dtype="float32", device="cpu")

    class OnCuda:
        device = torch.device("cuda")  # no index: binding the thread to it is a no-op

        def __getattr__(self, name: str) -> Any:
            return getattr(translation, name)

    translator = AsyncTranslator(OnCuda(), max_new_tokens=MAX_NEW)  # type: ignore[arg-type]
    assert translator._worker is None
    try:
        assert len(await translator.translate(SENTENCES[:1], "en", "es")) == 1
        assert translator._thread is not None and translator._thread.name == "translator"
    finally:
        await translator.close()
    assert not translator._thread.is_alive()


async def test_the_bots_backends_share_the_thread(llama: Path, m2m100: Path) -> None:
    """The bot starts the chat backend and the engine translator on their own; on the
    CPU both still run on the process's one worker thread."""
    from botkit.backends.local_engine import LocalEngineBackend
    from botkit.backends.local_translator import EngineTranslator
    from botkit.backends.protocol import ChatMessage, GenerationRequest
    from botkit.config.settings import EngineSettings
    from botkit.language import TranslatorSettings

    chat = LocalEngineBackend(
        EngineSettings(model=str(llama), dtype="float32", device="cpu", max_new_tokens=64),
        kv_cache_blocks=64,
    )
    translator = EngineTranslator(
        TranslatorSettings(kind="engine", model=(str(m2m100),), device="cpu", dtype="float32")
    )
    await chat.start()
    await translator.start()
    try:
        aeng, (model,) = chat.engine, translator._models
        assert aeng is not None and aeng._worker is model._worker is shared_cpu_worker()
        steps = Steps(aeng.engine, model.engine)
        request = GenerationRequest(
            messages=(ChatMessage("user", "Where is my order?"),), max_new_tokens=16
        )

        async def reply() -> str:
            return "".join([d async for d in chat.generate(request)])

        text, translated = await asyncio.gather(
            reply(), translator.translate(SENTENCES[:3], "en", "es")
        )
        assert text and len(translated) == 3
    finally:
        await chat.close()
        await translator.close()
    assert {kind for kind, _ in steps.events} == {"chat", "tr"}
    assert len({thread for _, thread in steps.events}) == 1
    assert steps.events[0][1].name == "engine-step"
