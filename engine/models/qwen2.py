"""Qwen2 / Qwen2.5: Llama with q/k/v bias (no o_proj bias), tied or untied embeddings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.config import ModelConfig
from engine.models.llama import LlamaForCausalLM
from engine.models.registry import register_model
from engine.models.sliding import cap_to_sliding_window

__all__ = ["Qwen2ForCausalLM"]


@register_model("Qwen2ForCausalLM")
class Qwen2ForCausalLM(LlamaForCausalLM):
    """Qwen2 differs from Llama only in its attention biases (hard-wired in HF's code)."""

    @classmethod
    def config_from_hf(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Llama parsing, plus q/k/v bias and the optional sliding window."""
        config = dataclasses.replace(
            ModelConfig.from_hf_config(hf), attention_bias=True, o_proj_bias=False
        )
        window = hf.get("sliding_window") if hf.get("use_sliding_window") else None
        return cap_to_sliding_window(config, window)
