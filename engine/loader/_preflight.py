"""A model's config checked against its checkpoint's tensor headers, before it is built.

config.json (or a GGUF's metadata) sizes every tensor the model allocates, and a damaged
or hostile one could ask for gigabytes before a single weight is read. So the model is
first built on the meta device (no memory) and loaded with meta tensors of the headers'
shapes and dtypes: the real load's name mapping and checks, with nothing allocated. What
passes allocates what the checkpoint holds, plus the rotary table, bounded here too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping

import torch

from engine.config import ModelConfig
from engine.errors import ModelLoadError
from engine.loader.checkpoint import TensorHeader
from engine.loader.weights import load_weights
from engine.models import CausalLM

__all__ = ["ROPE_TABLE_FLOOR", "build_model", "check_against_tensors"]

# The rotary table is [max_position, head_dim] float32, built eagerly through fp64
# intermediates (~5x its size at peak). It may take a quarter of the weights' bytes, and
# 64 MiB whatever they are: Llama-3.1-8B's 128k context needs 64 MiB, Qwen2.5-7B-1M's
# million positions 0.5 GiB beside 15 GB of weights; a tiny checkpoint whose config claims
# 2**24 positions would need 1 GiB (5 GiB at peak).
ROPE_TABLE_FLOOR = 64 << 20

_LAYER = re.compile(r"^model\.layers\.(\d+)\.")
# HF config key -> the ModelConfig field that holds its value.
_FIELDS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_dim",
    "max_position_embeddings": "max_position",
}
# A part of an HF tensor name -> the config keys its shape comes from.
_SIZED_BY = {
    "embed_tokens": ("vocab_size", "hidden_size"),
    "lm_head": ("vocab_size", "hidden_size"),
    "q_proj": ("num_attention_heads", "head_dim", "hidden_size"),
    "o_proj": ("num_attention_heads", "head_dim", "hidden_size"),
    "k_proj": ("num_key_value_heads", "head_dim", "hidden_size"),
    "v_proj": ("num_key_value_heads", "head_dim", "hidden_size"),
    "gate_proj": ("intermediate_size", "hidden_size"),
    "up_proj": ("intermediate_size", "hidden_size"),
    "down_proj": ("intermediate_size", "hidden_size"),
    "norm": ("hidden_size",),
}

Label = Callable[[str], str]  # HF config key -> how the source names it in messages


def build_model(
    cls: type[CausalLM], config: ModelConfig, device: torch.device, source: str, origin: str
) -> CausalLM:
    """``cls(config)`` on ``device``; a failure is a ModelLoadError blaming ``origin``.

    Raises:
        ModelLoadError: the constructor failed (torch's out-of-memory is a RuntimeError).
    """
    try:
        with torch.device(device):
            return cls(config)
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise ModelLoadError(
            f"{source}: cannot build a {config.architecture} model from {origin} "
            f"({type(exc).__name__}: {exc})"
        ) from None


def check_against_tensors(
    cls: type[CausalLM],
    config: ModelConfig,
    tensors: Mapping[str, TensorHeader],
    *,
    source: str,
    origin: str,
    label: Label,
) -> None:
    """Check that ``config`` fits the checkpoint's tensors, allocating nothing.

    Args:
        cls: the model class ``config`` builds.
        tensors: HF tensor name -> its header.
        source: the checkpoint, as messages name it.
        origin: where the config came from (``"config.json"``, ``"GGUF metadata"``).
        label: how ``origin`` names an HF config key (``"'num_hidden_layers'"``...).

    Raises:
        ModelLoadError: the layer count, a tensor's shape or dtype, or the rotary table's
            size does not fit; the message names the tensor, its file and the config keys.
    """
    _check_layer_count(config, tensors, source, origin, label)
    model = build_model(cls, config, torch.device("meta"), source, origin)
    current = [""]

    def meta_tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for name, header in tensors.items():
            current[0] = name
            yield name, torch.empty(header.shape, dtype=header.dtype, device="meta")

    try:
        load_weights(model, meta_tensors(), source=source)
    except ModelLoadError as exc:
        message, name = str(exc), current[0]
        if f"{name!r}" not in message:
            raise
        message += f" (in {tensors[name].where})"
        keys = next((k for part, k in _SIZED_BY.items() if part in name), ())
        if "shape mismatch" in message and keys:
            values = ", ".join(f"{label(k)}={getattr(config, _FIELDS[k])}" for k in keys)
            message += f"; {origin} sizes it with {values}"
        raise type(exc)(message) from None
    weight_bytes = sum(math.prod(h.shape) * h.dtype.itemsize for h in tensors.values())
    _check_rope_table(config, weight_bytes, source, origin, label)


def _check_layer_count(
    config: ModelConfig, tensors: Mapping[str, TensorHeader], source: str, origin: str, label: Label
) -> None:
    layers = sorted({int(m.group(1)) for n in tensors if (m := _LAYER.match(n))})
    if not layers or layers == list(range(config.num_layers)):
        return  # no layer tensors at all: the dry run names what is missing
    if layers == list(range(len(layers))):
        found = f"{len(layers)} layers (model.layers.0-{layers[-1]})"
    else:
        shown = ", ".join(map(str, layers[:8])) + (", ..." if len(layers) > 8 else "")
        found = f"tensors for layers {shown}"
    raise ModelLoadError(
        f"{source}: {origin} {label('num_hidden_layers')} is {config.num_layers}, but the "
        f"checkpoint has {found}"
    )


def _check_rope_table(
    config: ModelConfig, weight_bytes: int, source: str, origin: str, label: Label
) -> None:
    table = config.max_position * config.head_dim * 4  # [max_position, head_dim] float32
    budget = max(ROPE_TABLE_FLOOR, weight_bytes // 4)
    if table > budget:
        raise ModelLoadError(
            f"{source}: {origin} {label('max_position_embeddings')} is "
            f"{config.max_position}: its rotary table ({config.max_position} x "
            f"{config.head_dim} float32, {table / 2**30:.2f} GiB) would be more than the "
            f"engine allows for {weight_bytes / 2**30:.2f} GiB of weights "
            f"({budget / 2**20:.0f} MiB); the config is damaged or not for this checkpoint"
        )
