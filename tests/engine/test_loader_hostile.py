"""load_model / convert_gguf on absurd config.json and GGUF metadata values (a
ModelLoadError naming the field, never a raw RuntimeError/TypeError/ZeroDivisionError or an
allocation of what the config claims), and a GGUF cache damaged after conversion."""

from __future__ import annotations

import copy
import errno
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
from engine.loader import convert_gguf, load_model, resolve_source


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
    "huge-mlp": ({"intermediate_size": 10**13}, r"down_proj.*'intermediate_size'=10{13}"),
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
    """A consistent config (3 heads of an explicit 16 dims, 3 KV heads) that does not
    fit the Q/K tensors (64 rows): refused before any tensor is converted."""
    original = gguf.GGUFWriter.add_head_count

    def three_heads(self: Any, n: int) -> None:
        original(self, 3)
        self.add_key_length(16)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gguf.GGUFWriter, "add_head_count", three_heads)
        mp.setattr(gguf.GGUFWriter, "add_head_count_kv", lambda self, n: None)
        path = write_gguf(llama, tok, tmp_path / "evil.gguf")
    match = r"q_proj.*\(48, 64\).*'blk\.0\.attn_q\.weight'.*'llama\.attention\.head_count'=3"
    with pytest.raises(ModelLoadError, match=match) as info:
        convert_gguf(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"block_count": 3}, r"'llama\.block_count' is 3, but the checkpoint has 2 layers"),
        ({"block_count": 1}, r"'llama\.block_count' is 1, but the checkpoint has 2 layers"),
        (
            {"feed_forward_length": 200},
            r"_proj.*'blk\.0\.ffn_\w+\.weight'.*'llama\.feed_forward_length'=200",
        ),
        (
            {"head_count_kv": 4},
            r"k_proj.*'blk\.0\.attn_k\.weight'.*'llama\.attention\.head_count_kv'=4",
        ),
        (
            {"head_count": 2, "rope_dimension_count": None},  # 2 heads of 32: q still fits
            r"k_proj.*'llama\.attention\.head_count_kv'=2, 'llama\.attention\.key_length'=32",
        ),
    ],
    ids=["more-blocks", "fewer-blocks", "ffn-length", "kv-heads", "heads"],
)
def test_gguf_metadata_is_checked_against_its_tensors(
    llama: PreTrainedModel,
    tok: Any,
    tmp_path: Path,
    _isolated_cache: Path,
    meta: dict[str, Any],
    match: str,
) -> None:
    path = hostile_gguf(llama, tok, tmp_path / "evil.gguf", **meta)
    with pytest.raises(ModelLoadError, match=match) as info:
        convert_gguf(path)
    assert str(path) in str(info.value)
    assert not any((_isolated_cache / "gguf").iterdir())  # no cache written


def test_gguf_non_finite_weights_are_refused_before_caching(
    llama: PreTrainedModel, tok: Any, tmp_path: Path, _isolated_cache: Path
) -> None:
    damaged = copy.deepcopy(llama)
    with torch.no_grad():  # a norm weight: stored as F32, so the NaN reaches the file as is
        damaged.model.layers[1].post_attention_layernorm.weight[7] = math.nan
    path = write_gguf(damaged, tok, tmp_path / "nan.gguf")
    with pytest.raises(ModelLoadError, match=r"'blk\.1\.ffn_norm\.weight' holds NaN") as info:
        convert_gguf(path)
    assert str(path) in str(info.value)
    assert not any((_isolated_cache / "gguf").iterdir())


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


# -- config sizes against the checkpoint's tensors (read from the headers) -----------------

IN_FILE = r"_proj.*\(in model\.safetensors\)"
MISFIT_CONFIGS = {
    "more-layers": ({"num_hidden_layers": 40}, r"'num_hidden_layers' is 40, but the checkpoint "
                    r"has 2 layers \(model\.layers\.0-1\)"),
    "fewer-layers": ({"num_hidden_layers": 1}, r"'num_hidden_layers' is 1, but .* 2 layers"),
    "heads": ({"num_attention_heads": 8}, IN_FILE + r".*'num_attention_heads'=8"),
    "kv-heads": ({"num_key_value_heads": 4}, r"k_proj.*'num_key_value_heads'=4"),
    "head-dim": ({"head_dim": 32}, r"[kqv]_proj.*'head_dim'=32"),
    "mlp": ({"intermediate_size": 4096}, IN_FILE + r".*'intermediate_size'=4096"),
    "hidden": ({"hidden_size": 128}, r"'hidden_size'=128"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MISFIT_CONFIGS))
def test_config_sizes_are_checked_against_the_tensors(
    checkpoint: Path, tmp_path: Path, case: str
) -> None:
    changes, match = MISFIT_CONFIGS[case]
    bad = edited(checkpoint, tmp_path / "bad", **changes)
    with pytest.raises(ModelLoadError, match=match) as info:
        load_model(bad, device="cpu", dtype="float32")
    assert str(bad) in str(info.value)


@pytest.fixture
def rope_tables(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Records every rotary table built as (positions, device); a real one larger than
    the loader's bound fails the test before it is allocated (5x its size at peak)."""
    import kernels

    built: list[tuple[int, str]] = []
    real = kernels.rope_cos_sin

    def spy(head_dim: int, positions: int, *args: Any, **kwargs: Any) -> torch.Tensor:
        device = torch.device(args[2] if len(args) > 2 else kwargs.get("device") or "cpu")
        built.append((positions, device.type))
        if device.type != "meta" and positions * head_dim * 4 > 64 << 20:
            raise AssertionError(f"a {positions} x {head_dim} rotary table was built")
        return real(head_dim, positions, *args, **kwargs)

    monkeypatch.setattr(kernels, "rope_cos_sin", spy)
    return built


def test_rope_table_is_bounded_by_the_weights(
    checkpoint: Path, tmp_path: Path, rope_tables: list[tuple[int, str]]
) -> None:
    # 2**24 positions pass the config's sanity bound; for a 16-dim head that is a 1 GiB
    # table next to ~0.3 MB of weights.
    bad = edited(checkpoint, tmp_path / "bad", max_position_embeddings=1 << 24)
    with pytest.raises(
        ModelLoadError, match=r"'max_position_embeddings' is 16777216: its rotary table"
    ) as info:
        load_model(bad, device="cpu", dtype="float32")
    assert str(bad) in str(info.value)
    # Up to the 64 MiB floor any checkpoint may have its long context.
    ok = edited(checkpoint, tmp_path / "ok", max_position_embeddings=1 << 20)
    loaded = load_model(ok, device="cpu", dtype="float32")
    assert loaded.model_config.max_position == 1 << 20
    assert (1 << 20, "cpu") in rope_tables


# -- damaged weights: non-finite values, non-float dtypes ----------------------------------


def with_tensor(src: Path, dst: Path, name: str, tensor: torch.Tensor) -> Path:
    """A copy of the checkpoint (other files linked) with one tensor replaced."""
    from safetensors.torch import load_file, save_file

    dst.mkdir()
    for f in src.iterdir():
        if f.name != "model.safetensors":
            (dst / f.name).symlink_to(f)
    tensors = load_file(src / "model.safetensors")
    tensors[name] = tensor
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


DOWN = "model.layers.1.mlp.down_proj.weight"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_weights_are_refused(
    llama: PreTrainedModel, checkpoint: Path, tmp_path: Path, value: float
) -> None:
    weight = llama.state_dict()[DOWN].clone()
    weight[3, 5] = value
    bad = with_tensor(checkpoint, tmp_path / "bad", DOWN, weight)
    with pytest.raises(ModelLoadError, match=rf"'{DOWN}' holds NaN or infinite") as info:
        load_model(bad, device="cpu", dtype="float32")
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.bool], ids=str)
def test_non_float_weights_are_refused(
    llama: PreTrainedModel, checkpoint: Path, tmp_path: Path, dtype: torch.dtype
) -> None:
    codes = (llama.state_dict()[DOWN] * 10).to(dtype)
    bad = with_tensor(checkpoint, tmp_path / "bad", DOWN, codes)
    match = rf"'{DOWN}': dtype {dtype} is not a floating-point type.*model\.safetensors"
    with pytest.raises(ModelLoadError, match=match):
        load_model(bad, device="cpu", dtype="float32")


def test_load_weights_refuses_non_float_tensors(llama: PreTrainedModel) -> None:
    """The weight loaders themselves (what a caller without the header check reaches)."""
    from engine.loader import load_weights
    from engine.models import config_from_hf, get_model_class

    config = config_from_hf(llama.config.to_dict())
    model = get_model_class(config.architecture)(config)
    weights = dict(llama.state_dict())
    weights["model.layers.0.self_attn.v_proj.weight"] = torch.ones(32, 64, dtype=torch.int32)
    with pytest.raises(ModelLoadError, match=r"v_proj\.weight': dtype torch\.int32 is not a"):
        load_weights(model, weights.items(), source="test")


# -- config.json that transformers cannot read ------------------------------------------


@pytest.mark.parametrize("change", [{"attention_dropout": "abc"}, {"id2label": 5}])
def test_config_json_transformers_cannot_read_is_named(
    checkpoint: Path, tmp_path: Path, change: dict[str, Any]
) -> None:
    """Keys the engine does not read but transformers' AutoTokenizer does (it loads the
    model config to choose the tokenizer class)."""
    bad = edited(checkpoint, tmp_path / "bad", **change)
    with pytest.raises(ModelLoadError) as info:
        load_model(bad, device="cpu", dtype="float32")
    message = str(info.value)
    assert message.startswith(f"{bad / 'config.json'}: transformers cannot read it"), message
    assert "cannot load the tokenizer" not in message


# -- source paths the OS refuses to look at -------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_path_too_long_is_a_model_load_error(tmp_path: Path, kind: str) -> None:
    text = str(tmp_path / ("x" * 5000))
    with pytest.raises(ModelLoadError, match="File name too long") as info:
        resolve_source(text if kind == "str" else Path(text))
    assert len(str(info.value)) < 1000  # the path is shortened, not printed 5000 long


@pytest.mark.parametrize("where", ["source", "config.json"])
def test_permission_denied_is_a_model_load_error(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # Tests run as root here, where chmod denies nothing: the OS's answer is simulated.
    denied = checkpoint if where == "source" else checkpoint / "config.json"
    real_stat = Path.stat

    def stat(self: Path, **kwargs: Any) -> Any:
        if self == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(ModelLoadError, match=f"cannot access model path.*{denied.name}.*denied"):
        resolve_source(checkpoint)
