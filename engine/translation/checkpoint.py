"""Finding and reading translation checkpoints: local dirs, hub ids, safetensors or .bin.

Many OPUS-MT repositories on the hub only carry ``pytorch_model.bin``, so unlike the chat
loader this one falls back to it when a checkpoint has no safetensors (read with
``torch.load(weights_only=True)``, which refuses pickled code).
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch

from engine.errors import ModelLoadError
from engine.loader.checkpoint import (
    INDEX_FILE,
    iter_weights,
    shard_files,
    tensor_headers,
    weight_files,
)
from engine.loader.paths import HUB_ID, expand_path, path_mode, shown_path
from engine.loader.source import fetch_from_hub

__all__ = [
    "apply_fallbacks",
    "checkpoint_shapes",
    "checkpoint_weights",
    "locate_translation_source",
    "resolve_translation_source",
]

_WHAT = "translation model"
# Config, tokenizer (Marian: source.spm / target.spm / vocab.json; M2M100:
# sentencepiece.bpe.model; NLLB: tokenizer.json) and safetensors weights.
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.spm", "*.model", "*.txt"]
_BIN_PATTERNS = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]
_BIN_INDEX = "pytorch_model.bin.index.json"
_HOW_TO = (
    "Pass a local directory with config.json, weights (*.safetensors or pytorch_model.bin) "
    "and the tokenizer files, or a Hugging Face hub id such as 'Helsinki-NLP/opus-mt-en-de' "
    "(downloaded into the HF cache when the hub is reachable)"
)


def resolve_translation_source(source: str | Path) -> Path:
    """Local checkpoint directory for a path or hub id.

    Raises:
        ModelLoadError: the path is missing / not a checkpoint, or the hub id cannot be
            fetched; the message names the source and how to get a model.
    """
    where = locate_translation_source(source)
    return where if isinstance(where, Path) else _from_hub(where)


def locate_translation_source(source: str | Path) -> Path | str:
    """The checkpoint directory ``source`` names, or the hub id to fetch: checked
    without downloading anything (``botkit check-config``; a hub id is not looked up).

    Raises:
        ModelLoadError: the path is missing or not a checkpoint directory.
    """
    text = str(source)
    path = expand_path(text, _WHAT)
    mode = path_mode(path, _WHAT)
    if mode is not None and stat.S_ISDIR(mode):
        config = path_mode(path / "config.json", _WHAT)
        if config is None or not stat.S_ISREG(config):
            raise ModelLoadError(f"{path} is not a model directory: no config.json. {_HOW_TO}")
        return path
    if mode is not None:
        raise ModelLoadError(f"{shown_path(text)} is not a directory. {_HOW_TO}")
    if isinstance(source, Path) or not HUB_ID.match(text):
        raise ModelLoadError(f"{_WHAT} path {shown_path(text)} does not exist. {_HOW_TO}")
    return text


def _from_hub(repo_id: str) -> Path:
    local = fetch_from_hub(repo_id, _HUB_PATTERNS, what=_WHAT, how_to=_HOW_TO)
    if not any(local.glob("*.safetensors")):  # many OPUS-MT repos only have the .bin
        local = fetch_from_hub(repo_id, _HUB_PATTERNS + _BIN_PATTERNS, what=_WHAT, how_to=_HOW_TO)
    return local


def checkpoint_weights(model_dir: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(HF name, CPU tensor) of every weight: safetensors first, else PyTorch ``.bin``.

    Raises:
        ModelLoadError: no weights, or a weights file is unreadable or corrupt.
    """
    if _has_safetensors(model_dir):
        yield from iter_weights(weight_files(model_dir))
        return
    for path in _bin_files(model_dir):
        yield from _bin_state(path)


def checkpoint_shapes(model_dir: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """HF name -> (shape, file name) of every weight, without reading tensor data.

    safetensors shapes come from the file headers, which the library checks against the
    file size, so a shape here is backed by bytes on disk; ``.bin`` files are memory-mapped.

    Raises:
        ModelLoadError: no weights, or a weights file is unreadable or corrupt.
    """
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    if not _has_safetensors(model_dir):
        for path in _bin_files(model_dir):
            for name, tensor in _bin_state(path):
                shapes.setdefault(name, (tuple(tensor.shape), path.name))
        return shapes
    headers = tensor_headers(weight_files(model_dir))
    return {name: (header.shape, header.where) for name, header in headers.items()}


def _has_safetensors(model_dir: Path) -> bool:
    return (model_dir / INDEX_FILE).is_file() or any(model_dir.glob("*.safetensors"))


def _bin_state(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # pickle / zip / unpickler errors on corrupt files
        raise ModelLoadError(f"cannot read weights file {path}: {exc}") from None
    if not isinstance(state, Mapping):
        raise ModelLoadError(f"{path} does not hold a state dict")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ModelLoadError(f"{path}: entry {name!r} is not a named tensor")
        yield name, tensor


def _bin_files(model_dir: Path) -> list[Path]:
    index = model_dir / _BIN_INDEX
    if index.is_file():
        return shard_files(index)
    single = model_dir / "pytorch_model.bin"
    if single.is_file():
        return [single]
    raise ModelLoadError(
        f"{model_dir} has no weights: neither *.safetensors nor pytorch_model.bin. {_HOW_TO}"
    )


def apply_fallbacks(
    weights: Iterable[tuple[str, torch.Tensor]], fallbacks: Mapping[str, tuple[str, ...]]
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield each checkpoint tensor once, filling tied parameters from their other names.

    Args:
        weights: (name, tensor) pairs of the checkpoint.
        fallbacks: parameter name -> checkpoint names that may hold it instead, in order
            of preference. The parameter's own name wins (as when ``transformers`` ties
            weights); names that are only fallbacks are never yielded as themselves.
    """
    only_fallback = {n for names in fallbacks.values() for n in names} - set(fallbacks)
    # Per unfilled parameter, the most preferred fallback seen so far: at most one extra
    # copy of an embedding matrix is held (NLLB-600M's is 1 GB in fp32).
    held: dict[str, tuple[int, torch.Tensor]] = {}
    seen: set[str] = set()
    for name, tensor in weights:
        if name not in only_fallback:
            seen.add(name)
            held.pop(name, None)
            yield name, tensor
            continue
        for param, names in fallbacks.items():
            if param in seen or name not in names:
                continue
            rank = names.index(name)
            if param not in held or rank < held[param][0]:
                held[param] = (rank, tensor)
    for param, (_rank, tensor) in held.items():
        yield param, tensor
