"""``load_translation_model``: a checkpoint directory or hub id -> model, tokenizer, rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelLoadError, UnsupportedModelError
from engine.loader import load_weights, resolve_device, resolve_dtype
from engine.loader.checkpoint import read_json
from engine.translation.checkpoint import (
    apply_fallbacks,
    checkpoint_shapes,
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
        ModelLoadError: the checkpoint is missing, unreadable, incomplete or corrupt, or
            its config.json disagrees with the weights (checked from the headers before
            the network is built); the message names the path, the file and the key.
            ``UnsupportedModelError`` (a subclass) for an architecture or layout the
            engine does not run.
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
        generation = GenerationDefaults.from_hf(
            gen, hf, config.eos_token_id, vocab_size=config.decoder_vocab_size
        )
        _check_runnable(config, dev)
        # Before anything is allocated: the network config.json describes must match the
        # weights on disk, so a config cannot make us build more than the file holds.
        _check_shapes(config, checkpoint_shapes(model_dir))
    except ModelLoadError as exc:
        raise type(exc)(f"{model_dir}: {exc}") from None
    config = dataclasses.replace(config, dtype=run_dtype)
    tokenizer = load_tokenizer(model_dir)
    try:
        with torch.device(dev):
            model = Seq2SeqLM(config)
    except (RuntimeError, MemoryError, ValueError, TypeError, OverflowError) as exc:
        # torch.OutOfMemoryError is a RuntimeError; the shape checks make this rare.
        raise ModelLoadError(
            f"{model_dir}: cannot build the network config.json describes ({_sizes(config)}) "
            f"on {dev}: {exc}"
        ) from None
    weights = apply_fallbacks(checkpoint_weights(model_dir), model.weight_fallbacks())
    if config.final_logits_bias:
        weights = _with_default_bias(weights, config.decoder_vocab_size)
    load_weights(model, weights, source=str(model_dir))
    model.eval()
    return LoadedTranslationModel(model, tokenizer, config, generation, arch, model_dir)


def _sizes(c: Seq2SeqConfig) -> str:
    return (
        f"d_model={c.d_model}, encoder_layers={c.encoder_layers}, "
        f"decoder_layers={c.decoder_layers}, encoder_ffn_dim={c.encoder_ffn_dim}, "
        f"decoder_ffn_dim={c.decoder_ffn_dim}, vocab_size={c.vocab_size}, "
        f"max_position_embeddings={c.max_position}"
    )


def _check_runnable(c: Seq2SeqConfig, dev: torch.device) -> None:
    """The CUDA attention kernels tile a head whole: a power of two in [16, 256].

    Raises:
        UnsupportedModelError: another head size on CUDA (the CPU path takes any).
    """
    if dev.type != "cuda":
        return
    for key, heads in (
        ("encoder_attention_heads", c.encoder_heads),
        ("decoder_attention_heads", c.decoder_heads),
    ):
        head_dim = c.d_model // heads
        if not 16 <= head_dim <= 256 or head_dim & (head_dim - 1):
            raise UnsupportedModelError(
                f"config.json: 'd_model' / {key!r} = {c.d_model} / {heads} = {head_dim}; the"
                " CUDA attention kernels need a head size that is a power of two in [16, 256]"
            )


def _check_shapes(c: Seq2SeqConfig, shapes: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Compare the sizes in config.json with the checkpoint's embedding and FFN shapes.

    Checks every embedding name an exporter may use, the first layer's FFN (its width) and
    the last layer's (the layer count); ``load_weights`` checks every tensor later, but
    only after the network is built.

    Raises:
        ModelLoadError: a mismatch or a missing tensor, naming the keys and the file.
    """
    expected: dict[str, tuple[tuple[int, ...], str]] = {
        "model.shared.weight": ((c.vocab_size, c.d_model), "vocab_size, d_model"),
        "model.encoder.embed_tokens.weight": ((c.vocab_size, c.d_model), "vocab_size, d_model"),
        "model.decoder.embed_tokens.weight": (
            (c.decoder_vocab_size, c.d_model),
            "decoder_vocab_size, d_model",
        ),
        "lm_head.weight": ((c.decoder_vocab_size, c.d_model), "decoder_vocab_size, d_model"),
        "final_logits_bias": ((1, c.decoder_vocab_size), "1, decoder_vocab_size"),
    }
    embeddings = [n for n in expected if n.endswith(".weight") and n in shapes]
    if not embeddings:
        raise ModelLoadError(
            f"the weights ({', '.join(sorted({f for _, f in shapes.values()})) or 'none'}) "
            f"hold no token embedding ({', '.join(n for n in expected if n.endswith('weight'))})"
        )
    for side, layers, layers_key, ffn, ffn_key in (
        ("encoder", c.encoder_layers, "encoder_layers", c.encoder_ffn_dim, "encoder_ffn_dim"),
        ("decoder", c.decoder_layers, "decoder_layers", c.decoder_ffn_dim, "decoder_ffn_dim"),
    ):
        for i in dict.fromkeys((0, layers - 1)):
            name = f"model.{side}.layers.{i}.fc1.weight"
            if name not in shapes:
                raise ModelLoadError(
                    f"config.json: {layers_key!r} is {layers}, but the weights have no {name!r}"
                )
            expected[name] = ((ffn, c.d_model), f"{ffn_key}, d_model")
    for name, (want, keys) in expected.items():
        if name in shapes and shapes[name][0] != want:
            got, file = shapes[name]
            raise ModelLoadError(
                f"config.json: [{keys}] = {list(want)}, but {file} holds {name!r} with shape "
                f"{list(got)}"
            )


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
