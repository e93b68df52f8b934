"""``botkit check-config``'s engine checks (``botkit.backends.preflight``): a device that
is not on this machine, float16 on the CPU, a mistyped relative model path, and a
hostile GGUF are problems named by their key."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from botkit.backends.preflight import model_problems
from botkit.config.loader import settings_from_mapping


def problems(engine: dict[str, Any], translator: dict[str, Any] | None = None) -> dict[str, str]:
    data: dict[str, Any] = {"backend": {"kind": "engine", "engine": engine}}
    if translator is not None:
        data["language"] = {"translator": {"kind": "engine", **translator}}
    settings = settings_from_mapping(data, environ={})
    return {p.path: p.message for p in model_problems(settings)}


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    return tmp_path / "m"


@pytest.mark.usefixtures("no_gpu")
def test_cuda_without_a_gpu_is_a_problem(model_dir: Path) -> None:
    found = problems({"model": str(model_dir), "device": "cuda"})
    assert "CUDA is not available" in found["backend.engine.device"]
    assert problems({"model": str(model_dir), "device": "cpu"}) == {}


def test_a_cuda_index_beyond_the_count_is_a_problem(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    found = problems({"model": str(model_dir), "device": "cuda:1"})
    assert "1 CUDA device (cuda:0 to cuda:0)" in found["backend.engine.device"]


@pytest.mark.usefixtures("no_gpu")
def test_float16_on_the_cpu_is_a_problem(model_dir: Path) -> None:
    found = problems({"model": str(model_dir), "device": "auto", "dtype": "float16"})
    assert "float16" in found["backend.engine.dtype"]


def test_a_relative_path_into_an_existing_directory_is_not_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    found = problems({"model": "models/my-modle", "device": "cpu"})
    assert "'models/my-modle' does not exist" in found["backend.engine.model"]


def test_offline_a_hub_id_missing_from_the_cache_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = problems({"model": "modles/my-model", "device": "cpu"})
    assert "HF_HUB_OFFLINE" in found["backend.engine.model"]
    assert "not a local path" in found["backend.engine.model"]


def test_a_hostile_gguf_is_a_problem(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.gguf"
    key = b"general.architecture"
    bomb.write_bytes(
        b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key
        + struct.pack("<IIQ", 9, 0, 2**40) + b"\0" * 64
    )  # fmt: skip
    found = problems({"model": str(bomb), "device": "cpu"})
    assert "claims 1099511627776 elements" in found["backend.engine.model"]
