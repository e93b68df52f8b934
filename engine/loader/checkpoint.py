"""Reading an HF checkpoint directory: config.json and (sharded) safetensors weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open

from engine.errors import ModelLoadError

__all__ = [
    "INDEX_FILE",
    "TensorHeader",
    "iter_weights",
    "read_json",
    "shard_files",
    "tensor_headers",
    "weight_files",
]

INDEX_FILE = "model.safetensors.index.json"
# safetensors header dtype names -> torch (the ones torch has; others are refused by name).
_DTYPES = {
    name: getattr(torch, attr)
    for name, attr in {
        "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
        "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64",
        "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
        "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    }.items()
    if hasattr(torch, attr)
}  # fmt: skip


class TensorHeader(NamedTuple):
    """A checkpoint tensor as its file's header describes it (no data read)."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    where: str  # what to name in messages: the file (or GGUF tensor) it comes from


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON object file.

    Raises:
        ModelLoadError: unreadable, not JSON, or not an object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, 5000-digit ints
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def shard_files(index: Path) -> list[Path]:
    """The shard files a sharded checkpoint's index (``*.index.json``) names.

    Raises:
        ModelLoadError: the index has no weight map, or names files that are missing or
            outside its directory.
    """
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{index} has no 'weight_map'")
    names = sorted({str(v) for v in weight_map.values()})
    outside = [n for n in names if Path(n).name != n or n in ("", ".", "..")]
    if outside:  # an absolute path or a ../ escape: never read, whether it exists or not
        raise ModelLoadError(
            f"{index} names shard files outside its directory: {', '.join(map(repr, outside))}"
        )
    files = [index.parent / n for n in names]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelLoadError(f"{index} names shard files that are missing: {', '.join(missing)}")
    return files


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint, from its index when it is sharded.

    Raises:
        ModelLoadError: no safetensors weights, or the index names files that are missing.
    """
    index = model_dir / INDEX_FILE
    if index.is_file():
        return shard_files(index)
    single = model_dir / "model.safetensors"
    if single.is_file():
        return [single]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(
            f"{model_dir} has no *.safetensors weights (PyTorch .bin checkpoints are not "
            "supported; re-save with safe_serialization=True)"
        )
    return files


def iter_weights(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (HF name, CPU tensor) for every tensor in the files, one file open at a time.

    Raises:
        ModelLoadError: a file is not valid safetensors (truncated, corrupt header...).
    """
    for path in files:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                for name in f.keys():
                    yield name, f.get_tensor(name)
        except ModelLoadError:
            raise
        except Exception as exc:  # safetensors raises its own Rust-side error types
            raise ModelLoadError(f"cannot read weights file {path}: {exc}") from None


def tensor_headers(files: list[Path]) -> dict[str, TensorHeader]:
    """Shape and dtype of every tensor, from the safetensors headers (no data read).

    Raises:
        ModelLoadError: a file is not valid safetensors, or a tensor has a dtype torch
            lacks (named with its file).
    """
    headers: dict[str, TensorHeader] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                for name in f.keys():
                    info = f.get_slice(name)
                    shape = tuple(int(n) for n in info.get_shape())
                    kind = str(info.get_dtype())
                    dtype = _DTYPES.get(kind)
                    if dtype is None:
                        raise ModelLoadError(
                            f"{path}: tensor {name!r} has dtype {kind}, which cannot be loaded"
                        )
                    headers.setdefault(name, TensorHeader(shape, dtype, path.name))
        except ModelLoadError:
            raise
        except Exception as exc:  # safetensors raises its own Rust-side error types
            raise ModelLoadError(f"cannot read weights file {path}: {exc}") from None
    return headers
