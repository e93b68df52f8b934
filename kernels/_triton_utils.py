"""Small helpers shared by the Triton launchers.

Nothing here imports triton: the dispatch layer uses these to decide whether the Triton path
can run at all, and the launchers use them to pick fixed launch configurations (we do not
autotune: `@triton.autotune` fails without a GPU driver and adds first-call latency).
"""

from __future__ import annotations

import functools
import importlib.util
import os

__all__ = [
    "MAX_ROW_BLOCK",
    "elementwise_config",
    "is_interpreter",
    "next_power_of_2",
    "row_config",
    "triton_available",
]

# Largest row a single-block row kernel (RMSNorm) handles. 64k fp32 values is 256 KiB of
# registers spread over 16 warps; past this a looped kernel would be needed.
MAX_ROW_BLOCK = 65536

_TRUE = frozenset({"1", "true", "on", "yes"})


def is_interpreter() -> bool:
    """Whether Triton kernels run in the CPU interpreter (``TRITON_INTERPRET`` is set true).

    Triton reads this variable when a ``@triton.jit`` function is defined, so it must be set
    before the kernel modules are imported; reading it again here is only correct if nobody
    changed it in between, which the test conftest guarantees by setting it at import time.
    """
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUE


@functools.cache
def triton_available() -> bool:
    """Whether the ``triton`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= ``n`` (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _vector_width(elem_bytes: int) -> int:
    # 16-byte accesses per thread (LDG.128) are what saturates HBM on Hopper.
    return max(1, 16 // elem_bytes)


def row_config(n_cols: int, elem_bytes: int) -> tuple[int, int]:
    """Launch config for a kernel that handles one whole row per program.

    Args:
        n_cols: Row length in elements.
        elem_bytes: Bytes per element of the widest tensor the kernel streams.

    Returns:
        ``(BLOCK, num_warps)``: BLOCK is the row padded to a power of two; num_warps gives
        each thread one 16-byte vector per row (e.g. hidden 896 bf16 -> 1024, 4 warps), capped
        to 1..16 warps.
    """
    block = next_power_of_2(n_cols)
    threads = block // _vector_width(elem_bytes)
    num_warps = min(16, max(1, threads // 32))
    return block, num_warps


def elementwise_config(n_cols: int, elem_bytes: int, max_block: int = 1024) -> tuple[int, int]:
    """Launch config for a row-tiled elementwise kernel (grid = rows x column blocks).

    Args:
        n_cols: Row length in elements.
        elem_bytes: Bytes per element.
        max_block: Upper bound for the column tile.

    Returns:
        ``(BLOCK, num_warps)`` with one 16-byte vector per thread per tile.
    """
    block = min(next_power_of_2(n_cols), max_block)
    threads = block // _vector_width(elem_bytes)
    num_warps = min(8, max(1, threads // 32))
    return block, num_warps
