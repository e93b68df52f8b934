"""The marker of a GGUF conversion cache directory, and checking a cache against it.

``convert_gguf`` writes the marker last, after every other file is complete, with the
size of each file. A cache damaged afterwards (a truncated copy, a partial backup
restore, a file deleted by hand) no longer matches its marker and is converted again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["MARKER", "damage", "discard", "is_gguf_cache", "write_marker"]

MARKER = "botkit_gguf.json"


def is_gguf_cache(model_dir: Path) -> bool:
    """Whether ``model_dir`` is a conversion written by ``convert_gguf``."""
    return (model_dir / MARKER).is_file()


def write_marker(out: Path, source: Path, source_size: int, version: int) -> None:
    """Record ``out``'s files and their sizes; call once every file is complete."""
    files = {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.is_file()}
    marker = {"source": str(source), "size": source_size, "version": version, "files": files}
    (out / MARKER).write_text(json.dumps(marker), encoding="utf-8")


def damage(out: Path) -> str | None:
    """What is wrong with a marked cache directory, or None when it matches its marker.

    Sizes only: hashing gigabytes at every start would cost more than the load, and a
    truncated or missing file is the damage that happens (a damaged header of the right
    size still fails loading, with a message naming the directory).
    """
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable {MARKER}: {exc}"
    files = marker.get("files") if isinstance(marker, dict) else None
    if files is None:
        return None  # written before sizes were recorded: trusted, as it was then
    if not isinstance(files, dict) or not files:
        return f"malformed {MARKER}"
    for name, size in files.items():
        try:
            actual = (out / str(name)).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes, {size} were written"
    return None


def discard(out: Path) -> None:
    """Move a damaged cache aside under a unique name, then delete it.

    Moving first frees the name for the new conversion at once; a process still reading
    the old files keeps its open handles.
    """
    aside = out.with_name(f".{out.name}-damaged-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(out, aside)
    except OSError:
        return  # gone already (another process discarded it) or not ours to move
    shutil.rmtree(aside, ignore_errors=True)
