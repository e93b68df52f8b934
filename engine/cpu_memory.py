"""How much memory a CPU engine may still take: the KV cache is sized from it, and an
explicit ``kv_cache_blocks`` is checked against it before gigabytes are zero-filled."""

from __future__ import annotations

from pathlib import Path

__all__ = ["available_memory_bytes"]

_PROC = Path("/proc")
_CGROUP = Path("/sys/fs/cgroup")
_UNLIMITED = 1 << 60  # cgroup v1 writes a huge number (page-rounded 2**63) for "no limit"


def available_memory_bytes(*, proc: Path = _PROC, cgroup_root: Path = _CGROUP) -> int | None:
    """Bytes this process can still allocate without swapping or an OOM kill: the
    system's ``MemAvailable``, capped by the headroom of the process's own cgroup and of
    each cgroup above it (their limit less their usage, reclaimable page cache not
    counted as used). None when neither can be read (not Linux).

    ``proc`` and ``cgroup_root`` are where ``/proc`` and ``/sys/fs/cgroup`` are mounted
    (tests point them at fakes).
    """
    figures = [
        f for f in (_meminfo_available(proc), _cgroup_headroom(proc, cgroup_root)) if f is not None
    ]
    return min(figures) if figures else None


def _meminfo_available(proc: Path) -> int | None:
    try:
        fields = {
            name: int(rest.split()[0]) * 1024
            for name, _, rest in (
                line.partition(":") for line in (proc / "meminfo").read_text().splitlines()
            )
            if rest.split()
        }
    except (OSError, ValueError):
        return None
    if "MemAvailable" in fields:
        return fields["MemAvailable"]
    # Kernels before 3.14 have no MemAvailable: free memory plus the page cache, as
    # ``free`` estimated it then (free pages alone would leave out every reclaimable GB).
    if "MemFree" not in fields:
        return None
    return fields["MemFree"] + fields.get("Buffers", 0) + fields.get("Cached", 0)


def _cgroup_headroom(proc: Path, root: Path) -> int | None:
    """The smallest headroom of the process's memory cgroup and its ancestors."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        lines = []
    v2_path = v1_path = None
    for line in lines:  # "0::/path" (v2), "4:memory:/path" (v1)
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    unified = (root / "cgroup.controllers").is_file()
    if unified:
        levels = _levels(root, v2_path or "/")
        files = ("memory.max", "memory.current", "inactive_file")
    else:
        levels = _levels(root / "memory", v1_path or "/")
        files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
    headrooms = [h for d in levels if (h := _headroom(d, *files)) is not None]
    return min(headrooms) if headrooms else None


def _levels(mount: Path, path: str) -> list[Path]:
    """The cgroup directory of ``path`` under ``mount`` and every one above it that
    exists. Inside a container the mount often shows the container's own cgroup at its
    root while /proc/self/cgroup names the host's path; the missing levels are skipped."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    dirs = [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


def _headroom(cgroup: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit = (cgroup / limit_file).read_text().strip()
        usage = int((cgroup / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if limit == "max" or not limit.isdigit() or int(limit) >= _UNLIMITED:
        return None
    # Inactive page cache counts in the usage but the kernel reclaims it before an OOM
    # kill: a container that read a 5 GB model file would look 5 GB fuller than it is.
    return max(0, int(limit) - max(0, usage - _stat(cgroup / "memory.stat", inactive_key)))


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
