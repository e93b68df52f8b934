"""The bounded GGUF header walk: a hostile header is a prompt ModelLoadError, before
``gguf.GGUFReader`` builds one Python object per element it claims."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hf_tiny import build_tokenizer, tiny_config, tiny_model, write_gguf

import engine.loader._gguf_header as gguf_header
from engine.errors import ModelLoadError
from engine.loader import convert_gguf
from engine.loader._gguf_header import check_gguf_header
from engine.loader.source import locate_source

_ARCH_KEY = b"general.architecture"


def header(tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs)


def key(name: bytes) -> bytes:
    return struct.pack("<Q", len(name)) + name


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data + b"\0" * 64)
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(tmp_path / "botkit-cache"))
    return tmp_path / "botkit-cache"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = build_tokenizer()
    model = tiny_model(tiny_config("LlamaForCausalLM", vocab_size=len(tok)), seed=3)
    return write_gguf(model, tok, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


HOSTILE: dict[str, tuple[bytes, str]] = {
    # 2**40 uint8 elements in a 100-byte file: the reader used to grow until killed.
    "huge-array": (
        header(0, 1) + key(_ARCH_KEY) + struct.pack("<IIQ", 9, 0, 2**40),
        "claims 1099511627776 elements",
    ),
    "huge-string-array": (
        header(0, 1) + key(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**40),
        "claims 1099511627776 elements",
    ),
    "huge-counts": (header(2**40, 2**40), "metadata entries cannot fit"),
    "huge-string": (header(0, 1) + key(_ARCH_KEY) + struct.pack("<IQ", 8, 2**50), "claims"),
    "huge-key": (header(0, 1) + struct.pack("<Q", 2**62), "claims"),
    "nested-arrays": (
        header(0, 1) + key(b"x") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 4 + b"\0" * 12,
        "nests arrays",
    ),
    "unknown-type": (header(0, 1) + key(b"x") + struct.pack("<I", 77), "unknown value type 77"),
    "bad-version": (b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "GGUF version 7"),
    "tensor-past-the-end": (
        header(1, 0) + key(b"token_embd.weight") + struct.pack("<IQQIQ", 2, 64, 2**20, 0, 0),
        "token_embd.weight",
    ),
    "too-many-dims": (header(1, 0) + key(b"t") + struct.pack("<I", 9) + b"\0" * 80, "9 dimensions"),
    "unknown-ggml-type": (
        header(1, 0) + key(b"t") + struct.pack("<IQIQ", 1, 1, 999, 0),
        "unknown ggml type 999",
    ),
    "bad-alignment": (
        header(0, 1) + key(b"general.alignment") + struct.pack("<II", 4, 3),
        "not a power of two",
    ),
    "short": (b"GGUF\3\0\0\0", "fewer than a GGUF header"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_header_is_refused_before_the_reader(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, message = HOSTILE[case]
    path = tmp_path / f"{case}.gguf"
    path.write_bytes(data if case == "short" else data + b"\0" * 64)
    import gguf

    def reader_must_not_run(*_: Any, **__: Any) -> None:
        raise AssertionError("GGUFReader was given a hostile file")

    monkeypatch.setattr(gguf, "GGUFReader", reader_must_not_run)
    with pytest.raises(ModelLoadError, match=message):
        convert_gguf(path)
    with pytest.raises(ModelLoadError, match=message):  # check-config's path too
        locate_source(str(path))


def test_the_claimed_array_is_refused_promptly_under_a_memory_limit(tmp_path: Path) -> None:
    # The audit's file, in a child with a 3 GB address-space limit: before the walk it
    # ran for 50 s into MemoryError/SystemError (or the OOM killer without a limit).
    path = write(
        tmp_path / "bomb.gguf",
        header(0, 1) + key(_ARCH_KEY) + struct.pack("<IIQ", 9, 0, 2**40),
    )
    code = (
        "import sys; from pathlib import Path; from engine.loader import convert_gguf\n"
        "from engine.errors import ModelLoadError\n"
        f"try: convert_gguf(Path({str(path)!r}), Path({str(tmp_path / 'c')!r}))\n"
        "except ModelLoadError as e: print('REFUSED', e); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    limit = 3 << 30

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, preexec_fn=cap
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REFUSED" in result.stdout and "bomb.gguf" in result.stdout


def test_array_elements_are_capped_in_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each element fits the file, but together they exceed what the reader can afford.
    monkeypatch.setattr(gguf_header, "MAX_ARRAY_ELEMENTS", 100)
    body = b"".join(key(b"a%d" % i) + struct.pack("<IIQ", 9, 0, 60) + b"\0" * 60 for i in range(2))
    path = write(tmp_path / "many.gguf", header(0, 2) + body)
    with pytest.raises(ModelLoadError, match="more than 100 elements"):
        check_gguf_header(path)


def test_a_real_gguf_passes_and_converts(tiny_gguf: Path) -> None:
    check_gguf_header(tiny_gguf)
    assert "GGUF file" in locate_source(str(tiny_gguf))
    assert (convert_gguf(tiny_gguf) / "config.json").is_file()


def test_a_truncated_real_gguf_is_refused_by_the_walk(tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf.*tensor '"):
        check_gguf_header(cut)


def test_the_element_cap_leaves_room_to_spare(tmp_path: Path) -> None:
    # 3M one-byte elements: a 3 MB file whose string arrays would cost the reader GBs.
    count = 3 << 20
    body = key(b"a") + struct.pack("<IIQ", 9, 0, count) + b"\0" * count
    path = write(tmp_path / "wide.gguf", header(0, 1) + body)
    with pytest.raises(ModelLoadError, match=f"more than {1 << 21} elements"):
        check_gguf_header(path)


def test_value_strings_are_stepped_over_not_copied(tmp_path: Path) -> None:
    length = 32 << 20
    body = key(b"general.name") + struct.pack("<IQ", 8, length) + b"x" * length
    path = write(tmp_path / "long-name.gguf", header(0, 1) + body)
    tracemalloc.start()
    try:
        check_gguf_header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # a copy of the value would be 32 MiB
