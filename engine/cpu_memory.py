"""How much memory a CPU engine may still take: the KV cache is sized from it, and an
explicit ``kv_cache_blocks`` is checked against it before gigabytes are zero-filled."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["available_memory_bytes"]

_CGROUP = Path("/sys/fs/cgroup")


def available_memory_bytes() -> int | None:
    """Bytes this process can still allocate without swapping or an OOM kill: the
    system's ``MemAvailable``, capped by the cgroup (container) limit less its usage.
    None when neither can be read (not Linux)."""
    figures = [f for f in (_meminfo_available(), _cgroup_headroom()) if f is not None]
    return min(figures) if figures else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_headroom() -> int | None:
    # cgroup v2 (memory.max, "max" when unlimited), then v1 (a huge number when unlimited).
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            limit = (_CGROUP / limit_file).read_text().strip()
            usage = int((_CGROUP / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None
