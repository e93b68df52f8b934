"""The TranslationEngine API: languages, input rules, hostile inputs, checkpoint loading."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from seq2seq_tiny import SENTENCES, build_m2m100, build_marian, build_nllb

from engine.errors import EngineError, ModelLoadError, UnsupportedModelError
from engine.request_errors import InvalidRequestError
from engine.translation import (
    TranslationEngine,
    TranslationRequest,
    UnsupportedLanguagePairError,
    supported_translation_architectures,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
MAX_NEW = 12


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api")
    build_marian(path / "marian")
    build_m2m100(path / "m2m100")
    build_nllb(path / "nllb", eos_boost=1.0)
    build_marian(path / "multi", multi_target=True)
    return path


@pytest.fixture(scope="module")
def marian(root: Path) -> TranslationEngine:
    return TranslationEngine.load(root / "marian", dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def m2m(root: Path) -> TranslationEngine:
    return TranslationEngine.load(root / "m2m100", dtype="float32", device="cpu")


def test_registry() -> None:
    assert {"MarianMTModel", "M2M100ForConditionalGeneration"} <= set(
        supported_translation_architectures()
    )


def test_translate_returns_one_string_per_text(marian: TranslationEngine) -> None:
    out = marian.translate(SENTENCES, "en", "de", max_new_tokens=MAX_NEW)
    assert len(out) == len(SENTENCES) and all(isinstance(t, str) for t in out) and any(out)
    # In request order: each text alone translates to what it got in the batch. (Whether
    # a random model says something for every text depends on its weights, which differ
    # between transformers releases: one emits EOS first for the first sentence.)
    assert [marian.translate([s], "en", "de", max_new_tokens=MAX_NEW)[0] for s in SENTENCES] == out
    assert marian.translate([], "en", "de") == []


def test_marian_pair_support(marian: TranslationEngine) -> None:
    assert marian.supports("en", "de") and marian.supports("en-US", "de-CH")
    assert not marian.supports("en", "fr") and not marian.supports("fr", "de")
    assert marian.supports("de", "de")  # identity


def test_unsupported_pair_error_names_the_pair(marian: TranslationEngine) -> None:
    with pytest.raises(UnsupportedLanguagePairError, match=r"'en' -> 'fr'") as info:
        marian.translate(["Hello"], "en", "fr")
    assert isinstance(info.value, EngineError)
    assert (info.value.source, info.value.target) == ("en", "fr")
    assert "marian" in str(info.value) and str(info.value).endswith("model's: de")


def test_blank_and_same_language_texts_skip_the_model(marian: TranslationEngine) -> None:
    out = marian.translate(["", "   ", "\n", "Hello"], "en", "de", max_new_tokens=MAX_NEW)
    assert out[:3] == ["", "", ""] and out[3]
    assert marian.translate(["Hallo  Welt", ""], "de", "de") == ["Hallo  Welt", ""]


@pytest.mark.parametrize("bad", ["not a list", [None], [b"bytes"], [1, 2]])
def test_non_string_texts_are_rejected(marian: TranslationEngine, bad: Any) -> None:
    with pytest.raises(InvalidRequestError):
        marian.translate(bad, "en", "de")


@pytest.mark.parametrize(
    "options",
    [
        {"beam_size": 0},
        {"beam_size": 99},
        {"beam_size": True},
        {"max_new_tokens": 0},
        {"max_new_tokens": 1.5},
    ],
)
def test_bad_decoding_options_are_rejected(marian: TranslationEngine, options: Any) -> None:
    with pytest.raises(InvalidRequestError):
        marian.translate(["Hello"], "en", "de", **options)


def test_very_long_input_is_truncated_not_fatal(marian: TranslationEngine) -> None:
    """10k characters: the source is cut to max_source_tokens (EOS kept) and translated."""
    text = ("Where is my order? I paid by card last week. " * 250)[:10_000]
    plan = marian.plan("en", "de")
    ids = marian.codec.encode([text], plan)[0]
    assert len(ids) == marian.max_source_tokens == 128  # max_position_embeddings of the tiny model
    assert ids[-1] == marian.loaded.config.eos_token_id
    out = marian.translate([text, "ok"], "en", "de", max_new_tokens=MAX_NEW)
    assert all(isinstance(t, str) for t in out)


def test_output_limits(marian: TranslationEngine) -> None:
    plan = marian.plan("en", "de")
    sources = marian.codec.encode(["ok", SENTENCES[5]], plan)
    # Default: per sentence min(checkpoint max_length - 1, 2 * source + 16).
    outs = marian.generate_ids(sources)
    for src, out in zip(sources, outs, strict=True):
        assert len(out) <= min(63, 2 * len(src) + 16)
    # A limit beyond the checkpoint's max_length is capped there, not an error.
    long = marian.generate_ids(sources[:1], max_new_tokens=10_000)[0]
    assert len(long) <= 63


def test_source_ids_are_validated(marian: TranslationEngine) -> None:
    with pytest.raises(InvalidRequestError):
        marian.generate_ids([[]])
    with pytest.raises(InvalidRequestError):
        marian.generate_ids([[5, 10_000]])
    with pytest.raises(InvalidRequestError):
        marian.generate_ids([[5] * 500])


def test_m2m100_languages_and_mixed_pairs_in_one_batch(m2m: TranslationEngine) -> None:
    assert m2m.supports("en", "es") and m2m.supports("zh-TW", "fr") and m2m.supports("nb", "de")
    assert not m2m.supports("en", "tlh") and not m2m.supports("en", "")
    requests = [
        TranslationRequest(SENTENCES[0], "en", "es"),
        TranslationRequest(SENTENCES[1], "fr", "de"),
        TranslationRequest(SENTENCES[2], "es", "es"),
        TranslationRequest(SENTENCES[3], "en", "es"),
        TranslationRequest("", "fr", "de"),
    ]
    mixed = m2m.translate_requests(requests, beam_size=2, max_new_tokens=MAX_NEW)
    alone = [
        m2m.translate([r.text], r.source, r.target, beam_size=2, max_new_tokens=MAX_NEW)[0]
        for r in requests
    ]
    assert mixed == alone
    assert mixed[2] == SENTENCES[2] and mixed[4] == ""


def test_m2m100_source_ids_match_the_tokenizer(m2m: TranslationEngine) -> None:
    tok = m2m.loaded.tokenizer
    tok.src_lang = "fr"
    expected = tok(SENTENCES)["input_ids"]
    assert m2m.codec.encode(SENTENCES, m2m.plan("fr-CA", "de")) == expected


def test_nllb_codes_and_source_ids(root: Path) -> None:
    engine = TranslationEngine.load(root / "nllb", dtype="float32", device="cpu")
    plan = engine.plan("es-MX", "zh-TW")
    assert (plan.source_code, plan.target_code) == ("spa_Latn", "zho_Hant")
    tok = engine.loaded.tokenizer
    assert plan.forced_bos_id == tok.convert_tokens_to_ids("zho_Hant")
    tok.src_lang = "spa_Latn"
    assert engine.codec.encode(SENTENCES[:3], plan) == tok(SENTENCES[:3])["input_ids"]
    out = engine.translate(SENTENCES[:3], "es", "zh-TW", max_new_tokens=MAX_NEW)
    assert len(out) == 3 and all("zho_Hant" not in t for t in out)


def test_multi_target_marian_uses_target_tokens(root: Path) -> None:
    engine = TranslationEngine.load(root / "multi", dtype="float32", device="cpu")
    assert engine.supports("en", "es") and engine.supports("en", "fr")  # >>es<<, >>fra<<
    assert engine.supports("en", "de") and not engine.supports("en", "it")
    tok = engine.loaded.tokenizer
    ids = engine.codec.encode(["Where is my order?"], engine.plan("en", "fr"))[0]
    assert ids == tok(">>fra<< Where is my order?")["input_ids"]
    out = engine.translate(["Hello", "Where is my order?"], "en", "es", max_new_tokens=MAX_NEW)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_marian_pair_from_name_or_argument(root: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(root / "marian", bare)
    config_path = bare / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("source_lang"), config.pop("target_lang")
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="pair="):
        TranslationEngine.load(bare, dtype="float32", device="cpu")
    engine = TranslationEngine.load(bare, dtype="float32", device="cpu", pair=("es", "en"))
    assert engine.supports("es", "en") and not engine.supports("en", "de")
    named = tmp_path / "opus-mt-fr-en"
    bare.rename(named)
    assert TranslationEngine.load(named, dtype="float32", device="cpu").supports("fr", "en")


def test_pytorch_bin_checkpoint_loads_like_safetensors(
    root: Path, tmp_path: Path, marian: TranslationEngine
) -> None:
    build_marian(tmp_path / "bin", save_bin=True)
    assert not list((tmp_path / "bin").glob("*.safetensors"))
    engine = TranslationEngine.load(tmp_path / "bin", dtype="float32", device="cpu")
    expected = marian.translate(SENTENCES, "en", "de", max_new_tokens=MAX_NEW)
    assert engine.translate(SENTENCES, "en", "de", max_new_tokens=MAX_NEW) == expected


def test_ignored_generation_settings_are_logged(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ngram"
    shutil.copytree(root / "marian", path)
    gen = json.loads((path / "generation_config.json").read_text())
    gen["no_repeat_ngram_size"] = 3
    (path / "generation_config.json").write_text(json.dumps(gen))
    with caplog.at_level(logging.WARNING):
        TranslationEngine.load(path, dtype="float32", device="cpu")
    assert "no_repeat_ngram_size=3" in caplog.text


# ------------------------------------------------------------------ broken checkpoints
def _copy(root: Path, tmp_path: Path, name: str = "marian") -> Path:
    path = tmp_path / "ckpt"
    shutil.copytree(root / name, path)
    return path


def test_missing_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        TranslationEngine.load(tmp_path / "nowhere", device="cpu")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        TranslationEngine.load(tmp_path, device="cpu")


def test_unreachable_hub_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="could not be fetched"):
        TranslationEngine.load("botkit-test/opus-mt-xx-yy-missing", device="cpu")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_weights(root: Path, tmp_path: Path, damage: str) -> None:
    path = _copy(root, tmp_path)
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00" * 4096, "empty": b""}[damage]
    )
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        TranslationEngine.load(path, device="cpu")


def test_corrupt_bin_weights(tmp_path: Path) -> None:
    build_marian(tmp_path / "bin", save_bin=True)
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelLoadError, match=r"pytorch_model\.bin"):
        TranslationEngine.load(tmp_path / "bin", device="cpu")


def test_missing_weights_file_and_tensor(root: Path, tmp_path: Path) -> None:
    path = _copy(root, tmp_path)
    from safetensors.torch import load_file, save_file

    tensors = load_file(path / "model.safetensors")
    del tensors["model.decoder.layers.1.fc2.bias"]
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"layers\.1\.fc2\.bias"):
        TranslationEngine.load(path, device="cpu")
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        TranslationEngine.load(path, device="cpu")


def test_wrong_shapes_are_named(root: Path, tmp_path: Path) -> None:
    path = _copy(root, tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["encoder_ffn_dim"] = 96
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"encoder\.layers\.0\.fc1\.(weight|bias)"):
        TranslationEngine.load(path, device="cpu")


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda c: "{not json", ModelLoadError, "cannot read"),
        (
            lambda c: json.dumps({**c, "architectures": ["LlamaForCausalLM"]}),
            UnsupportedModelError,
            "LlamaForCausalLM",
        ),
        (
            lambda c: json.dumps({k: v for k, v in c.items() if k != "architectures"}),
            ModelLoadError,
            "architectures",
        ),
        (lambda c: json.dumps({**c, "activation_function": "mish"}), UnsupportedModelError, "mish"),
        (lambda c: json.dumps({**c, "d_model": -4}), ModelLoadError, "d_model"),
        (lambda c: json.dumps({**c, "pad_token_id": "x"}), ModelLoadError, "pad_token_id"),
    ],
)
def test_bad_config(
    root: Path, tmp_path: Path, edit: Any, error: type[Exception], match: str
) -> None:
    path = _copy(root, tmp_path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(edit(config))
    with pytest.raises(error, match=match):
        TranslationEngine.load(path, device="cpu")


def test_missing_tokenizer_files(root: Path, tmp_path: Path) -> None:
    path = _copy(root, tmp_path, "m2m100")
    (path / "sentencepiece.bpe.model").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        TranslationEngine.load(path, device="cpu")


def test_unavailable_device_and_dtype(root: Path) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA"):
            TranslationEngine.load(root / "marian", device="cuda")
    with pytest.raises(ModelLoadError, match="dtype"):
        TranslationEngine.load(root / "marian", dtype="int8", device="cpu")


def test_decoding_no_sequences_gives_no_texts(marian: TranslationEngine) -> None:
    """transformers 5.17 decodes an empty batch as one empty text; the codec must not
    (an all-identity request batch then failed zip(strict=True) on the GPU image)."""
    from engine.translation.tokenization import TextCodec

    class OldBatchDecode:
        def batch_decode(self, seqs: list[list[int]], **_: Any) -> list[str]:
            return [""] if not seqs else ["x"] * len(seqs)

    codec = TextCodec(OldBatchDecode(), max_source_tokens=8, strip_ids=set())
    assert codec.decode([]) == []
    assert codec.decode([[5], [6]]) == ["x", "x"]
