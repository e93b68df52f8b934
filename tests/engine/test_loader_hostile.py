"""load_model / convert_gguf on absurd config.json and GGUF metadata values (a
ModelLoadError naming the field, never a raw RuntimeError/TypeError/ZeroDivisionError or an
allocation of what the config claims), and a GGUF cache damaged after conversion."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gguf
import pytest
import torch
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model, write_gguf
from transformers import PreTrainedModel

import engine.loader.gguf_convert as gguf_convert
from engine.errors import ModelLoadError
from engine.loader import convert_gguf, load_model


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(tmp_path / "botkit-cache"))
    return tmp_path / "botkit-cache"


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def llama(tok: Any) -> PreTrainedModel:
    return tiny_model(tiny_config("LlamaForCausalLM", vocab_size=len(tok)), seed=2)


@pytest.fixture(scope="module")
def checkpoint(llama: PreTrainedModel, tok: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(llama, tok, tmp_path_factory.mktemp("llama"))


def edited(src: Path, dst: Path, **changes: Any) -> Path:
    """A copy of the checkpoint (weights linked, not copied) with config.json edited."""
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).symlink_to(f)
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").unlink()
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


BAD_CONFIGS = {
    "huge-context": ({"max_position_embeddings": 10**11}, "max_position_embeddings"),
    "huge-vocab": ({"vocab_size": 10**12}, "vocab_size"),
    # within the sanity bound, still not this checkpoint: caught before allocating
    "wrong-vocab": ({"vocab_size": 1 << 22}, "vocab_size"),
    "null-eps": ({"rms_norm_eps": None}, "rms_norm_eps"),
    "nan-eps": ({"rms_norm_eps": math.nan}, "rms_norm_eps"),
    "huge-int-eps": ({"rms_norm_eps": 10**400}, "rms_norm_eps"),
    "odd-head-dim": ({"head_dim": 15}, "head_dim"),
    "zero-heads": ({"num_attention_heads": 0}, "num_attention_heads"),
    "null-partial-rotary": ({"partial_rotary_factor": None}, "partial_rotary_factor"),
    "huge-mlp": ({"intermediate_size": 10**13}, "cannot build"),  # fails allocating
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_absurd_config_is_a_model_load_error(checkpoint: Path, tmp_path: Path, case: str) -> None:
    changes, field = BAD_CONFIGS[case]
    bad = edited(checkpoint, tmp_path / "bad", **changes)
    with pytest.raises(ModelLoadError, match=field) as info:
        load_model(bad, device="cpu", dtype="float32")
    assert str(bad) in str(info.value)


def test_config_number_too_long_to_parse(checkpoint: Path, tmp_path: Path) -> None:
    bad = edited(checkpoint, tmp_path / "bad")
    text = (bad / "config.json").read_text()
    hostile = text.replace('"vocab_size": 320', '"vocab_size": ' + "9" * 5000)
    assert hostile != text
    (bad / "config.json").write_text(hostile)  # json.loads raises a plain ValueError
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model(bad, device="cpu", dtype="float32")


def hostile_gguf(llama: PreTrainedModel, tok: Any, path: Path, **meta: Any) -> Path:
    """write_gguf with some metadata values replaced (``GGUFWriter.add_<key>``; None: the
    key is left out)."""
    with pytest.MonkeyPatch.context() as mp:  # not the test's: it holds BOTKIT_CACHE_DIR
        for key, value in meta.items():
            original = getattr(gguf.GGUFWriter, f"add_{key}")
            mp.setattr(
                gguf.GGUFWriter,
                f"add_{key}",
                lambda self, n, o=original, v=value: None if v is None else o(self, v),
            )
        return write_gguf(llama, tok, path)


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"head_count": 0, "rope_dimension_count": None}, "attention.head_count"),
        ({"head_count": 3, "rope_dimension_count": None}, "attention.head_count"),
        ({"context_length": 2**32 - 1}, r"max_position_embeddings.*'llama\.context_length'"),
        ({"block_count": 0}, "block_count"),
    ],
    ids=["zero-heads", "heads-not-dividing-width", "huge-context", "zero-layers"],
)
def test_hostile_gguf_metadata_is_a_model_load_error(
    llama: PreTrainedModel,
    tok: Any,
    tmp_path: Path,
    _isolated_cache: Path,
    meta: dict[str, Any],
    field: str,
) -> None:
    path = hostile_gguf(llama, tok, tmp_path / "evil.gguf", **meta)
    with pytest.raises(ModelLoadError, match=field) as info:
        convert_gguf(path)
    assert str(path) in str(info.value)
    assert not any((_isolated_cache / "gguf").iterdir())  # nothing half-written is left


def test_gguf_heads_that_do_not_split_the_rows_are_a_model_load_error(
    llama: PreTrainedModel, tok: Any, tmp_path: Path
) -> None:
    """A consistent config (3 heads of an explicit 16 dims, 3 KV heads) whose Q/K rows
    (64) still do not split into 3 heads of rotary pairs."""
    original = gguf.GGUFWriter.add_head_count

    def three_heads(self: Any, n: int) -> None:
        original(self, 3)
        self.add_key_length(16)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gguf.GGUFWriter, "add_head_count", three_heads)
        mp.setattr(gguf.GGUFWriter, "add_head_count_kv", lambda self, n: None)
        path = write_gguf(llama, tok, tmp_path / "evil.gguf")
    with pytest.raises(ModelLoadError, match=r"attn_q.*3 heads") as info:
        convert_gguf(path)
    assert str(path) in str(info.value)


def _must_not_run(*_: object) -> None:
    raise AssertionError("the GGUF was converted again")


@pytest.mark.parametrize("damage", ["truncated", "deleted", "cut-config"])
def test_damaged_gguf_cache_is_converted_again(
    llama: PreTrainedModel, tok: Any, tmp_path: Path, damage: str
) -> None:
    path = write_gguf(llama, tok, tmp_path / "tiny.gguf")
    out = convert_gguf(path)
    reference = load_model(path, device="cpu", dtype="float32")
    if damage == "truncated":  # disk full during a later copy, a partial restore
        weights = out / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "deleted":
        (out / "tokenizer.json").unlink()
    else:  # a partial restore: config.json cut short
        config = out / "config.json"
        config.write_text(config.read_text()[:40])
    loaded = load_model(path, device="cpu", dtype="float32")
    assert loaded.path == out
    for name, p in reference.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], p), name
    assert loaded.tokenizer.encode("Hello") == reference.tokenizer.encode("Hello")


def test_intact_and_older_caches_are_not_converted_again(
    llama: PreTrainedModel, tok: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gguf(llama, tok, tmp_path / "tiny.gguf")
    out = convert_gguf(path)
    monkeypatch.setattr(gguf_convert, "_convert", _must_not_run)
    assert convert_gguf(path) == out
    # A marker written before file sizes were recorded is trusted, as it was then.
    marker = out / "botkit_gguf.json"
    old = {k: v for k, v in json.loads(marker.read_text()).items() if k != "files"}
    marker.write_text(json.dumps(old))
    assert convert_gguf(path) == out


def test_damage_the_sizes_cannot_see_names_the_cache_to_delete(
    llama: PreTrainedModel, tok: Any, tmp_path: Path
) -> None:
    path = write_gguf(llama, tok, tmp_path / "tiny.gguf")
    out = convert_gguf(path)
    weights = out / "model.safetensors"
    weights.write_bytes(b"\x07" * 64 + weights.read_bytes()[64:])  # same size, bad header
    with pytest.raises(ModelLoadError, match="delete that directory") as info:
        load_model(path, device="cpu", dtype="float32")
    assert str(out) in str(info.value)
