"""A tiny Llama loaded through ``engine.load_model`` and an engine over it whose LM head a
test steers, for the tests of what ends a reply (turn tokens, sentence ends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

from engine import EngineConfig, LLMEngine, LoadedModel, load_model

__all__ = ["Hook", "hooked_engine", "tiny_llama"]

# A forward hook on the LM head: (module, inputs, logits [S, vocab]) -> the logits used.
Hook = Callable[[Any, Any, torch.Tensor], torch.Tensor]


def tiny_llama(tmp_path_factory: pytest.TempPathFactory, name: str) -> LoadedModel:
    """A tiny random Llama with the ChatML tokenizer, saved in a new folder ``name`` and
    loaded as the engine loads it (fp32, CPU)."""
    path = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")),
        build_tokenizer(),
        tmp_path_factory.mktemp(name),
    )
    return load_model(path, dtype="float32", device="cpu")


def hooked_engine(loaded: LoadedModel, force: Hook) -> LLMEngine:
    """An engine over ``loaded`` whose LM head's logits go through ``force``. The hook stays
    on the model, which a module's tests share: each test hooks it anew, and the newest
    hook, run last, decides."""
    loaded.model.lm_head.register_forward_hook(force)
    return LLMEngine(
        loaded.model,
        loaded.tokenizer,
        loaded.model_config,
        EngineConfig(block_size=4, num_kv_blocks=64),
        chat_template=loaded.chat_template,
    )
