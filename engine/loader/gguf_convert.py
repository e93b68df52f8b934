"""GGUF -> HF (config.json + safetensors + tokenizer) conversion, cached on disk.

A GGUF file is read with the ``gguf`` package, its tensors dequantized to float32 (exact:
every GGML block format is ``scale * q + min`` in fp16/fp32, which fp32 holds), renamed from
llama.cpp's names to HF's, and llama's Q/K rows are un-permuted (llama.cpp's converter
interleaves the two rotary halves of each head; HF keeps them as halves). The result is
written once under ``<cache root>/gguf/<key>`` so the next start only loads safetensors.

A cache damaged later (a truncated copy, a partial backup restore) no longer matches the
sizes its marker recorded and is converted again (``engine.loader._gguf_cache``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.config import ModelConfig
from engine.errors import ModelLoadError, UnsupportedModelError
from engine.loader._gguf_cache import damage, discard, is_gguf_cache, write_marker
from engine.loader._gguf_cache_gc import (
    LOCK,
    content_key,
    hold_key_lock,
    hold_lock,
    mark_used,
    prune,
    sweep_stale,
)
from engine.loader._gguf_header import check_gguf_header
from engine.loader.checkpoint import INDEX_FILE, TensorHeader

__all__ = ["CONVERTER_VERSION", "convert_gguf", "default_cache_root", "is_gguf_cache"]

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
_SHARD_BYTES = 2 << 30  # keeps peak memory of a conversion near one shard

_ARCHS = {"llama": ("LlamaForCausalLM", "llama"), "qwen2": ("Qwen2ForCausalLM", "qwen2")}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_LAYER_RE = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|bias)$")
# config.json key -> the GGUF metadata key (after "<arch>.") it is derived from, to name
# the GGUF field in errors.
_GGUF_KEYS = {
    "hidden_size": "embedding_length",
    "intermediate_size": "feed_forward_length",
    "num_hidden_layers": "block_count",
    "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv",
    "head_dim": "attention.key_length",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "context_length",
    "rms_norm_eps": "attention.layer_norm_rms_epsilon",
}


def default_cache_root() -> Path:
    """``$BOTKIT_CACHE_DIR`` or ``~/.cache/botkit``."""
    return Path(os.environ.get("BOTKIT_CACHE_DIR") or "~/.cache/botkit").expanduser()


def _transformers_major() -> str:
    """The installed transformers' major version ("0" when it is not installed: the
    conversion then stops on its import, with the reason)."""
    try:
        return _dist_version("transformers").split(".", 1)[0]
    except PackageNotFoundError:
        return "0"


def _cache_key(path: Path, size: int) -> str:
    """The conversion's directory name: the file's content key, then the transformers
    major version, because transformers writes the tokenizer files (``save_pretrained``)
    and a conversion made under 5 (``tokenizer_class`` "TokenizersBackend") fails to load
    under 4.x. Minor versions read each other's files, so they share a conversion.

    Raises:
        OSError: the file cannot be read.
    """
    return f"{content_key(path, size, CONVERTER_VERSION)}-tf{_transformers_major()}"


def convert_gguf(path: Path, cache_root: Path | None = None) -> Path:
    """Return an HF checkpoint directory for a GGUF file, converting it on first use.

    The cache key comes from the file's content (``_gguf_cache_gc.content_key``), so a
    new venv or install path reuses the conversion, and from the transformers major
    version (``_cache_key``). The conversion goes to a locked
    temporary directory that is renamed into place, so an interrupted run leaves no half
    cache; the directories of killed runs are swept at a later start, and after a
    conversion older ones of the same file and all but the most recently used few are
    removed (``_gguf_cache_gc``). A per-key lock (``root/.<key>.lock``) is taken before
    the cache is looked at: a second process starting on the same file waits for the
    first one's conversion and reuses it instead of converting (minutes, GBs) again.

    Raises:
        ModelLoadError: unreadable/truncated GGUF, missing tokenizer metadata, or disk errors.
        UnsupportedModelError: an architecture or feature the engine does not run.
    """
    path = path.expanduser().resolve()
    try:
        size = path.stat().st_size
        key = _cache_key(path, size)
    except OSError as exc:
        raise ModelLoadError(f"cannot read GGUF file {path}: {exc}") from None
    root = (cache_root or default_cache_root()) / "gguf"
    out = root / key
    try:
        root.mkdir(parents=True, exist_ok=True)
        key_lock = hold_key_lock(root, key)
    except OSError:
        key_lock = None  # a read-only cache still serves what it holds
    try:
        if _cached(out, path):
            return out
        _convert_into(path, size, root, out)
    except BaseException:
        if key_lock is not None:  # a file that cannot be converted leaves nothing behind
            Path(key_lock.name).unlink(missing_ok=True)
        raise
    finally:
        if key_lock is not None:
            key_lock.close()
    try:
        prune(root, out, path)
    except OSError as exc:  # the conversion is done; a cache that cannot be pruned is not fatal
        log.warning("cannot prune the GGUF conversion cache %s: %s", root, exc)
    return out


def _cached(out: Path, path: Path) -> bool:
    """Whether ``out`` holds a sound conversion (marked used then); a damaged one is
    discarded."""
    sweep_stale(out.parent)
    if not is_gguf_cache(out):
        return False
    problem = damage(out)
    if problem is None:
        mark_used(out)
        return True
    log.warning("GGUF conversion cache %s is damaged (%s); converting %s again", out, problem, path)
    discard(out)
    return False


def _convert_into(path: Path, size: int, root: Path, out: Path) -> None:
    """Convert ``path`` in a locked temporary directory, then rename it to ``out``."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=root))
        lock = hold_lock(tmp)
    except OSError as exc:
        raise ModelLoadError(f"cannot create GGUF cache directory under {root}: {exc}") from None
    try:
        log.info("converting %s to float32 safetensors under %s (once per file)", path, out)
        _convert(path, tmp)
        (tmp / LOCK).unlink()  # not part of the cache; the open handle keeps the lock
        write_marker(tmp, path, size, CONVERTER_VERSION)
        if out.exists() and not is_gguf_cache(out):
            shutil.rmtree(out, ignore_errors=True)  # a stale leftover without a marker
        os.replace(tmp, out)
    except OSError as exc:
        if is_gguf_cache(out) and damage(out) is None:  # another process finished first
            return
        raise ModelLoadError(f"cannot write GGUF cache directory {out}: {exc}") from None
    finally:
        lock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(path: Path, out: Path) -> None:
    reader = _open(path)
    meta = _metadata(reader)
    shapes = {t.name: tuple(int(n) for n in reversed(t.shape)) for t in reader.tensors}
    try:
        config = _hf_config(meta, shapes, path)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ModelLoadError(f"{path}: malformed GGUF metadata: {exc}") from None
    _check_tensors(_check_config(config, path), config["model_type"], reader, path)
    _write_tensors(reader, config, out, path)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _write_tokenizer(path, out)


def _open(path: Path) -> Any:
    import gguf  # imported lazily: only GGUF users need the package

    # The reader trusts the header's counts (a 100-byte file can claim a 2**40-element
    # array and exhaust memory); the bounded walk refuses such a file first.
    check_gguf_header(path)
    try:
        return gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError/struct/IndexError on bad files
        raise ModelLoadError(
            f"{path} is not a readable GGUF file (truncated or corrupt?): {exc}"
        ) from None


def _metadata(reader: Any) -> dict[str, Any]:
    """Scalar metadata fields (strings, numbers, bools); arrays are skipped."""
    import gguf

    meta: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if not field.types or field.types[0] == gguf.GGUFValueType.ARRAY:
            continue
        part = field.parts[field.data[0]]
        if field.types[0] == gguf.GGUFValueType.STRING:
            meta[name] = bytes(part).decode("utf-8", errors="replace")
        else:
            meta[name] = part.tolist()[0]
    return meta


def _hf_config(
    meta: dict[str, Any], tensors: dict[str, tuple[int, ...]], path: Path
) -> dict[str, Any]:
    arch = meta.get("general.architecture")
    if arch not in _ARCHS:
        raise UnsupportedModelError(
            f"{path}: GGUF architecture {arch!r} is not supported (supported: {sorted(_ARCHS)})"
        )
    if "rope_freqs.weight" in tensors:
        raise UnsupportedModelError(
            f"{path}: GGUF stores llama3 rope frequency factors (rope_freqs), which cannot be "
            "mapped back to an HF rope_scaling; load the original HF checkpoint instead"
        )

    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ModelLoadError(f"{path}: GGUF metadata lacks '{arch}.{key}'")
        return value

    def count(key: str, default: int | None = None) -> int:
        value = get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelLoadError(
                f"{path}: GGUF metadata '{arch}.{key}' must be a positive integer, got {value!r}"
            )
        return value

    hidden, heads = count("embedding_length"), count("attention.head_count")
    if f"{arch}.attention.key_length" not in meta and hidden % heads:
        raise ModelLoadError(
            f"{path}: GGUF metadata '{arch}.embedding_length' ({hidden}) is not a multiple "
            f"of '{arch}.attention.head_count' ({heads})"
        )
    head_dim = count("attention.key_length", hidden // heads)
    if int(get("rope.dimension_count", head_dim)) != head_dim:
        raise UnsupportedModelError(f"{path}: partial rotary embeddings are not supported")
    embed = tensors.get("token_embd.weight")
    if embed is None:
        raise ModelLoadError(f"{path}: GGUF has no token_embd.weight tensor")
    vocab = meta.get(f"{arch}.vocab_size", embed[0])
    scaling = None
    stype = meta.get(f"{arch}.rope.scaling.type", "none")
    if stype == "linear":
        scaling = {"rope_type": "linear", "factor": float(get("rope.scaling.factor"))}
    elif stype != "none":
        raise UnsupportedModelError(f"{path}: GGUF rope scaling {stype!r} is not supported")
    hf_arch, model_type = _ARCHS[arch]
    eos_keys = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
    eos = sorted({int(meta[k]) for k in eos_keys if k in meta})
    return {
        "architectures": [hf_arch],
        "model_type": model_type,
        "hidden_size": hidden,
        "intermediate_size": count("feed_forward_length"),
        "num_hidden_layers": count("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": count("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "vocab_size": int(vocab),
        "max_position_embeddings": count("context_length", 2048),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": float(get("rope.freq_base", 10000.0)),
        "rope_scaling": scaling,
        "hidden_act": "silu",
        "attention_bias": arch == "llama" and "blk.0.attn_q.bias" in tensors,
        "tie_word_embeddings": "output.weight" not in tensors,
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": eos if len(eos) > 1 else (eos[0] if eos else None),
        "torch_dtype": "float32",
    }


def _check_config(config: dict[str, Any], path: Path) -> ModelConfig:
    """Validate the derived config as ``load_model`` will, before writing gigabytes."""
    from engine.models import config_from_hf

    try:
        return config_from_hf(config)
    except ModelLoadError as exc:
        message = str(exc).replace("config.json", "the config derived from the GGUF metadata")
        arch = config["model_type"]
        keys = [f"'{arch}.{g}'" for hf, g in _GGUF_KEYS.items() if f"'{hf}'" in message]
        source = f" (GGUF metadata {', '.join(keys)})" if keys else ""
        raise type(exc)(f"{path}: {message}{source}") from None


def _check_tensors(config: ModelConfig, arch: str, reader: Any, path: Path) -> None:
    """The metadata's sizes (block_count, feed_forward_length, head counts...) against the
    GGUF's tensors, before anything is dequantized or written."""
    from engine.loader._preflight import check_against_tensors
    from engine.models import get_model_class

    tensors = {
        _hf_name(t.name, path): TensorHeader(
            tuple(int(n) for n in reversed(t.shape)), torch.float32, f"GGUF tensor {t.name!r}"
        )
        for t in reader.tensors
    }  # float32: what the conversion dequantizes every tensor to
    check_against_tensors(
        get_model_class(config.architecture),
        config,
        tensors,
        source=str(path),
        origin="GGUF metadata",
        label=lambda key: f"'{arch}.{_GGUF_KEYS.get(key, key)}'",
    )


def _hf_name(gguf_name: str, path: Path) -> str:
    """llama.cpp's tensor name -> HF's."""
    name = _GLOBAL_NAMES.get(gguf_name)
    if name is None:
        m = _LAYER_RE.match(gguf_name)
        if m is None or m.group(2) not in _LAYER_NAMES:
            raise UnsupportedModelError(f"{path}: unexpected GGUF tensor {gguf_name!r}")
        name = f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.{m.group(3)}"
    return name


def _hf_tensors(
    reader: Any, config: dict[str, Any], path: Path
) -> Iterator[tuple[str, torch.Tensor]]:
    import gguf

    permute = config["model_type"] == "llama"
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    for t in reader.tensors:
        name = _hf_name(t.name, path)
        try:
            array = gguf.quants.dequantize(t.data, t.tensor_type)
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot dequantize tensor {t.name!r}: {exc}") from None
        array = np.ascontiguousarray(array, dtype=np.float32)
        # Checked as load_weights does (a NaN/inf makes the sum one), before it is cached.
        if not np.isfinite(array.sum(dtype=np.float32)) and not np.isfinite(array).all():
            raise ModelLoadError(f"{path}: tensor {t.name!r} holds NaN or infinite values")
        if not array.flags.writeable:  # F32 tensors are views of the read-only mmap
            array = array.copy()
        tensor = torch.from_numpy(array)
        try:
            if permute and name.endswith(("q_proj.weight", "q_proj.bias")):
                tensor = _unpermute(tensor, heads)
            elif permute and name.endswith(("k_proj.weight", "k_proj.bias")):
                tensor = _unpermute(tensor, kv_heads)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: tensor {t.name!r}: {exc}") from None
        yield name, tensor


def _unpermute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's ``permute``: per head, rows (pair, half) -> (half, pair)."""
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise ModelLoadError(
            f"{rows} rows cannot be split into {n_head} heads of rotary pairs: the GGUF "
            "metadata's head counts do not fit its attention tensors"
        )
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _write_tensors(reader: Any, config: dict[str, Any], out: Path, path: Path) -> None:
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    files: list[Path] = []

    def flush() -> None:
        nonlocal size
        file = out / f"shard-{len(files):05d}.safetensors"
        save_file(shards[-1], str(file), metadata={"format": "pt"})
        files.append(file)
        shards.append({})
        size = 0

    weight_map: dict[str, int] = {}
    for name, tensor in _hf_tensors(reader, config, path):
        if size and size + tensor.nbytes > _SHARD_BYTES:
            flush()
        shards[-1][name] = tensor.contiguous()
        weight_map[name] = len(files)
        size += tensor.nbytes
    flush()
    if len(files) == 1:
        files[0].rename(out / "model.safetensors")
        return
    n = len(files)
    final = [out / f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    for src, dst in zip(files, final, strict=True):
        src.rename(dst)
    index = {"metadata": {}, "weight_map": {k: final[i].name for k, i in weight_map.items()}}
    (out / INDEX_FILE).write_text(json.dumps(index, indent=2))


def _write_tokenizer(path: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        tokenizer.save_pretrained(str(out))
    except Exception as exc:  # transformers raises many types for bad tokenizer metadata
        raise ModelLoadError(
            f"{path}: cannot build a tokenizer from the GGUF metadata: {exc}"
        ) from None
