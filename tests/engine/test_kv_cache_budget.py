"""KV-cache sizing (``engine.kv_cache.determine_num_blocks``): pure arithmetic on the
device's memory figures, so CUDA's are stood in for here."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.kv_cache import determine_num_blocks

GIB = 2**30
SHAPE = SimpleNamespace(num_layers=32, num_kv_heads=8, head_dim=128)  # 128 KiB a token


@pytest.fixture
def gpu_80gb_with_10gb_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (70 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 10 * GIB)


def _blocks(share: float) -> int:
    return determine_num_blocks(
        SHAPE, block_size=16, dtype=torch.bfloat16, device=torch.device("cuda"),  # type: ignore[arg-type]
        gpu_memory_utilization=share, activation_peak_bytes=GIB,
    )  # fmt: skip


@pytest.mark.usefixtures("gpu_80gb_with_10gb_used")
def test_the_gpu_share_sizes_the_cache() -> None:
    per_block = 2 * 32 * 8 * 128 * 2 * 16  # k and v, layers, heads, dim, bytes, tokens
    assert _blocks(0.5) == (40 * GIB - 10 * GIB - GIB) // per_block
    assert _blocks(0.9) == (72 * GIB - 10 * GIB - GIB) // per_block


@pytest.mark.usefixtures("gpu_80gb_with_10gb_used")
def test_a_share_too_small_for_the_model_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"raise gpu_memory_utilization \(now 0.1\)"):
        _blocks(0.1)


@pytest.mark.parametrize("share", [0.9, 1.0])
@pytest.mark.usefixtures("gpu_80gb_with_10gb_used")
def test_a_full_gpu_points_at_free_memory_not_the_share(
    monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    """Another process holds all but 1 GB: a bigger share would change nothing."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (GIB, 80 * GIB))
    with pytest.raises(ValueError, match="free GPU memory") as info:
        _blocks(share)
    assert "gpu_memory_utilization" not in str(info.value)


# -- the CPU: sized from available memory, explicit sizes checked against it -------------

CPU = torch.device("cpu")
PER_TOKEN_FP32 = 2 * 32 * 8 * 128 * 4  # 256 KiB: k and v, layers, heads, dim, bytes


def _cpu_blocks(available: int | None, **explicit: int) -> int:
    return determine_num_blocks(
        SHAPE, block_size=16, dtype=torch.float32, device=CPU,  # type: ignore[arg-type]
        max_useful_tokens=16 * 32768 * 2, context_tokens=32768, available_bytes=available,
        **explicit,
    )  # fmt: skip


def test_the_cpu_default_holds_a_full_context_when_memory_allows() -> None:
    # A fixed 512 MiB held 2,048 tokens of this model: its 32k context shrank silently.
    assert _cpu_blocks(64 * GIB) * 16 == 32768  # 8 GiB, within half of 64 GiB


def test_the_cpu_default_takes_at_most_half_the_available_memory() -> None:
    assert _cpu_blocks(4 * GIB) * 16 * PER_TOKEN_FP32 <= 2 * GIB
    assert _cpu_blocks(4 * GIB) == 2 * GIB // (16 * PER_TOKEN_FP32)
    assert _cpu_blocks(None) * 16 == 32768  # memory unknown (not Linux): one context


def test_an_explicit_cpu_size_beyond_memory_names_the_setting() -> None:
    # Was the allocator's "DefaultCPUAllocator: can't allocate memory: you tried to
    # allocate 204800000000 bytes", or a zero-fill until the OOM killer came.
    with pytest.raises(ValueError, match=r"kv_cache_blocks = 100000000 needs .* GiB.*lower"):
        _cpu_blocks(16 * GIB, num_blocks=100_000_000)
    assert _cpu_blocks(16 * GIB, num_blocks=1000) == 1000
