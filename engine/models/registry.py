"""Model registry keyed by the Hugging Face ``architectures`` name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from engine.config import ModelConfig
from engine.errors import ModelLoadError, UnsupportedModelError
from engine.models.base import CausalLM

__all__ = ["config_from_hf", "get_model_class", "register_model", "supported_architectures"]

_M = TypeVar("_M", bound=type[CausalLM])
_REGISTRY: dict[str, type[CausalLM]] = {}


def register_model(*architectures: str) -> Callable[[_M], _M]:
    """Class decorator: serve checkpoints whose ``architectures[0]`` is one of these."""

    def wrap(cls: _M) -> _M:
        for name in architectures:
            _REGISTRY[name] = cls
        return cls

    return wrap


def supported_architectures() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get_model_class(architecture: str) -> type[CausalLM]:
    """The model class for an HF architecture name.

    Raises:
        UnsupportedModelError: nothing is registered under that name.
    """
    try:
        return _REGISTRY[architecture]
    except KeyError:
        raise UnsupportedModelError(
            f"architecture {architecture!r} is not supported; supported: "
            f"{', '.join(supported_architectures())}"
        ) from None


def config_from_hf(hf: Mapping[str, Any]) -> ModelConfig:
    """Parse a HF ``config.json`` dict with its architecture's rules applied.

    Raises:
        ModelLoadError: malformed config; UnsupportedModelError: unknown architecture.
    """
    archs = hf.get("architectures")
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        raise ModelLoadError("config.json has no 'architectures' list")
    return get_model_class(archs[0]).config_from_hf(hf)
