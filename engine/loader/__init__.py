"""Model loading: local HF dirs, hub ids, GGUF files (converted once), the smollm2 alias."""

from engine.loader.api import LoadedModel, load_model, resolve_device, resolve_dtype
from engine.loader.gguf_convert import convert_gguf, default_cache_root
from engine.loader.source import SMOLLM2_ALIAS, resolve_source, smollm2_gguf_path
from engine.loader.weights import load_weights

__all__ = [
    "SMOLLM2_ALIAS",
    "LoadedModel",
    "convert_gguf",
    "default_cache_root",
    "load_model",
    "load_weights",
    "resolve_device",
    "resolve_dtype",
    "resolve_source",
    "smollm2_gguf_path",
]
