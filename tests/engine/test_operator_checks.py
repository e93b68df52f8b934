"""What a CPU operator is told at load and start: float16 refused on the CPU, a device
that is not here, a hostile chat template bounded, a missing chat template warned
about, a shard named outside its directory, and the start line with its sizes."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from pathlib import Path

import pytest
import torch
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

import engine.prompt as prompt
from botkit.backends.local_engine import LocalEngineBackend
from botkit.config.settings import EngineSettings
from botkit.errors import BackendError
from engine.errors import ModelLoadError
from engine.loader import load_model, resolve_device, resolve_dtype
from engine.prompt import encode_prompt
from engine.request_errors import InvalidRequestError

BOMB = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = build_tokenizer()
    return save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), tok, tmp_path_factory.mktemp("tiny")
    )


def copy_of(ckpt: Path, dst: Path) -> Path:
    shutil.copytree(ckpt, dst)
    return dst


def without_template(model_dir: Path) -> Path:
    (model_dir / "chat_template.jinja").unlink(missing_ok=True)
    config = model_dir / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    return model_dir


# -- M4: float16 on the CPU -----------------------------------------------------------------


def test_float16_on_the_cpu_is_refused_with_the_alternatives(ckpt: Path) -> None:
    # It ran, about 10x slower than float32 (no fast float16 CPU kernels), silently.
    with pytest.raises(ModelLoadError, match=r"float16.*CPU.*\"auto\".*\"bfloat16\""):
        resolve_dtype("float16", torch.device("cpu"))
    with pytest.raises(ModelLoadError, match="float16"):
        load_model(ckpt, device="cpu", dtype="float16")
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


# -- L4: devices that are not here ---------------------------------------------------------


def test_a_cuda_index_beyond_the_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ModelLoadError, match=r"'cuda:2'.*2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


# -- L5: a shard named outside the directory -------------------------------------------------


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.safetensors"])
def test_a_shard_outside_the_directory_is_named_as_such(tmp_path: Path, name: str) -> None:
    tok = build_tokenizer()
    model = tiny_model(tiny_config("LlamaForCausalLM"))
    path = save_checkpoint(model, tok, tmp_path / "sharded", max_shard_size="60KB")
    (tmp_path / "outside.safetensors").write_bytes(b"x")
    index = path / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = name
    index.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="outside its directory") as info:
        load_model(path, device="cpu")
    assert repr(name) in str(info.value)
    assert "model-00001" not in str(info.value)  # the shards that are there are not listed


# -- L3: no chat template -------------------------------------------------------------------


def test_a_checkpoint_without_a_chat_template_is_warned_about(
    ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = without_template(copy_of(ckpt, tmp_path / "base"))
    with caplog.at_level(logging.WARNING, logger="engine.loader.api"):
        loaded = load_model(base, device="cpu")
    assert loaded.chat_template is None
    assert any("no chat template" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="engine.loader.api"):
        load_model(ckpt, device="cpu")
    assert not any("no chat template" in r.getMessage() for r in caplog.records)


# -- L2: a hostile chat template ------------------------------------------------------------


def test_a_template_that_loops_forever_is_stopped(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompt, "RENDER_TIMEOUT_S", 0.3)
    loaded = load_model(ckpt, device="cpu")
    t = time.monotonic()
    with pytest.raises(InvalidRequestError, match=r"did not render within 0\.3 s"):
        encode_prompt(
            loaded.tokenizer,
            [{"role": "user", "content": "hi"}],
            vocab_size=loaded.model_config.vocab_size,
            chat_template=BOMB,
        )
    assert time.monotonic() - t < 5
    # An ordinary template is unaffected.
    ids = encode_prompt(
        loaded.tokenizer,
        [{"role": "user", "content": "hi"}],
        vocab_size=loaded.model_config.vocab_size,
        chat_template=loaded.chat_template,
    )
    assert ids


async def test_start_with_a_hostile_template_fails_and_keeps_the_loop_free(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The audit's template hung start for over 60 s on the event-loop thread.
    monkeypatch.setattr(prompt, "RENDER_TIMEOUT_S", 1.0)
    bomb = copy_of(ckpt, tmp_path / "bomb")
    (bomb / "chat_template.jinja").write_text(BOMB)
    b = LocalEngineBackend(EngineSettings(model=str(bomb), device="cpu", max_new_tokens=8))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        t = time.monotonic()
        with pytest.raises(BackendError, match="did not render within"):
            await asyncio.wait_for(b.start(), 30)
        taken = time.monotonic() - t
    finally:
        ticker.cancel()
    # The loop ran all along the rendering (about a tick per 50 ms of the start).
    assert ticks >= 0.5 * (taken - 0.2) / 0.05 - 2
    assert ticks >= 8


# -- L1: the start line ---------------------------------------------------------------------


async def test_the_start_line_gives_the_sizes_and_warns_of_a_short_context(
    ckpt: Path, caplog: pytest.LogCaptureFixture
) -> None:
    b = LocalEngineBackend(
        EngineSettings(model=str(ckpt), device="cpu", dtype="float32", max_new_tokens=8),
        kv_cache_blocks=8,  # 8 x 16 = 128 tokens, of the model's 256
    )
    with caplog.at_level(logging.INFO, logger="botkit.backends.engine"):
        await b.start()
    await b.close()
    lines = [r.getMessage() for r in caplog.records]
    (start,) = [m for m in lines if "loaded on" in m]
    for part in ("dtype float32", "context 128 tokens", "(model: 256)", "8 blocks = 128 tokens"):
        assert part in start, start
    assert "max_num_seqs" in start and "threads" in start
    assert any("fewer than the model's context" in m and "kv_cache_blocks = 16" in m for m in lines)
