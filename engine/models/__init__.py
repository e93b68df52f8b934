"""Engine models, registered by Hugging Face ``architectures`` name.

Adding an architecture is one module that subclasses ``CausalLM`` (usually
``LlamaForCausalLM``), decorates it with ``@register_model("XForCausalLM")``, and is
imported below.
"""

from engine.models import llama, mistral, qwen2
from engine.models.base import CausalLM
from engine.models.llama import LlamaForCausalLM
from engine.models.mistral import MistralForCausalLM
from engine.models.qwen2 import Qwen2ForCausalLM
from engine.models.registry import (
    config_from_hf,
    get_model_class,
    register_model,
    supported_architectures,
)

__all__ = [
    "CausalLM",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "config_from_hf",
    "get_model_class",
    "llama",
    "mistral",
    "qwen2",
    "register_model",
    "supported_architectures",
]
