"""Hostile and damaged translation checkpoints: one clear ModelLoadError, no huge allocation.

Each case edits a copy of a tiny random checkpoint (config.json, generation_config.json or
the weights) and expects ``ModelLoadError`` naming the file and the key, raised before the
network is built (so a config asking for terabytes is refused, not attempted).
"""

from __future__ import annotations

import errno
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from seq2seq_tiny import build_m2m100, build_marian

from engine.errors import ModelLoadError, UnsupportedModelError
from engine.translation import loader
from engine.translation.checkpoint import resolve_translation_source
from engine.translation.config import GenerationDefaults
from engine.translation.loader import load_translation_model
from engine.translation.registry import get_architecture

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
VOCAB = 64  # bigger than any tiny vocabulary, smaller than the ids the cases use


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile")
    build_marian(path / "marian")
    build_m2m100(path / "m2m100")
    build_marian(path / "bin", save_bin=True)
    return path


def _copy(root: Path, tmp_path: Path, name: str = "marian") -> Path:
    path = tmp_path / "ckpt"
    shutil.copytree(root / name, path)
    return path


def _edit(path: Path, file: str, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((path / file).read_text())
    change(data)
    (path / file).write_text(json.dumps(data))


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.update(values)


def _load_fails(path: Path, *fragments: str) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as info:
        load_translation_model(path, dtype="float32", device="cpu")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert len(message) < 2000
    return info.value


# ---------------------------------------------------------------- config.json sizes
@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"d_model": 10**9}, "d_model"),
        ({"d_model": 2, "encoder_attention_heads": 1, "decoder_attention_heads": 1}, "d_model"),
        ({"d_model": 64.0}, "d_model"),
        ({"encoder_layers": 10**6}, "encoder_layers"),
        ({"decoder_layers": True}, "decoder_layers"),
        ({"encoder_ffn_dim": 10**9}, "encoder_ffn_dim"),
        ({"decoder_ffn_dim": 10**400}, "decoder_ffn_dim"),
        ({"vocab_size": 10**12}, "vocab_size"),
        ({"max_position_embeddings": 10**9}, "max_position_embeddings"),
        # Each size under its own bound, but the position table would be 4 GiB.
        ({"d_model": 16384, "max_position_embeddings": 65536}, "max_position_embeddings"),
        ({"encoder_attention_heads": 5}, "encoder_attention_heads"),
        ({"decoder_attention_heads": 0}, "decoder_attention_heads"),
        ({"scale_embedding": "false"}, "scale_embedding"),
        ({"share_encoder_decoder_embeddings": 1}, "share_encoder_decoder_embeddings"),
        ({"activation_function": ["relu"]}, "activation_function"),
    ],
)
def test_config_sizes_are_checked(
    root: Path, tmp_path: Path, values: dict[str, Any], key: str
) -> None:
    path = _copy(root, tmp_path)
    _edit(path, "config.json", _set(**values))
    _load_fails(path, "config.json", key)


@pytest.mark.parametrize(
    ("name", "values", "fragments"),
    [
        # Within the bounds, but not what the weights hold: refused before building.
        ("marian", {"vocab_size": 4_000_000}, ["vocab_size, d_model", "model.safetensors"]),
        ("marian", {"d_model": 128}, ["vocab_size, d_model", "[", "64]"]),
        ("marian", {"encoder_layers": 200}, ["encoder_layers", "layers.199.fc1.weight"]),
        ("marian", {"decoder_ffn_dim": 100_000}, ["decoder_ffn_dim", "layers.0.fc1.weight"]),
        ("m2m100", {"vocab_size": 4_000_000}, ["vocab_size, d_model", "model.safetensors"]),
        ("bin", {"vocab_size": 4_000_000}, ["vocab_size, d_model", "pytorch_model.bin"]),
        ("bin", {"decoder_layers": 100}, ["decoder_layers", "layers.99.fc1.weight"]),
    ],
)
def test_config_sizes_must_match_the_weights(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    values: dict[str, Any],
    fragments: list[str],
) -> None:
    path = _copy(root, tmp_path, name)
    _edit(path, "config.json", _set(**values))

    def never(*_args: Any) -> None:
        raise AssertionError("the network was built from a config the weights contradict")

    monkeypatch.setattr(loader, "Seq2SeqLM", never)
    _load_fails(path, "config.json", *fragments)


def test_weights_without_any_embedding(root: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = _copy(root, tmp_path)
    tensors = load_file(path / "model.safetensors")
    for name in list(tensors):
        if "embed_tokens" in name or name in ("model.shared.weight", "lm_head.weight"):
            del tensors[name]
    save_file(tensors, path / "model.safetensors")
    _load_fails(path, "model.safetensors", "no token embedding")


@pytest.mark.parametrize(
    "error",
    [torch.OutOfMemoryError("CUDA out of memory"), MemoryError(), ValueError("bad"), TypeError()],
)
def test_network_build_failure_is_a_load_error(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(*_args: Any) -> None:
        raise error

    monkeypatch.setattr(loader, "Seq2SeqLM", fail)
    exc = _load_fails(root / "marian", "config.json", "d_model=64", "vocab_size=")
    assert exc.__cause__ is None


def test_cuda_needs_kernel_head_sizes(root: Path) -> None:
    hf = json.loads((root / "marian" / "config.json").read_text())
    hf.update(d_model=96, encoder_attention_heads=4)  # head size 24
    config = get_architecture(hf).parse_config(hf)
    loader._check_runnable(config, torch.device("cpu"))  # the CPU path takes any size
    with pytest.raises(UnsupportedModelError, match=r"encoder_attention_heads.*= 24"):
        loader._check_runnable(config, torch.device("cuda"))


# ---------------------------------------------------------------- token ids
@pytest.mark.parametrize(
    ("file", "values", "key"),
    [
        ("config.json", {"pad_token_id": 10**6}, "pad_token_id"),
        ("config.json", {"pad_token_id": -1}, "pad_token_id"),
        ("config.json", {"decoder_start_token_id": 10**6}, "decoder_start_token_id"),
        ("config.json", {"decoder_start_token_id": "</s>"}, "decoder_start_token_id"),
        ("config.json", {"eos_token_id": 10**6}, "eos_token_id"),
        ("config.json", {"eos_token_id": [0, "x"]}, "eos_token_id"),
        ("config.json", {"bos_token_id": 10**6}, "bos_token_id"),
        ("generation_config.json", {"forced_eos_token_id": 10**6}, "forced_eos_token_id"),
        ("generation_config.json", {"eos_token_id": -3}, "eos_token_id"),
        ("generation_config.json", {"bad_words_ids": [[10**6]]}, "bad_words_ids"),
    ],
)
def test_token_ids_must_be_in_the_vocabulary(
    root: Path, tmp_path: Path, file: str, values: dict[str, Any], key: str
) -> None:
    path = _copy(root, tmp_path)
    _edit(path, file, _set(**values))
    _load_fails(path, file, key)


def test_generation_token_keys_from_config_json_name_it(root: Path, tmp_path: Path) -> None:
    path = _copy(root, tmp_path, "m2m100")
    _edit(path, "generation_config.json", lambda g: g.pop("decoder_start_token_id"))
    _edit(path, "config.json", _set(decoder_start_token_id=10**6))
    _load_fails(path, "config.json", "decoder_start_token_id")


# ---------------------------------------------------------------- generation_config.json
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bad_words_ids", 5),
        ("bad_words_ids", [5]),
        ("bad_words_ids", [[]]),
        ("bad_words_ids", [["<pad>"]]),
        ("bad_words_ids", "[[1]]"),
        ("num_beams", 0),
        ("num_beams", -4),
        ("num_beams", 10**9),
        ("num_beams", "4"),
        ("num_beams", 4.5),
        ("num_beams", math.inf),
        ("length_penalty", math.nan),
        ("length_penalty", math.inf),
        ("length_penalty", -math.inf),
        ("length_penalty", 1e308),
        ("length_penalty", 10**400),
        ("length_penalty", "1.0"),
        ("length_penalty", True),
        ("max_length", 10**30),
        ("max_length", -5),
        ("max_length", "64"),
        ("max_length", 1e300),
        ("early_stopping", "yes"),
    ],
)
def test_malformed_generation_settings(root: Path, tmp_path: Path, key: str, value: Any) -> None:
    path = _copy(root, tmp_path)
    _edit(path, "generation_config.json", _set(**{key: value}))
    _load_fails(path, "generation_config.json", repr(key))


def test_generation_settings_parse_and_fall_back() -> None:
    gen = GenerationDefaults.from_hf(
        {"num_beams": 4, "length_penalty": -0.5, "bad_words_ids": [[3], [4, 5]], "max_length": 1},
        {"num_beams": "ignored: generation_config.json wins", "forced_eos_token_id": [2, 9]},
        eos_fallback=2,
        vocab_size=VOCAB,
    )
    assert (gen.num_beams, gen.length_penalty, gen.max_length) == (4, -0.5, None)
    assert gen.bad_token_ids == (3,)
    assert gen.forced_eos_token_id == 2
    assert gen.eos_token_ids == (2,)
    assert gen.ignored == ("bad_words_ids entry [4, 5]",)
    # A key only config.json carries is blamed on config.json.
    with pytest.raises(ModelLoadError, match=r"^config\.json: 'num_beams'"):
        GenerationDefaults.from_hf({}, {"num_beams": 0}, eos_fallback=2, vocab_size=VOCAB)
    # Without a vocabulary size the ids are still checked for type and sign.
    with pytest.raises(ModelLoadError, match="forced_eos_token_id"):
        GenerationDefaults.from_hf({"forced_eos_token_id": -1}, {}, eos_fallback=2)


def test_long_ignored_values_are_cut() -> None:
    gen = GenerationDefaults.from_hf(
        {"repetition_penalty": [1.5] * 10_000}, {}, eos_fallback=2, vocab_size=VOCAB
    )
    assert len(gen.ignored[0]) < 120


# ---------------------------------------------------------------- the path itself
@pytest.mark.parametrize("kind", [str, Path])
def test_very_long_path(tmp_path: Path, kind: Callable[[str], Any]) -> None:
    source = kind(str(tmp_path / ("a" * 5000)))
    with pytest.raises(ModelLoadError, match="cannot access translation model path") as info:
        resolve_translation_source(source)
    assert "too long" in str(info.value)
    assert len(str(info.value)) < 1000
    with pytest.raises(ModelLoadError):  # a bare 5000-character name looks like a hub id
        resolve_translation_source("a" * 5000)


@pytest.mark.parametrize("where", ["source", "config.json"])
def test_unreadable_path(root: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    # Permission bits do not stop root (the test user in CI), so the OS error is injected.
    denied = root / "marian" if where == "source" else root / "marian" / "config.json"
    real_stat = Path.stat

    def stat(self: Path, **kwargs: Any) -> Any:
        if self == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(ModelLoadError, match="cannot access translation model path") as info:
        load_translation_model(root / "marian", device="cpu")
    assert str(denied) in str(info.value) and "Permission denied" in str(info.value)


def test_unknown_home_directory() -> None:
    with pytest.raises(ModelLoadError, match="cannot access"):
        resolve_translation_source("~no-such-user-botkit/model")


def test_odd_paths_are_named(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # a symlink loop points nowhere: "does not exist"
    with pytest.raises(ModelLoadError, match=r"translation model path .*loop.* does not exist"):
        resolve_translation_source(loop)
    with pytest.raises(ModelLoadError, match=r"translation model path .* is invalid"):
        resolve_translation_source(str(tmp_path / "nul\x00byte"))
    plain = tmp_path / "weights.bin"
    plain.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is not a directory"):
        resolve_translation_source(plain)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve_translation_source(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").mkdir()  # a directory named config.json
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve_translation_source(tmp_path / "odd")
