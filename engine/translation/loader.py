"""``load_translation_model``: a checkpoint directory or hub id -> model, tokenizer, rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelLoadError
from engine.loader import load_weights, resolve_device, resolve_dtype
from engine.loader.checkpoint import read_json
from engine.translation.checkpoint import (
    apply_fallbacks,
    checkpoint_weights,
    resolve_translation_source,
)
from engine.translation.config import GenerationDefaults, Seq2SeqConfig
from engine.translation.model import Seq2SeqLM
from engine.translation.registry import Architecture, get_architecture
from engine.translation.tokenization import load_tokenizer

__all__ = ["LoadedTranslationModel", "load_translation_model"]

# Generation keys transformers 5 keeps in generation_config.json only; older config.json
# files still carry them, and the network config needs the token ids.
_TOKEN_KEYS = ("decoder_start_token_id", "pad_token_id", "eos_token_id")


@dataclass
class LoadedTranslationModel:
    """A translation checkpoint ready to run.

    Attributes:
        model: the network (eval mode, on its device, weights in ``config.dtype``).
        tokenizer: the checkpoint's transformers tokenizer.
        config: the network config.
        generation: the checkpoint's decoding rules.
        architecture: the registry entry.
        path: the local checkpoint directory.
    """

    model: Seq2SeqLM
    tokenizer: Any
    config: Seq2SeqConfig
    generation: GenerationDefaults
    architecture: Architecture
    path: Path


def load_translation_model(
    source: str | Path, *, dtype: str = "auto", device: str = "auto"
) -> LoadedTranslationModel:
    """Load a Marian or M2M100 / NLLB-200 checkpoint.

    Args:
        source: a local HF directory (config.json, weights as safetensors or, failing
            that, ``pytorch_model.bin``, tokenizer files) or a hub id.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...

    Raises:
        ModelLoadError: the checkpoint is missing, unreadable, incomplete or corrupt; the
            message names the path. ``UnsupportedModelError`` (a subclass) for an
            architecture or layout the engine does not run.
    """
    dev = resolve_device(device)
    run_dtype = resolve_dtype(dtype, dev)
    model_dir = resolve_translation_source(source)
    hf = read_json(model_dir / "config.json")
    gen_path = model_dir / "generation_config.json"
    gen = read_json(gen_path) if gen_path.is_file() else {}
    merged = {
        **{k: gen[k] for k in _TOKEN_KEYS if k in gen},
        **{k: v for k, v in hf.items() if v is not None},
    }
    try:
        arch = get_architecture(merged)
        config = arch.parse_config(merged)
        generation = GenerationDefaults.from_hf(gen, hf, config.eos_token_id)
    except ModelLoadError as exc:
        raise type(exc)(f"{model_dir}: {exc}") from None
    config = dataclasses.replace(config, dtype=run_dtype)
    tokenizer = load_tokenizer(model_dir)
    with torch.device(dev):
        model = Seq2SeqLM(config)
    weights = apply_fallbacks(checkpoint_weights(model_dir), model.weight_fallbacks())
    if config.final_logits_bias:
        weights = _with_default_bias(weights, config.decoder_vocab_size)
    load_weights(model, weights, source=str(model_dir))
    model.eval()
    return LoadedTranslationModel(model, tokenizer, config, generation, arch, model_dir)


def _with_default_bias(
    weights: Iterable[tuple[str, torch.Tensor]], vocab: int
) -> Iterator[tuple[str, torch.Tensor]]:
    """Marian's ``final_logits_bias`` is optional in checkpoints (HF fills zeros)."""
    seen = False
    for name, tensor in weights:
        seen = seen or name == "final_logits_bias"
        yield name, tensor
    if not seen:
        yield "final_logits_bias", torch.zeros(1, vocab)
