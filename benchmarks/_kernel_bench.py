"""Timing, roofs, result rows and output for benchmarks/kernels.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["Bench", "Model", "Row"]

Fn = Callable[[], object]
# Rows whose token (or batch) count is at most this are also timed inside a CUDA graph.
TINY = 64


@dataclass(frozen=True)
class Model:
    """The shape facts of one model that the kernels see."""

    name: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    inter: int


@dataclass
class Row:
    """One measurement: a kernel variant on one shape."""

    kernel: str
    model: str
    shape: str
    variant: str
    us: float | None = None
    us_graph: float | None = None
    # Our memory-bound kernels timed the do_bench way too, to show what its flush costs.
    us_do_bench: float | None = None
    metric: str = ""  # "GB/s" or "TFLOP/s"
    value: float | None = None
    pct_roof: float | None = None
    note: str = ""
    params: dict[str, int] = field(default_factory=dict)


@dataclass
class Bench:
    """Holds the device, the roofs and the rows; times callables."""

    smoke: bool
    compile_enabled: bool
    root: Path
    # "read-flush": our loop below; "do_bench": triton's, whose zeroing flush leaves dirty
    # lines behind (kept to reproduce the numbers measured with it before).
    timing: str = "read-flush"
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    roofs: dict[str, float] = field(default_factory=dict)
    _compiled: dict[str, Callable[..., Any]] = field(default_factory=dict)
    _flush: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.cuda = torch.cuda.is_available()
        self.smoke = self.smoke or not self.cuda
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.dtype = torch.bfloat16
        self.tokens = [1, 17] if self.smoke else [1, 64, 4096, 16384]
        name = torch.cuda.get_device_name() if self.cuda else f"cpu-{platform.machine()}"
        self.device_name = name
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.device_slug = slug + ("-smoke" if self.smoke else "")

    # ----------------------------------------------------------------- inputs and variants
    def randn(self, *shape: int) -> torch.Tensor:
        """Random bf16 input on the benchmark device."""
        return torch.randn(*shape, device=self.device, dtype=self.dtype)

    def ours(self, fn: Fn) -> Fn:
        """Our public kernel as called; on a CPU smoke run forced onto the Triton
        interpreter (the automatic choice there would be the PyTorch reference)."""
        if self.cuda:
            return fn
        from kernels.dispatch import force_backend

        def run() -> object:
            with force_backend("triton"):
                return fn()

        return run

    def compiled(self, key: str, fn: Callable[..., Any], *args: Any) -> Fn | None:
        """``torch.compile(fn)`` bound to args (one compiled function per key, so shapes
        after the first reuse it with torch's automatic dynamic shapes); None if disabled."""
        if not self.compile_enabled:
            return None
        if key not in self._compiled:
            # Inductor on a 2-core CPU takes ~45 s per function: the smoke run only checks
            # the plumbing, through the aot_eager backend.
            backend = "inductor" if self.cuda else "aot_eager"
            self._compiled[key] = torch.compile(fn, backend=backend)
        cfn = self._compiled[key]
        return lambda: cfn(*args)

    # --------------------------------------------------------------------------- timing
    def time_us(self, fn: Fn, *, graph: bool = False) -> float:
        """Median time of one call in microseconds."""
        if self.cuda:
            from triton.testing import do_bench, do_bench_cudagraph

            if graph:
                return float(do_bench_cudagraph(fn, rep=20, return_mode="median")) * 1e3
            if self.timing == "do_bench":
                return float(do_bench(fn, warmup=10, rep=40, return_mode="median")) * 1e3
            return self._cold_us(fn)
        fn()
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    def _cold_us(self, fn: Fn, warmup: int = 10, reps: int = 40) -> float:
        """Median of ``reps`` event-timed calls, each after flushing the L2 by *reading*
        a 256 MB buffer, so small inputs are not served from cache.

        triton's ``do_bench`` flushes by zeroing such a buffer instead, which leaves the L2
        full of dirty lines: the timed kernel's own loads then evict them, and it pays for
        their write-back, up to an L2's worth of extra DRAM writes (50 MB on an H100). A
        kernel moving tens of MB shows up to ~half its bandwidth that way, while the copy
        roof (1 GiB) barely notices. Lines a read leaves behind are clean and dropped for
        free.

        After the flush the GPU spins for ~0.5 ms, so the host is ahead when the start
        event is recorded: a launcher whose Python takes longer than the flush (paged
        decode's validation and two launches measured ~100 us on the first H200 run) would
        otherwise have its host time counted as kernel time.
        """
        if self._flush is None:
            self._flush = torch.ones(64 << 20, dtype=torch.float32, device=self.device)
        for _ in range(warmup):
            fn()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for start, end in zip(starts, ends, strict=True):
            self._flush.sum()
            torch.cuda._sleep(1_000_000)  # cycles: ~0.5 ms at H100/H200 clocks
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)) * 1e3

    def measure_roofs(self) -> None:
        """Measure copy bandwidth (read + write bytes) and a large bf16 matmul."""
        n_bytes = (1 << 30) if self.cuda else (64 << 20)
        self.roofs["copy_GBps"] = 2 * n_bytes / self._copy_us(n_bytes) / 1e3
        n = 8192 if self.cuda else 1024
        self.roofs["matmul_TFLOPs"] = 2 * n**3 / self._matmul_us(n) / 1e6
        self.roofs["matmul_n"] = n

    def _copy_us(self, n_bytes: int) -> float:
        src = torch.empty(n_bytes, dtype=torch.uint8, device=self.device)
        dst = torch.empty_like(src)
        return self.time_us(lambda: dst.copy_(src))

    def _matmul_us(self, n: int) -> float:
        # bf16 on the GPU (the roof the kernels are held to); fp32 on CPUs without bf16 units.
        dtype = self.dtype if self.cuda else torch.float32
        a = torch.randn(n, n, device=self.device, dtype=dtype)
        bm = torch.randn(n, n, device=self.device, dtype=dtype)
        return self.time_us(lambda: a @ bm)

    def run_variants(
        self,
        kernel: str,
        model: str,
        shape: str,
        variants: dict[str, Fn | None],
        *,
        bytes_moved: int | None = None,
        flops: float | None = None,
        tokens: int = TINY + 1,
        notes: dict[str, str] | None = None,
        params: dict[str, int] | None = None,
    ) -> None:
        """Time each variant (None = skipped) and record one row per variant.

        ``tokens`` <= TINY also times the variant inside a CUDA graph; ``params`` are the
        shape numbers the target checks read.
        """
        for variant, fn in variants.items():
            if fn is None:
                continue
            row = Row(
                kernel,
                model,
                shape,
                variant,
                note=(notes or {}).get(variant, ""),
                params=dict(params or {}),
            )
            try:
                row.us = self.time_us(fn)
                if (
                    self.cuda
                    and self.timing != "do_bench"
                    and variant == "ours"
                    and bytes_moved is not None
                ):
                    from triton.testing import do_bench

                    row.us_do_bench = (
                        float(do_bench(fn, warmup=10, rep=40, return_mode="median")) * 1e3
                    )
                if self.cuda and tokens <= TINY:
                    try:
                        row.us_graph = self.time_us(fn, graph=True)
                    except Exception as exc:  # a variant that cannot be captured
                        row.note = (row.note + f" graph: {type(exc).__name__}").strip()
            except Exception as exc:
                row.note = f"ERROR {type(exc).__name__}: {exc}"[:300]
                self.errors.append(f"{kernel} {model} {shape} {variant}: {row.note}")
                traceback.print_exc()
            # Rates come from the cold-L2 time: a CUDA graph replays the kernel back to back,
            # so inputs up to a few times the L2 are partly served from it there (paged
            # decode at 64 x 2k: 34 us in a graph vs 62 us cold on the first H200 run). The
            # graph time is reported beside it, as the launch-overhead-free view.
            best = row.us
            if best and bytes_moved is not None:
                row.metric, row.value = "GB/s", bytes_moved / best / 1e3
                row.pct_roof = 100 * row.value / self.roofs["copy_GBps"]
            elif best and flops is not None:
                row.metric, row.value = "TFLOP/s", flops / best / 1e6
                row.pct_roof = 100 * row.value / self.roofs["matmul_TFLOPs"]
            self.rows.append(row)

    def section(self, name: str, fn: Callable[[Bench], None]) -> None:
        """Run one kernel's benchmark function; a crash is recorded, not fatal."""
        print(f"[{name}]", flush=True)
        try:
            fn(self)
        except Exception as exc:
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            traceback.print_exc()
        if self.cuda:
            torch.cuda.empty_cache()

    # --------------------------------------------------------------------------- output
    def _environment(self) -> dict[str, Any]:
        try:
            import triton

            triton_version: str | None = triton.__version__
        except ImportError:
            triton_version = None
        rev = _git(self.root, "rev-parse", "HEAD")
        status = _git(self.root, "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else status != ""
        # The device machine gets a copy of the tree, maybe without .git: the caller
        # passes the revision it sent.
        rev = rev or os.environ.get("BOTKIT_GIT_REVISION") or "unknown"
        return {
            "device": self.device_name,
            "smoke": self.smoke,
            "note": (
                "SMOKE RUN: tiny shapes; ours = Triton interpreter, torch.compile = aot_eager. "
                "Not a speed comparison."
                if self.smoke
                else "CUDA measurement"
            ),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "triton": triton_version,
            "git_revision": rev,
            "git_dirty": dirty,
            "dtype": str(self.dtype).removeprefix("torch."),
            "timing": self.timing if self.cuda else "perf_counter",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "roofs": self.roofs,
        }

    def write(self, path: Path) -> None:
        """Write environment + rows as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            **self._environment(),
            "errors": self.errors,
            "targets": self.targets(),
            "rows": [asdict(r) for r in self.rows],
        }
        path.write_text(json.dumps(payload, indent=1) + "\n")

    def _find(self, kernel: str, variant: str, **want: int) -> list[Row]:
        return [
            r
            for r in self.rows
            if r.kernel == kernel
            and r.variant == variant
            and r.value is not None
            and all(r.params.get(k) == v for k, v in want.items())
        ]

    def targets(self) -> list[dict[str, Any]]:
        """The issue's H100 targets, checked against this run's rows (none on a smoke run)."""
        out: list[dict[str, Any]] = []
        for kernel in ("rms_norm", "fused_add_rms_norm"):
            for r in self._find(kernel, "ours"):
                if r.params.get("T", 0) >= 4096:
                    # What a plain copy of the same bytes reaches: the roof at this size.
                    copy = self._find(kernel, "copy, same bytes", **r.params)
                    out.append(
                        {
                            "target": f"{kernel} >= 85% of copy bandwidth at >= 4k tokens",
                            "row": f"{r.model} {r.shape}",
                            "measured": r.pct_roof,
                            "copy_same_bytes": copy[0].pct_roof if copy else None,
                            "ok": (r.pct_roof or 0) >= 85,
                        }
                    )
        for r in self._find("decode_attention", "ours", B=64, ctx=2048):
            out.append(
                {
                    "target": "paged decode >= 75% of copy bandwidth at batch 64 x 2k",
                    "row": f"{r.model} {r.shape}",
                    "measured": r.pct_roof,
                    "ok": (r.pct_roof or 0) >= 75,
                }
            )
        for r in self._find("prefill_attention", "ours", D=128):
            if r.params.get("S", 0) < 2048:
                continue
            flash = self._find("prefill_attention", "SDPA flash", **r.params)
            flash_v = flash[0].value if flash else None
            out.append(
                {
                    "target": "prefill >= SDPA flash and >= 400 TFLOP/s at S >= 2k, D=128",
                    "row": f"{r.model} {r.shape}",
                    "measured": r.value,
                    "flash": flash_v,
                    "ok": (r.value or 0) >= max(400.0, flash_v or 0.0),
                }
            )
        return out

    def print_table(self) -> None:
        """Print the rows as a fixed-width table."""
        env = self._environment()
        print(
            f"\n{env['device']}  torch {env['torch']}  triton {env['triton']}  "
            f"rev {env['git_revision'][:12]}"
        )
        print(
            f"roofs: copy {self.roofs['copy_GBps']:.0f} GB/s, bf16 matmul "
            f"{self.roofs['matmul_TFLOPs']:.1f} TFLOP/s"
        )
        if self.smoke:
            print("SMOKE RUN: numbers below are not a speed comparison")
        header = (
            f"{'kernel':<19}{'model':<14}{'shape':<32}{'variant':<20}"
            f"{'us':>10}{'us(graph)':>11}{'rate':>16}{'%roof':>7}  note"
        )
        print(header + "\n" + "-" * len(header))
        for r in self.rows:
            us = f"{r.us:10.1f}" if r.us is not None else f"{'-':>10}"
            ug = f"{r.us_graph:11.1f}" if r.us_graph is not None else f"{'-':>11}"
            rate = f"{r.value:9.1f} {r.metric:<6}" if r.value is not None else f"{'-':>16}"
            pct = f"{r.pct_roof:6.1f}%" if r.pct_roof is not None else f"{'-':>7}"
            dob = f"  do_bench {r.us_do_bench:.1f} us" if r.us_do_bench is not None else ""
            print(
                f"{r.kernel:<19}{r.model:<14}{r.shape:<32}{r.variant:<20}{us}{ug}{rate}{pct}"
                f"  {r.note}{dob}"
            )
        targets = self.targets()
        if targets:
            print("\ntargets (issue 3, H100):")
        for t in targets:
            extra = f" (flash {t['flash']:.1f})" if t.get("flash") else ""
            measured = f"{t['measured']:.1f}" if t["measured"] is not None else "-"
            print(
                f"  {'PASS' if t['ok'] else 'MISS'}  {t['target']}: {t['row']}: {measured}{extra}"
            )


def _git(root: Path, *args: str) -> str | None:
    """A git command's output in ``root``; None when git or the repository is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
