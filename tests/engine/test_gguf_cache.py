"""The GGUF conversion cache stays bounded: keyed by content (not by install path),
older conversions of a file and the least recently used are removed, and the temporary
directory of a killed conversion is swept at a later start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hf_tiny import build_tokenizer, tiny_config, tiny_model, write_gguf

import engine.loader._gguf_cache_gc as gc
import engine.loader.gguf_convert as gguf_convert
from engine.loader import convert_gguf


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOTKIT_CACHE_DIR", str(tmp_path / "botkit-cache"))
    return tmp_path / "botkit-cache" / "gguf"


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tok = build_tokenizer()
    where = tmp_path_factory.mktemp("ggufs")
    return [
        write_gguf(
            tiny_model(tiny_config("LlamaForCausalLM", vocab_size=len(tok)), seed=seed),
            tok,
            where / f"m{seed}.gguf",
        )
        for seed in range(3)
    ]


def _must_not_run(*_: object) -> None:
    raise AssertionError("the GGUF was converted again")


def entries(cache: Path) -> list[str]:
    """The conversions and leftovers in the cache (not the per-key lock files)."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_the_same_file_elsewhere_reuses_its_conversion(
    ggufs: list[Path], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old key (resolved path + mtime) gave every venv and reinstall its own copy.
    out = convert_gguf(ggufs[0])
    for i in range(3):
        copy = tmp_path / f"venv{i}" / "site-packages" / "model.gguf"
        copy.parent.mkdir(parents=True)
        shutil.copyfile(ggufs[0], copy)
        os.utime(copy, (time.time() + 100 * i, time.time() + 100 * i))
        monkeypatch.setattr(gguf_convert, "_convert", _must_not_run)
        assert convert_gguf(copy) == out
    assert entries(cache) == [out.name]


def test_a_replaced_file_removes_its_older_conversion(
    ggufs: list[Path], tmp_path: Path, cache: Path
) -> None:
    path = tmp_path / "model.gguf"
    shutil.copyfile(ggufs[0], path)
    first = convert_gguf(path)
    shutil.copyfile(ggufs[1], path)  # the operator downloads a newer quantization
    second = convert_gguf(path)
    assert second != first
    assert entries(cache) == [second.name]


def test_only_the_most_recently_used_conversions_are_kept(
    ggufs: list[Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc, "KEEP_CONVERSIONS", 2)
    a = convert_gguf(ggufs[0])
    b = convert_gguf(ggufs[1])
    past = time.time() - 3600
    os.utime(b / "botkit_gguf.json", (past, past))
    assert convert_gguf(ggufs[0]) == a  # a hit marks a as used now; b is older
    c = convert_gguf(ggufs[2])
    assert entries(cache) == sorted([a.name, c.name])
    locks = sorted(p.name for p in cache.iterdir() if p.name.endswith(".lock"))
    assert locks == sorted(f".{p.name}.lock" for p in (a, c))  # b's went with it


def test_a_killed_conversion_leaves_a_dir_that_a_later_start_sweeps(
    ggufs: list[Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A conversion killed by SIGKILL (or the OOM killer) never runs its `finally`.
    code = (
        "import os, signal, sys; from pathlib import Path\n"
        "import engine.loader.gguf_convert as g\n"
        "def die(path, out):\n"
        "    (out / 'model.safetensors').write_bytes(b'x' * 4096)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "g._convert = die\n"
        f"g.convert_gguf(Path({str(ggufs[0])!r}))\n"
    )
    child = subprocess.run([sys.executable, "-c", code], env=os.environ, timeout=120)
    assert child.returncode == -9
    (left,) = [p for p in cache.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert convert_gguf(ggufs[1]).is_dir()
    assert left.is_dir()  # recent: it may be a conversion that has not locked yet
    old = time.time() - gc.STALE_AFTER_S - 60
    os.utime(left, (old, old))
    out = convert_gguf(ggufs[0])
    assert not left.exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert (out / "model.safetensors").stat().st_size > 4096


def test_a_running_conversion_is_not_swept(cache: Path, tmp_path: Path) -> None:
    cache.mkdir(parents=True)
    running = cache / ".abc-running"
    running.mkdir()
    lock: Any = gc.hold_lock(running)
    old = time.time() - gc.STALE_AFTER_S - 60
    os.utime(running, (old, old))
    try:
        gc.sweep_stale(cache)
        assert running.is_dir()
    finally:
        lock.close()
    gc.sweep_stale(cache)
    assert not running.exists()


def test_two_loads_of_one_file_at_once_convert_it_once(
    ggufs: list[Path], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    convert, calls = gguf_convert._convert, []

    def slow_convert(path: Path, out: Path) -> None:
        calls.append(path)
        time.sleep(0.5)  # the second load arrives while the first converts
        convert(path, out)

    monkeypatch.setattr(gguf_convert, "_convert", slow_convert)
    with ThreadPoolExecutor(2) as pool:  # flock: two opens contend, even in one process
        outs = list(pool.map(convert_gguf, [ggufs[0], ggufs[0]]))
    assert outs[0] == outs[1] and len(calls) == 1
    assert entries(cache) == [outs[0].name]


def test_a_lock_file_removed_under_a_waiter_never_lets_two_hold_the_key(
    tmp_path: Path,
) -> None:
    # A holds; B waits on A's lock file; A removes it under the lock (a failed
    # conversion does, and so does a prune that locked it first) and lets go; C arrives
    # and creates a fresh one. B must not hold the removed file's lock while C holds the
    # new one.
    root = tmp_path / "keys"
    root.mkdir()
    a = gc.hold_key_lock(root, "k")
    held: list[str] = []
    locks: list[Any] = []

    def take(name: str) -> None:
        locks.append(gc.hold_key_lock(root, "k"))
        held.append(name)

    b = threading.Thread(target=take, args=("B",), daemon=True)
    b.start()
    time.sleep(0.2)  # B is in flock, on A's file
    Path(a.name).unlink()
    a.close()
    b.join(2)
    c = threading.Thread(target=take, args=("C",), daemon=True)
    c.start()
    c.join(0.5)
    try:
        assert len(held) == 1, held
    finally:
        for lock in locks:
            lock.close()
        c.join(2)
