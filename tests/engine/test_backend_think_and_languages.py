"""The local engine backend: a leading <think> block never reaches the customer, and the
model's declared languages (its card) are what the backend reports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

from botkit.backends.local_engine import LocalEngineBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest
from botkit.config.settings import EngineSettings


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")),
        build_tokenizer(),
        tmp_path_factory.mktemp("tiny-card"),
    )
    (path / "README.md").write_text("---\nlicense: mit\nlanguage:\n- en\n---\n# Tiny\n")
    return path


def backend(path: Path) -> LocalEngineBackend:
    settings = EngineSettings(
        model=str(path), dtype="float32", device="cpu", max_new_tokens=64, temperature=0
    )
    return LocalEngineBackend(settings, kv_cache_blocks=64, max_num_seqs=1)


_hook: Any = None


def script(engine: LocalEngineBackend, text: str) -> None:
    """Make the model write ``text`` (then EOS), one forced token per LM-head call."""
    assert engine.engine is not None
    llm = engine.engine.engine
    tokens = [*llm.tokenizer.encode(text, add_special_tokens=False), llm.tokenizer.eos_token_id]

    # Decode steps through the general forward (its LM head is the module hooked): the
    # lean CPU decoder reads the head's weight directly.
    llm.runner.cpu_decoder = None

    def force(_module: Any, _inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()  # [S, vocab]
        logits[:, tokens.pop(0) if tokens else llm.tokenizer.eos_token_id] = logits.max() + 100
        return logits

    global _hook
    if _hook is not None:
        _hook.remove()
    _hook = llm.runner.model.lm_head.register_forward_hook(force)


async def reply(engine: LocalEngineBackend) -> str:
    request = GenerationRequest(messages=(ChatMessage("user", "Hello"),))
    return "".join([delta async for delta in engine.generate(request)])


async def test_a_leading_think_block_is_dropped(
    ckpt: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = backend(ckpt)
    await engine.start()
    try:
        script(engine, "<think>\nThe order shipped.\n</think>\n\nYour order has shipped.")
        assert await reply(engine) == "Your order has shipped."
        script(engine, "<think>\nplanning forever")  # all reasoning, then EOS
        caplog.set_level(logging.WARNING, "botkit.backends.engine")
        assert await reply(engine) == ""
        assert "all reasoning" in caplog.text
        script(engine, "Refunds take five days.")  # no block: as written
        assert await reply(engine) == "Refunds take five days."
    finally:
        await engine.close()


async def test_the_backend_reports_the_cards_languages(ckpt: Path) -> None:
    engine = backend(ckpt)
    assert engine.model_languages is None  # before start
    await engine.start()
    try:
        assert engine.model_languages == ("en",)
    finally:
        await engine.close()
