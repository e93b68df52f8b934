"""How benchmarks print their table and write their JSON (standard library only)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["latency_ms", "machine_facts", "print_rows", "write_result"]


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of ``samples`` (milliseconds)."""
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


def machine_facts() -> dict[str, Any]:
    """The machine a result was measured on, and how busy it was at the start."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """``rows`` (the first is the header) right-aligned in columns, the header underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_result(
    args: argparse.Namespace, result: dict[str, Any], print_table: Callable[[dict[str, Any]], None]
) -> None:
    """Print the table, then write the JSON to ``args.out`` unless it is ``-``."""
    print_table(result)
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}")
