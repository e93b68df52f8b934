"""A GGUF conversion is keyed by the transformers major version too: transformers writes
the converted tokenizer, and a conversion made under 5 (tokenizer_class
"TokenizersBackend") failed to load under 4.x, which reused it by the file's key alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_tiny import tiny_gguf_in_cache

import engine.loader.gguf_convert as gguf_convert
from engine.loader import convert_gguf


@pytest.fixture
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return tiny_gguf_in_cache(tmp_path, monkeypatch)


def _with_transformers(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    def dist_version(name: str) -> str:
        assert name == "transformers"
        return version

    monkeypatch.setattr(gguf_convert, "_dist_version", dist_version)


def test_another_transformers_major_gets_its_own_conversion(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_transformers(monkeypatch, "5.24.0")
    made_under_5 = convert_gguf(gguf)
    _with_transformers(monkeypatch, "4.56.2")
    made_under_4 = convert_gguf(gguf)
    assert made_under_4 != made_under_5
    assert made_under_4.name.endswith("-tf4") and (made_under_4 / "config.json").is_file()


def test_minor_versions_share_a_conversion(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = gguf.stat().st_size
    _with_transformers(monkeypatch, "4.56.0")
    key = gguf_convert._cache_key(gguf, size)
    _with_transformers(monkeypatch, "4.57.1")
    assert gguf_convert._cache_key(gguf, size) == key
    _with_transformers(monkeypatch, "5.0.0")
    assert gguf_convert._cache_key(gguf, size) != key
