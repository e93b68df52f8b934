"""The local engine backend after failed engine steps: one failure fails one reply and the
bot serves on (ready, up); steps failing in a row make it not ready, with ``up`` 0 and
the failures counted in the report the metrics read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

import engine.async_engine as async_engine
from botkit.backends.local_engine import LocalEngineBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest, StopsForGood
from botkit.config.settings import EngineSettings
from botkit.errors import BackendError


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = build_tokenizer()
    return save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), tok, tmp_path_factory.mktemp("tiny")
    )


@pytest.fixture
async def backend(ckpt: Path) -> AsyncIterator[LocalEngineBackend]:
    b = LocalEngineBackend(
        EngineSettings(model=str(ckpt), device="cpu", dtype="float32", max_new_tokens=8),
        kv_cache_blocks=64,
    )
    await b.start()
    yield b
    await b.close()


async def reply(b: LocalEngineBackend) -> list[str]:
    request = GenerationRequest(messages=(ChatMessage("user", "Hi"),), temperature=0)
    return [d async for d in b.generate(request)]


def break_steps(b: LocalEngineBackend, failing: int) -> None:
    assert b.engine is not None
    engine = b.engine.engine
    original, left = engine.step, [failing]

    def step() -> Any:
        if left[0] > 0:
            left[0] -= 1
            original()  # the step runs, then its result is lost
            raise RuntimeError("simulated out of memory")
        return original()

    engine.step = step  # type: ignore[method-assign]


async def test_one_failed_step_fails_one_reply_and_the_bot_serves_on(
    backend: LocalEngineBackend,
) -> None:
    break_steps(backend, 1)
    with pytest.raises(BackendError, match="engine step failed: simulated out of memory"):
        await reply(backend)
    assert await backend.ready()
    assert await reply(backend)  # served, not "the engine stopped"
    report = backend.engine_report()
    assert report is not None and (report["step_failures"], report["up"]) == (1, 1)


async def test_steps_failing_in_a_row_make_the_backend_not_ready(
    backend: LocalEngineBackend,
) -> None:
    break_steps(backend, async_engine.MAX_CONSECUTIVE_STEP_FAILURES)
    for _ in range(async_engine.MAX_CONSECUTIVE_STEP_FAILURES):
        with pytest.raises(BackendError):
            await reply(backend)
    assert not await backend.ready()
    report = backend.engine_report()
    assert report is not None and report["up"] == 0
    assert report["step_failures"] == async_engine.MAX_CONSECUTIVE_STEP_FAILURES


async def test_only_steps_failing_in_a_row_stop_the_backend_for_good(
    backend: LocalEngineBackend,
) -> None:
    # What Bot.run watches (StopsForGood): then only a new process can answer again.
    assert isinstance(backend, StopsForGood) and backend.stopped_for_good() is None
    break_steps(backend, 1)
    with pytest.raises(BackendError):
        await reply(backend)
    assert backend.stopped_for_good() is None
    break_steps(backend, async_engine.MAX_CONSECUTIVE_STEP_FAILURES)
    for _ in range(async_engine.MAX_CONSECUTIVE_STEP_FAILURES):
        with pytest.raises(BackendError):
            await reply(backend)
    limit = async_engine.MAX_CONSECUTIVE_STEP_FAILURES
    reason = backend.stopped_for_good() or ""
    assert f"its steps failed {limit} times in a row" in reason
    assert "simulated out of memory" in reason


async def test_stopped_for_good_names_a_crash_that_was_no_failed_step(
    backend: LocalEngineBackend,
) -> None:
    assert backend.engine is not None
    engine = backend.engine.engine

    def step() -> Any:
        raise KeyboardInterrupt("the step loop itself ended")

    engine.step = step  # type: ignore[method-assign]
    with pytest.raises(BackendError):
        await reply(backend)
    reason = backend.stopped_for_good() or ""
    assert "its step loop crashed: KeyboardInterrupt: the step loop itself ended" in reason
    assert "in a row" not in reason
