"""Input builders shared by the attention tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from conftest import assert_close_to_reference


def make_paged_cache(
    context_lens: Sequence[int],
    *,
    page: int,
    num_kv_heads: int,
    head_dim: int,
    dtype: torch.dtype,
    device: str,
    spare_blocks: int = 3,
    extra_table_cols: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random K/V pages with each sequence's pages scattered in shuffled order.

    Returns ``(k_cache, v_cache, block_tables, context_lens)``. Unused table entries hold
    -1 (never read by a correct kernel); spare blocks hold random data a wrong index would
    pick up.
    """
    pages = [(n + page - 1) // page for n in context_lens]
    num_blocks = sum(pages) + spare_blocks
    shape = (num_blocks, page, num_kv_heads, head_dim)
    k_cache = torch.randn(shape, dtype=torch.float32).to(dtype).to(device)
    v_cache = torch.randn(shape, dtype=torch.float32).to(dtype).to(device)
    order = torch.randperm(num_blocks)
    cols = max(pages, default=0) + extra_table_cols
    table = torch.full((len(context_lens), cols), -1, dtype=torch.int32)
    used = 0
    for b, n in enumerate(pages):
        table[b, :n] = order[used : used + n].to(torch.int32)
        used += n
    lens = torch.tensor(list(context_lens), dtype=torch.int32)
    return k_cache, v_cache, table.to(device), lens.to(device)


def cu_seqlens(lengths: Sequence[int], device: str) -> torch.Tensor:
    """``[B+1]`` int32 cumulative lengths."""
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return torch.tensor(out, dtype=torch.int32, device=device)


def randn(shape: tuple[int, ...], dtype: torch.dtype, device: str) -> torch.Tensor:
    """Standard-normal tensor drawn in fp32 (same values for every dtype) then cast."""
    return torch.randn(shape, dtype=torch.float32).to(dtype).to(device)


def check_against_reference(
    ours: torch.Tensor,
    reference: Callable[..., torch.Tensor],
    float_args: Sequence[torch.Tensor],
    other_args: Sequence[Any],
    what: str,
) -> None:
    """Apply the 2x rule: ``reference(*float_args, *other_args)`` is run in fp64 (ground
    truth) and in the inputs' own dtype (the torch baseline), both on the CPU."""
    cpu_f = [t.cpu() for t in float_args]
    cpu_o = [a.cpu() if isinstance(a, torch.Tensor) else a for a in other_args]
    ref = reference(*[t.double() for t in cpu_f], *cpu_o)
    same = reference(*cpu_f, *cpu_o, compute_dtype=ours.dtype)
    assert_close_to_reference(ours.cpu(), same, ref, what=what)
