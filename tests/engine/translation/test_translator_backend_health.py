"""The engine translator backend after its worker crashed: ``stopped_for_good`` says so
(the bot then stops for its supervisor to restart it), naming the model and the crash;
None before start, while serving and after close. Tiny random M2M100, fp32, CPU."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import torch
from seq2seq_tiny import SENTENCES, build_m2m100

from botkit.backends.local_translator import EngineTranslator
from botkit.backends.protocol import StopsForGood
from botkit.language import TranslatorSettings


class WorkerKilled(BaseException):
    """Stands for what no ``except Exception`` catches (SystemExit, a C-level abort...)."""


@pytest.fixture(scope="module")
def m2m100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m2m100") / "m2m100"
    build_m2m100(path)
    return path


async def test_a_crashed_translation_worker_stops_the_translator_for_good(m2m100: Path) -> None:
    translator = EngineTranslator(
        TranslatorSettings(kind="engine", model=(str(m2m100),), device="cpu", dtype="float32")
    )
    assert isinstance(translator, StopsForGood) and translator.stopped_for_good() is None
    await translator.start()
    try:
        assert translator.stopped_for_good() is None
        assert len(await translator.translate(SENTENCES[:2], "en", "es")) == 2
        assert translator.stopped_for_good() is None
        (model,) = translator._models

        def killed(tokens: torch.Tensor, state: Any) -> torch.Tensor:
            raise WorkerKilled("the device is gone")

        model.engine._decode_step = killed
        with pytest.raises(WorkerKilled):
            await translator.translate(SENTENCES[:2], "en", "es")
        for _ in range(500):  # the caller hears of the crash before the worker ends
            if (reason := translator.stopped_for_good()) is not None:
                break
            await asyncio.sleep(0.01)
        assert reason is not None
        assert str(m2m100) in reason or model.name in reason
        assert "its worker crashed: WorkerKilled: the device is gone" in reason
    finally:
        await translator.close()
    assert translator.stopped_for_good() is None
