"""Paged KV cache allocation and sizing.

Each layer gets a ``(k_cache, v_cache)`` pair shaped ``[num_blocks, block_size, Hk, D]``
(the layout every attention kernel takes). The number of blocks comes from, in order: an
explicit block count, an explicit byte budget, or — on CUDA — the memory left under
``gpu_memory_utilization`` after the weights and a measured activation peak. On the CPU,
where RAM is shared with everything else on the machine, the default is the larger of
512 MiB and one full context of the model, but at most half of the memory available
(after the weights are loaded); an explicit size is checked against that memory, so a
typo fails with the setting's name instead of the allocator's message or the OOM killer.
"""

from __future__ import annotations

import torch

from engine.config import ModelConfig

__all__ = [
    "CPU_KV_MEMORY_SHARE",
    "DEFAULT_CPU_KV_BYTES",
    "allocate_kv_caches",
    "bytes_per_block",
    "determine_num_blocks",
]

DEFAULT_CPU_KV_BYTES = 512 * 2**20
# The share of available RAM the CPU default may take: the rest is for activations,
# the tokenizer, the bot itself and whatever else runs on the machine.
CPU_KV_MEMORY_SHARE = 0.5
# An explicit CPU size may take this much of available RAM (activations need the rest).
_CPU_EXPLICIT_SHARE = 0.9
# Headroom left free on the GPU besides the measured peak (allocator fragmentation, graphs).
_CUDA_MARGIN_BYTES = 512 * 2**20

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]


def bytes_per_block(cfg: ModelConfig, block_size: int, dtype: torch.dtype) -> int:
    """K and V bytes of one block across all layers."""
    elem = torch.empty((), dtype=dtype).element_size()
    return 2 * cfg.num_layers * block_size * cfg.num_kv_heads * cfg.head_dim * elem


def determine_num_blocks(
    cfg: ModelConfig,
    *,
    block_size: int,
    dtype: torch.dtype,
    device: torch.device,
    num_blocks: int | None = None,
    kv_cache_bytes: int | None = None,
    gpu_memory_utilization: float = 0.9,
    activation_peak_bytes: int = 0,
    max_useful_tokens: int | None = None,
    context_tokens: int | None = None,
    available_bytes: int | None = None,
) -> int:
    """How many KV blocks to allocate.

    Args:
        cfg: model shape.
        block_size: tokens per block.
        dtype: cache dtype.
        device: where the cache lives.
        num_blocks: explicit count (wins over everything).
        kv_cache_bytes: explicit byte budget.
        gpu_memory_utilization: fraction of total GPU memory this process may use.
        activation_peak_bytes: measured peak of a largest-step forward (CUDA sizing).
        max_useful_tokens: on CPU, never allocate more than this many tokens' worth.
        context_tokens: on CPU, the default holds at least this many tokens (one full
            context of the model) when memory allows.
        available_bytes: on CPU, the memory still available (None: unknown, unchecked).

    Raises:
        ValueError: the budget does not hold a single block, or an explicit size on the
            CPU does not fit in the available memory (naming the setting).
    """
    per_block = bytes_per_block(cfg, block_size, dtype)
    share_binds = False
    if num_blocks is not None:
        n = num_blocks
    elif kv_cache_bytes is not None:
        n = kv_cache_bytes // per_block
    elif device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        used_by_us = torch.cuda.memory_allocated(device)
        share = int(total * gpu_memory_utilization) - used_by_us - activation_peak_bytes
        available = free - activation_peak_bytes - _CUDA_MARGIN_BYTES
        n = min(share, available) // per_block
        share_binds = share <= available
    else:
        budget = max(DEFAULT_CPU_KV_BYTES, -(-(context_tokens or 0) // block_size) * per_block)
        if available_bytes is not None:
            budget = min(budget, int(available_bytes * CPU_KV_MEMORY_SHARE))
        n = budget // per_block
        if max_useful_tokens is not None:
            n = min(n, -(-max_useful_tokens // block_size))
    if device.type == "cpu" and available_bytes is not None:
        _check_fits(n, per_block, available_bytes, num_blocks, kv_cache_bytes)
    if n < 1:
        sized_on_gpu = device.type == "cuda" and num_blocks is None and kv_cache_bytes is None
        if sized_on_gpu and share_binds and gpu_memory_utilization < 1.0:
            where = f"raise gpu_memory_utilization (now {gpu_memory_utilization})"
        elif sized_on_gpu:  # the GPU itself is full: a bigger share would not help
            where = "free GPU memory (other processes, another model on this GPU)"
        else:
            where = "give more memory"
        raise ValueError(
            f"the KV cache budget holds no block ({per_block} bytes per block of "
            f"{block_size} tokens); {where}, or use a smaller model"
        )
    return int(n)


def _check_fits(
    n: int, per_block: int, available: int, num_blocks: int | None, kv_cache_bytes: int | None
) -> None:
    if num_blocks is None and kv_cache_bytes is None:
        return  # the default is sized from the same memory
    need = n * per_block
    if need <= available * _CPU_EXPLICIT_SHARE:
        return
    setting = f"kv_cache_blocks = {num_blocks}" if num_blocks is not None else "kv_cache_bytes"
    fits = int(available * _CPU_EXPLICIT_SHARE) // per_block
    raise ValueError(
        f"{setting} needs {need / 2**30:.1f} GiB for the KV cache, but only "
        f"{available / 2**30:.1f} GiB of memory is available: lower kv_cache_blocks "
        f"(at most about {fits} blocks fit now), or leave it unset to size the cache "
        "from memory"
    )


def allocate_kv_caches(
    cfg: ModelConfig, num_blocks: int, block_size: int, dtype: torch.dtype, device: torch.device
) -> KVCaches:
    """Zeroed per-layer caches, each ``[num_blocks, block_size, Hk, D]``."""
    shape = (num_blocks, block_size, cfg.num_kv_heads, cfg.head_dim)
    return [
        (
            torch.zeros(shape, dtype=dtype, device=device),
            torch.zeros(shape, dtype=dtype, device=device),
        )
        for _ in range(cfg.num_layers)
    ]
