"""Keeping the GGUF conversion cache bounded: content keys, locks, sweeping and pruning.

A conversion is float32, about 5.5x its Q4 GGUF (SmolLM2-135M: 94 MB -> 517 MB; a 7B
Q4 model: ~28 GB), so the cache must not keep one per install path (the old key was the
resolved path + mtime: one audit machine held 25 copies of the same SmolLM2, 13 GB) nor the
temporary directories of conversions that were killed (``finally`` never runs after SIGKILL
or the OOM killer).

- ``content_key``: the file's size and a hash of its head (the GGUF header and tokenizer)
  and of evenly spaced samples; the same file under any path, venv or mtime has the
  same key, and reading ~10 MB costs milliseconds where hashing a 4 GB file costs seconds
  at every start. Two quantizations or fine-tunes differ in every sampled block.
- ``hold_lock``: a conversion holds an flock on ``<tmp>/.lock`` while it writes.
- ``sweep_stale``: removes ``.<key>-*`` directories older than ``STALE_AFTER_S`` whose
  lock nobody holds (a killed conversion).
- ``prune``: after a conversion, removes older conversions of the same source path
  (made under the same transformers major: another venv's stay) and all but the
  ``KEEP_CONVERSIONS`` most recently used ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from engine.loader._gguf_cache import MARKER, discard, is_gguf_cache

__all__ = [
    "KEEP_CONVERSIONS",
    "LOCK",
    "STALE_AFTER_S",
    "content_key",
    "hold_key_lock",
    "hold_lock",
    "mark_used",
    "prune",
    "sweep_stale",
]

log = logging.getLogger(__name__)

KEEP_CONVERSIONS = 4  # the most recently used conversions kept (of different files)
STALE_AFTER_S = 15 * 60  # a temp dir untouched this long, and unlocked, was abandoned
LOCK = ".lock"
_HEAD = 8 << 20  # the header with a 256k-token vocabulary fits in 8 MiB
_SAMPLES, _SAMPLE = 32, 64 << 10


def content_key(path: Path, size: int, version: int) -> str:
    """A cache key from ``path``'s content, not its location.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256(f"{version}\0{size}\0".encode())
    with path.open("rb") as f:
        digest.update(f.read(_HEAD))
        if size > _HEAD:
            step = (size - _HEAD) // (_SAMPLES + 1)
            for i in range(1, _SAMPLES + 1):
                f.seek(_HEAD + i * step)
                digest.update(f.read(_SAMPLE))
            f.seek(max(_HEAD, size - _SAMPLE))
            digest.update(f.read(_SAMPLE))
    return digest.hexdigest()[:20]


def hold_lock(tmp: Path) -> BinaryIO:
    """Lock ``tmp`` for a conversion; the lock lasts while the returned file is open
    (and ends when the process dies, however it dies)."""
    lock = (tmp / LOCK).open("wb")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def hold_key_lock(root: Path, key: str) -> BinaryIO:
    """Lock the conversion of ``key`` in ``root`` (``root/.<key>.lock``): a second
    process converting the same file waits here, then finds the first one's conversion
    instead of converting it again. The lock lasts while the returned file is open.

    The lock file may be removed by its holder (a failed conversion, a prune): a process
    that was waiting on it then holds a lock on a file no one else can open, while a
    newcomer creates and locks a fresh one. So after locking, the open file is checked
    to still be the one at the path (same device and inode), and opened again if not.

    Raises:
        OSError: the lock file cannot be created.
    """
    path = root / f".{key}.lock"
    while True:
        lock = path.open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            held = os.fstat(lock.fileno())
            try:
                now = path.stat()
            except FileNotFoundError:
                now = None
        except BaseException:
            lock.close()
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return lock
        lock.close()  # removed or replaced while we waited: lock the one at the path


def _locked(tmp: Path) -> bool:
    try:
        with (tmp / LOCK).open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False  # a conversion that died before locking, or a discarded cache
    except OSError:
        return True  # held by a live conversion (or unreadable: leave it alone)
    return False


def sweep_stale(root: Path, *, now: float | None = None) -> None:
    """Remove the temporary directories that killed conversions left in ``root``."""
    now = time.time() if now is None else now
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if age > STALE_AFTER_S and not _locked(entry):
            log.info("removing %s, left by an interrupted GGUF conversion", entry)
            shutil.rmtree(entry, ignore_errors=True)


def mark_used(out: Path) -> None:
    """Record that ``out`` was used now (``prune`` keeps the most recently used)."""
    try:
        os.utime(out / MARKER)
    except OSError:
        pass  # a read-only cache still serves; it is just not pruned by use


def _transformers_major(entry: Path) -> str | None:
    """The transformers major a conversion's key names (``<key>-tf5``), None for keys
    made before the major was in them (``gguf_convert._cache_key``)."""
    _, tf, major = entry.name.rpartition("-tf")
    return major if tf and major.isdigit() else None


def prune(root: Path, keep: Path, source: Path) -> None:
    """Remove older conversions of ``source`` and all but the most recently used
    ``KEEP_CONVERSIONS`` (``keep`` included) from ``root``.

    A conversion of ``source`` under another transformers major is not older: a venv
    with that major uses it (two venvs sharing the cache deleted each other's at every
    start). Keys without a major (made before it was in them) are older.
    """
    major = _transformers_major(keep)
    entries: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        if entry == keep or entry.name.startswith(".") or not is_gguf_cache(entry):
            continue
        try:
            marker = json.loads((entry / MARKER).read_text(encoding="utf-8"))
            used = (entry / MARKER).stat().st_mtime
        except (OSError, ValueError):
            continue
        other_major = _transformers_major(entry) not in (None, major)
        if isinstance(marker, dict) and marker.get("source") == str(source) and not other_major:
            log.info("removing %s, an older conversion of %s", entry, source)
            _discard_with_lock(entry)
        else:
            entries.append((used, entry))
    entries.sort(reverse=True)
    for _, entry in entries[KEEP_CONVERSIONS - 1 :]:
        log.info("removing %s, the least recently used GGUF conversion", entry)
        _discard_with_lock(entry)


def _discard_with_lock(entry: Path) -> None:
    """Remove a conversion and its key's lock file, unless a process holds that lock
    (it is converting the file again: its lock must stay the one others wait on).

    The file is removed only while locked, and only if it is still the one locked: a
    waiter on it then finds it gone and locks a fresh one (``hold_key_lock``)."""
    discard(entry)
    lock_path = entry.parent / f".{entry.name}.lock"
    try:
        with lock_path.open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held, now = os.fstat(lock.fileno()), lock_path.stat()
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                lock_path.unlink()
    except OSError:
        pass  # held, gone, or not ours to remove
