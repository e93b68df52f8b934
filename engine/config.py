"""Model configuration: the few numbers the engine needs, parsed from a HF ``config.json``.

Both config layouts are read: the legacy one (``rope_theta`` + ``rope_scaling``,
``torch_dtype``) and the transformers-5 one (``rope_parameters``, ``dtype``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.errors import ModelLoadError, UnsupportedModelError

__all__ = [
    "MAX_POSITION",
    "MAX_VOCAB_SIZE",
    "SUPPORTED_ROPE_TYPES",
    "ModelConfig",
    "parse_dtype",
    "positive_float",
    "positive_int",
    "token_ids",
]

# Rope scaling types kernels.rope_cos_sin implements.
SUPPORTED_ROPE_TYPES = ("linear", "llama3")
# Sanity bounds for numbers that size tensors before any weight is read: the rope table is
# [max_position, head_dim] float32, built eagerly (a hostile 1e11 would try to allocate
# 800 GB). The longest real contexts are ~1e7 tokens and the largest vocabularies ~3e5.
MAX_POSITION = 1 << 24
MAX_VOCAB_SIZE = 1 << 24

_ROPE_KEYS: dict[str, tuple[str, ...]] = {
    "linear": ("factor",),
    "llama3": (
        "factor",
        "low_freq_factor",
        "high_freq_factor",
        "original_max_position_embeddings",
    ),
}

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def parse_dtype(name: str) -> torch.dtype:
    """Map a dtype name (``"bfloat16"``, ``"bf16"``, ``"torch.float16"``...) to torch.

    Raises:
        ValueError: the name is not a supported floating dtype.
    """
    key = name.lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"unsupported dtype {name!r}; use one of float32, float16, bfloat16")
    return _DTYPES[key]


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of a decoder-only Llama-family model.

    Attributes:
        architecture: HF ``architectures[0]`` name, the model registry key.
        max_position: longest context the engine may run (capped at the sliding window
            for models that have one, so full attention stays exact).
        rope_scaling: HF-style scaling dict (``rope_type`` key) or None.
        attention_bias: whether q/k/v projections have a bias.
        o_proj_bias: whether the attention output projection has a bias.
        dtype: dtype of the weights at run time (the loader resolves ``"auto"``).
        eos_token_ids: every token id that ends generation.
    """

    architecture: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    o_proj_bias: bool = False
    dtype: torch.dtype = torch.float32
    eos_token_ids: tuple[int, ...] = field(default_factory=tuple)
    bos_token_id: int | None = None

    @classmethod
    def from_hf_config(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Build a config from a parsed HF ``config.json``.

        Architecture-specific rules (Qwen2's q/k/v bias, sliding windows) are applied by
        the model class: use ``engine.models.config_from_hf`` to get them.

        Raises:
            ModelLoadError: a required key is missing or malformed.
            UnsupportedModelError: the config asks for something the engine lacks
                (another activation, MLP bias, partial rotary, an unknown rope type).
        """
        archs = hf.get("architectures")
        if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
            raise ModelLoadError("config.json has no 'architectures' list")
        hidden = positive_int(hf, "hidden_size")
        heads = positive_int(hf, "num_attention_heads")
        kv_heads = positive_int(hf, "num_key_value_heads", default=heads)
        if heads % kv_heads:
            raise ModelLoadError(
                f"num_attention_heads ({heads}) is not a multiple of "
                f"num_key_value_heads ({kv_heads})"
            )
        head_dim = positive_int(hf, "head_dim", default=hidden // heads)
        if head_dim % 2:  # rotate-half rotary embeddings pair the two halves of a head
            raise ModelLoadError(f"config.json: 'head_dim' must be even, got {head_dim}")
        act = hf.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise UnsupportedModelError(f"hidden_act {act!r} is not supported (only silu)")
        if hf.get("mlp_bias"):
            raise UnsupportedModelError("mlp_bias=true is not supported")
        if positive_float(hf, "partial_rotary_factor", 1.0) != 1.0:
            raise UnsupportedModelError("partial_rotary_factor != 1 is not supported")
        theta, scaling = _rope(hf)
        bias = bool(hf.get("attention_bias", False))
        dtype_name = hf.get("dtype") or hf.get("torch_dtype") or "float32"
        try:
            dtype = parse_dtype(str(dtype_name))
        except ValueError as exc:
            raise ModelLoadError(f"config.json: {exc}") from None
        bos = hf.get("bos_token_id")
        return cls(
            architecture=archs[0],
            hidden_size=hidden,
            intermediate_size=positive_int(hf, "intermediate_size"),
            num_layers=positive_int(hf, "num_hidden_layers"),
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            vocab_size=positive_int(hf, "vocab_size", maximum=MAX_VOCAB_SIZE),
            max_position=positive_int(
                hf, "max_position_embeddings", default=2048, maximum=MAX_POSITION
            ),
            rms_norm_eps=positive_float(hf, "rms_norm_eps", 1e-6),
            rope_theta=theta,
            rope_scaling=scaling,
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            attention_bias=bias,
            o_proj_bias=bias,
            dtype=dtype,
            eos_token_ids=token_ids(hf.get("eos_token_id")),
            bos_token_id=bos if isinstance(bos, int) else None,
        )


def token_ids(value: object) -> tuple[int, ...]:
    """Normalise an HF ``eos_token_id`` (int, list of ints or None) to a tuple."""
    if isinstance(value, bool):
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return ()


def positive_int(
    hf: Mapping[str, Any], key: str, default: int | None = None, *, maximum: int | None = None
) -> int:
    """``hf[key]`` as a positive integer (``default`` when absent), at most ``maximum``.

    Raises:
        ModelLoadError: missing without a default, not a positive integer, or too large.
    """
    value = hf.get(key)
    if value is None:
        if default is None:
            raise ModelLoadError(f"config.json is missing {key!r}")
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelLoadError(f"config.json: {key!r} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ModelLoadError(
            f"config.json: {key!r} is {value}, more than the engine accepts ({maximum}); "
            "the config is damaged or not for this kind of model"
        )
    return value


def positive_float(hf: Mapping[str, Any], key: str, default: float) -> float:
    """``hf[key]`` as a finite number > 0 (``default`` when the key is absent).

    Raises:
        ModelLoadError: present but not a finite positive number (null included).
    """
    if key not in hf:
        return default
    value = hf[key]
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # float(10**400)
            number = float(value)
    if number is None or not 0.0 < number < math.inf:
        raise ModelLoadError(f"config.json: {key!r} must be a positive number, got {value!r}")
    return number


def _rope(hf: Mapping[str, Any]) -> tuple[float, dict[str, Any] | None]:
    """Return (theta, scaling dict or None) from either config layout."""
    params = hf.get("rope_parameters")
    if isinstance(params, Mapping) and isinstance(params.get("full_attention"), Mapping):
        params = params["full_attention"]  # per-layer-type layout; we only run full attention
    if isinstance(params, Mapping):
        theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
        scaling: Mapping[str, Any] | None = params
    else:
        theta = hf.get("rope_theta", 10000.0)
        scaling = hf.get("rope_scaling")
    if not isinstance(theta, int | float) or isinstance(theta, bool) or theta <= 0:
        raise ModelLoadError(f"config.json: rope_theta must be a positive number, got {theta!r}")
    if scaling is None:
        return float(theta), None
    if not isinstance(scaling, Mapping):
        raise ModelLoadError(f"config.json: rope_scaling must be an object, got {scaling!r}")
    out = {k: v for k, v in scaling.items() if k not in ("rope_theta", "type")}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type in ("default", None):
        return float(theta), None
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"rope scaling type {rope_type!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    needed = _ROPE_KEYS[rope_type]
    missing = [k for k in needed if not isinstance(out.get(k), int | float)]
    if missing:
        raise ModelLoadError(f"config.json: {rope_type} rope scaling is missing {missing}")
    out["rope_type"] = rope_type
    return float(theta), out
