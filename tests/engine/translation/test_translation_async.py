"""AsyncTranslator: worker thread, coalescing of concurrent requests, failure isolation."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from seq2seq_tiny import SENTENCES, build_m2m100

from engine.request_errors import EngineBusyError, EngineDeadError, InvalidRequestError
from engine.translation import (
    AsyncTranslator,
    TranslationEngine,
    TranslationRequest,
    UnsupportedLanguagePairError,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
MAX_NEW = 10
# zh-CN, not zh-TW: M2M100 writes Chinese only in Simplified (a zh-TW target is refused).
PAIRS = [("en", "es"), ("fr", "de"), ("de", "en"), ("es", "zh-CN")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("async") / "m2m100"
    build_m2m100(path)
    return path


@pytest.fixture(scope="module")
def engine(checkpoint: Path) -> TranslationEngine:
    return TranslationEngine.load(checkpoint, dtype="float32", device="cpu")


class SlowEngine:
    """Delegates to the real engine but records batches and holds the first one back."""

    def __init__(self, engine: TranslationEngine) -> None:
        self.engine = engine
        self.batches: list[list[TranslationRequest]] = []
        self.started = threading.Event()  # the first batch reached the engine
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def translate_requests(self, requests: list[TranslationRequest], **kw: Any) -> list[str]:
        self.batches.append(list(requests))
        self.started.set()
        self.release.wait(timeout=10)
        if any(r.text == "boom" for r in requests):
            raise RuntimeError("batch failed")
        return self.engine.translate_requests(requests, **kw)


async def test_load_and_translate(checkpoint: Path, engine: TranslationEngine) -> None:
    translator = await AsyncTranslator.load(
        checkpoint, dtype="float32", device="cpu", max_new_tokens=MAX_NEW
    )
    try:
        assert translator.name == str(checkpoint)
        assert translator.supports("en", "es") and not translator.supports("en", "tlh")
        out = await translator.translate(SENTENCES, "en", "es")
        assert out == engine.translate(SENTENCES, "en", "es", max_new_tokens=MAX_NEW)
        assert await translator.translate([], "en", "es") == []
    finally:
        await translator.close()


async def test_concurrent_requests_share_batches(engine: TranslationEngine) -> None:
    """Requests arriving while a batch runs go into the next batch together, any pairs."""
    slow = SlowEngine(engine)
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW)  # type: ignore[arg-type]
    first = asyncio.create_task(translator.translate([SENTENCES[0]], "en", "es"))
    assert await asyncio.to_thread(slow.started.wait, 10)
    calls = [
        translator.translate([text], *PAIRS[i % len(PAIRS)]) for i, text in enumerate(SENTENCES * 3)
    ]
    tasks = [asyncio.create_task(c) for c in calls]
    await asyncio.sleep(0.05)  # all 18 are queued behind the first batch
    slow.release.set()
    results = await asyncio.gather(first, *tasks)
    await translator.close()
    assert len(slow.batches) == 2 and len(slow.batches[1]) == 18
    expected = [
        engine.translate([text], *PAIRS[i % len(PAIRS)], max_new_tokens=MAX_NEW)[0]
        for i, text in enumerate(SENTENCES * 3)
    ]
    assert [r[0] for r in results[1:]] == expected


async def test_event_loop_stays_responsive(engine: TranslationEngine) -> None:
    translator = AsyncTranslator(engine, beam_size=4, max_new_tokens=MAX_NEW)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    tick_task = asyncio.create_task(ticker())
    await translator.translate(SENTENCES * 2, "en", "es")
    tick_task.cancel()
    await translator.close()
    assert ticks > 3


async def test_unsupported_pair_and_bad_input_fail_at_once(engine: TranslationEngine) -> None:
    translator = AsyncTranslator(engine)
    translator.check_pair("en", "es")
    with pytest.raises(UnsupportedLanguagePairError, match="'xx' -> 'es'"):
        translator.check_pair("xx", "es")
    with pytest.raises(UnsupportedLanguagePairError, match="'en' -> 'tlh'"):
        await translator.translate(["Hello"], "en", "tlh")
    with pytest.raises(InvalidRequestError):
        await translator.translate("Hello", "en", "es")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        await translator.translate(["Hello"], "en", "es", beam_size=0)
    assert not translator._started  # nothing reached the worker
    await translator.close()


async def test_failed_batch_fails_only_its_callers(engine: TranslationEngine) -> None:
    slow = SlowEngine(engine)
    slow.release.set()
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="batch failed"):
        await translator.translate(["boom"], "en", "es")
    assert await translator.translate(["Hello"], "en", "es") == engine.translate(
        ["Hello"], "en", "es", max_new_tokens=MAX_NEW
    )
    await translator.close()


async def test_cancelled_caller_does_not_disturb_others(engine: TranslationEngine) -> None:
    slow = SlowEngine(engine)
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW)  # type: ignore[arg-type]
    blocker = asyncio.create_task(translator.translate(["Hello"], "en", "es"))
    assert await asyncio.to_thread(slow.started.wait, 10)
    doomed = asyncio.create_task(translator.translate([SENTENCES[1]], "en", "es"))
    kept = asyncio.create_task(translator.translate([SENTENCES[2]], "en", "es"))
    await asyncio.sleep(0.02)
    doomed.cancel()
    slow.release.set()
    await blocker
    assert (await kept) == engine.translate([SENTENCES[2]], "en", "es", max_new_tokens=MAX_NEW)
    assert doomed.cancelled()
    await translator.close()


async def test_closed_translator_refuses_work(engine: TranslationEngine) -> None:
    translator = AsyncTranslator(engine, max_new_tokens=MAX_NEW)
    assert await translator.translate(["Hello"], "en", "es")
    await translator.close()
    await translator.close()  # idempotent
    with pytest.raises(EngineDeadError):
        await translator.translate(["Hello"], "en", "es")


async def test_full_queue_is_busy_and_identity_skips_the_queue(engine: TranslationEngine) -> None:
    slow = SlowEngine(engine)
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW, max_queued_sentences=4)  # type: ignore[arg-type]
    running = asyncio.create_task(translator.translate(SENTENCES[:3], "en", "es"))
    assert await asyncio.to_thread(slow.started.wait, 10)
    with pytest.raises(EngineBusyError, match="queue is full"):
        await translator.translate(SENTENCES[3:5], "en", "es")
    assert await translator.translate(["Hola"], "es", "es-MX") == ["Hola"]  # no queue
    slow.release.set()
    await running
    assert len(await translator.translate(SENTENCES[3:5], "en", "es")) == 2
    await translator.close()


def test_closed_caller_loop_does_not_kill_the_worker(engine: TranslationEngine) -> None:
    """A caller whose event loop ended before its batch did (a request handler that timed
    out, then asyncio.run returned) must not take the worker thread with it."""
    slow = SlowEngine(engine)
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW)  # type: ignore[arg-type]

    async def abandon() -> None:
        task = asyncio.ensure_future(translator.translate([SENTENCES[0]], "en", "es"))
        assert await asyncio.to_thread(slow.started.wait, 10)
        task.cancel()

    asyncio.run(abandon())  # that loop is closed now; the worker still holds its job
    slow.release.set()

    async def later() -> list[str]:
        try:
            return await asyncio.wait_for(translator.translate(["Hello"], "en", "es"), 10)
        finally:
            await translator.close()

    assert asyncio.run(later()) == engine.translate(["Hello"], "en", "es", max_new_tokens=MAX_NEW)


class WorkerKilled(BaseException):
    """Stands for what no ``except Exception`` catches (SystemExit, a C-level abort...)."""


async def test_dead_worker_fails_every_caller_fast(engine: TranslationEngine) -> None:
    slow = SlowEngine(engine)
    real = slow.translate_requests

    def fatal(requests: list[TranslationRequest], **kw: Any) -> list[str]:
        out = real(requests, **kw)
        if any(r.text == "fatal" for r in requests):
            raise WorkerKilled("the worker thread is gone")
        return out

    slow.translate_requests = fatal  # type: ignore[method-assign]
    translator = AsyncTranslator(slow, max_new_tokens=MAX_NEW)  # type: ignore[arg-type]
    first = asyncio.create_task(translator.translate(["fatal"], "en", "es"))
    assert await asyncio.to_thread(slow.started.wait, 10)
    queued = asyncio.create_task(translator.translate([SENTENCES[1]], "en", "es"))
    await asyncio.sleep(0.02)  # queued behind the fatal batch
    slow.release.set()
    done, _ = await asyncio.wait([first, queued], timeout=10)
    assert len(done) == 2  # nobody waits forever on a dead worker
    assert isinstance(first.exception(), WorkerKilled)
    assert isinstance(queued.exception(), EngineDeadError)
    with pytest.raises(EngineDeadError, match=r"worker stopped.*WorkerKilled"):
        await asyncio.wait_for(translator.translate(["Hello"], "en", "es"), 1)
    await translator.close()
