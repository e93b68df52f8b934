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
