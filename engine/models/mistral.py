"""Mistral: Llama layers with an optional sliding attention window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config import ModelConfig
from engine.models.llama import LlamaForCausalLM
from engine.models.registry import register_model
from engine.models.sliding import cap_to_sliding_window

__all__ = ["MistralForCausalLM"]


@register_model("MistralForCausalLM")
class MistralForCausalLM(LlamaForCausalLM):
    """Same weights and layers as Llama (``head_dim`` may differ from hidden/heads)."""

    @classmethod
    def config_from_hf(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Llama parsing, with the context capped at the sliding window if there is one."""
        return cap_to_sliding_window(ModelConfig.from_hf_config(hf), hf.get("sliding_window"))
