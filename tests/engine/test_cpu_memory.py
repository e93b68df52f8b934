"""The CPU engine's memory headroom read from fake /proc and cgroup trees: the
process's own cgroup and those above it, reclaimable page cache not counted as used."""

from __future__ import annotations

from pathlib import Path

from engine.cpu_memory import available_memory_bytes

GB = 1 << 30
MEMINFO = "MemTotal: 67108864 kB\nMemFree: 1048576 kB\nMemAvailable: 33554432 kB\n"  # 32 GB


def fake_proc(tmp_path: Path, cgroup: str, meminfo: str = MEMINFO) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(meminfo)
    (proc / "self" / "cgroup").write_text(cgroup)
    return proc


def group(d: Path, files: dict[str, object]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (d / name).write_text(f"{value}\n")


def test_v2_reads_the_processs_own_cgroup_less_its_inactive_page_cache(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "0::/system.slice/botkit.service\n")
    root = tmp_path / "cgroup"
    group(root, {"cgroup.controllers": "cpu memory", "memory.stat": "inactive_file 0"})
    group(
        root / "system.slice" / "botkit.service",
        {
            "memory.max": 8 * GB,
            "memory.current": 6 * GB,
            "memory.stat": f"anon {2 * GB}\ninactive_file {3 * GB}\nactive_file 1",
        },
    )
    # limit 8 less usage 6 of which 3 is reclaimable: 5 GB, not 2 (nor 32: no root limit)
    assert available_memory_bytes(proc=proc, cgroup_root=root) == 5 * GB


def test_v2_a_tighter_parent_limit_wins(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "0::/parent/child\n")
    root = tmp_path / "cgroup"
    group(root, {"cgroup.controllers": "memory"})
    group(root / "parent", {"memory.max": 4 * GB, "memory.current": 3 * GB})
    group(root / "parent" / "child", {"memory.max": "max", "memory.current": GB})
    assert available_memory_bytes(proc=proc, cgroup_root=root) == GB


def test_v2_in_a_container_its_cgroup_is_the_mount_root(tmp_path: Path) -> None:
    # /proc/self/cgroup names the host's path; the container sees its cgroup at the root.
    proc = fake_proc(tmp_path, "0::/docker/0123abcd\n")
    root = tmp_path / "cgroup"
    group(root, {"cgroup.controllers": "memory", "memory.max": 2 * GB, "memory.current": GB})
    assert available_memory_bytes(proc=proc, cgroup_root=root) == GB


def test_v1_reads_the_memory_controllers_path_less_total_inactive_file(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "12:cpu,cpuacct:/other\n4:memory:/bots/botkit\n0::/\n")
    root = tmp_path / "cgroup"
    group(root / "memory", {"memory.limit_in_bytes": 9223372036854771712})  # unlimited
    group(
        root / "memory" / "bots" / "botkit",
        {
            "memory.limit_in_bytes": 4 * GB,
            "memory.usage_in_bytes": 4 * GB,
            "memory.stat": f"cache {GB}\ninactive_file 7\ntotal_inactive_file {GB}",
        },
    )
    assert available_memory_bytes(proc=proc, cgroup_root=root) == GB


def test_without_memavailable_the_page_cache_counts_as_available(tmp_path: Path) -> None:
    meminfo = "MemTotal: 8388608 kB\nMemFree: 1048576 kB\nBuffers: 1048576 kB\nCached: 2097152 kB\n"
    proc = fake_proc(tmp_path, "", meminfo)
    assert available_memory_bytes(proc=proc, cgroup_root=tmp_path / "none") == 4 * GB


def test_nothing_readable_is_none(tmp_path: Path) -> None:
    assert available_memory_bytes(proc=tmp_path / "p", cgroup_root=tmp_path / "c") is None


def test_this_machine_reads_something_sane() -> None:
    available = available_memory_bytes()
    assert available is None or 0 <= available < 1 << 50
