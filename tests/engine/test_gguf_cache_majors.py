"""Two venvs with different transformers majors sharing the GGUF cache keep a
conversion each: pruning after one converts no longer removes the other's (each start
reconverted, minutes for a large model), while a conversion under a key without the
major (made before it was in the key) is still removed."""

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
    monkeypatch.setattr(gguf_convert, "_dist_version", lambda name: version)


def _must_not_run(*_: object) -> None:
    raise AssertionError("the GGUF was converted again")


def conversions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_each_major_keeps_its_conversion(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_transformers(monkeypatch, "5.2.0")
    under_5 = convert_gguf(gguf)
    _with_transformers(monkeypatch, "4.57.1")
    under_4 = convert_gguf(gguf)
    assert conversions(under_4.parent) == sorted([under_4.name, under_5.name])
    monkeypatch.setattr(gguf_convert, "_convert", _must_not_run)
    for version, out in (("5.2.0", under_5), ("4.57.1", under_4), ("5.3.0", under_5)):
        _with_transformers(monkeypatch, version)
        assert convert_gguf(gguf) == out


def test_a_conversion_keyed_without_the_major_is_replaced(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_transformers(monkeypatch, "4.57.1")
    out = convert_gguf(gguf)
    old_key = out.with_name(out.name.removesuffix("-tf4"))
    out.rename(old_key)  # as the previous botkit named it
    assert convert_gguf(gguf) == out
    assert conversions(out.parent) == [out.name]
