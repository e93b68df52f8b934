"""Paged decode at batch 64 x 2k context: time each split-K factor (cold L2, CUDA).

    python3 scripts/decode_split_sweep.py [--out FILE]

The first H200 run put our paged decode at 62-70% of copy bandwidth against the issue's
75%; this shows whether the automatic split choice is what holds it back.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from benchmarks._kernel_bench import Bench  # noqa: E402
from benchmarks._kernel_bench_attention import _paged_cache  # noqa: E402
from benchmarks.kernels import MODELS  # noqa: E402
from kernels.decode_attention import decode_attention_triton  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("decode_split_sweep: needs a CUDA GPU", file=sys.stderr)
        return 2
    b = Bench(smoke=False, compile_enabled=False, root=_ROOT)
    b.measure_roofs()
    batch, ctx = 64, 2048
    rows = []
    for m in MODELS:
        k, v, table, lens = _paged_cache(b, batch, ctx, m)
        q = b.randn(batch, m.heads, m.head_dim)
        moved = 2 * k.numel() * k.element_size()  # as benchmarks/kernels.py counts it
        for splits in (None, 1, 2, 3, 4, 6, 8, 16):
            call = functools.partial(
                decode_attention_triton, q, k, v, table, lens, m.head_dim**-0.5, splits
            )
            us = b.time_us(call)
            pct = 100 * moved / us / 1e3 / b.roofs["copy_GBps"]
            rows.append({"model": m.name, "num_splits": splits or "auto", "us": us, "pct": pct})
            print(f"{m.name:14} splits={splits or 'auto':>4}  {us:8.1f} us  {pct:5.1f}% of copy")
    if args.out:
        args.out.write_text(json.dumps({"roofs": b.roofs, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
