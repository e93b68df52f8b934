"""Kernel benchmark: ours vs PyTorch eager vs torch.compile vs the best built-in.

Run from the repository root::

    python benchmarks/kernels.py            # CUDA: full shapes, JSON + table
    python benchmarks/kernels.py --smoke    # any machine: tiny shapes, plumbing check only

Shapes come from Qwen2.5-0.5B/1.5B and SmolLM2-135M. Memory-bound kernels report GB/s and
the % of the measured copy bandwidth; prefill attention reports TFLOP/s and the % of a
measured large bf16 matmul (both roofs are re-measured at start). On CUDA each call is
timed with events after the L2 is flushed by reading 256 MB (``--timing do_bench`` for
triton's zeroing flush, whose dirty lines the timed kernel pays to write back; see
``_kernel_bench.Bench._cold_us``), and rows with few tokens are also timed inside a CUDA
graph (launch overhead removed). Results go to
``benchmarks/results/kernels-<device>.json``. Without CUDA, ``ours`` runs the Triton kernels
in the interpreter and torch.compile uses the ``aot_eager`` backend: those numbers are a
smoke run, not a speed comparison, and are labelled so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

# Running `python benchmarks/kernels.py` puts benchmarks/ first on sys.path, where this very
# file would shadow the `kernels` package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

if not torch.cuda.is_available():
    # Triton decides interpreted vs compiled when kernel modules are imported (lazily, later).
    os.environ.setdefault("TRITON_INTERPRET", "1")

import kernels  # noqa: E402
from benchmarks._kernel_bench import Bench, Model  # noqa: E402
from benchmarks._kernel_bench_attention import (  # noqa: E402
    bench_decode,
    bench_prefill,
    bench_rope_and_cache,
    bench_varlen,
    bench_write_kv_cache,
)

MODELS = (
    Model("smollm2-135m", hidden=576, heads=9, kv_heads=3, head_dim=64, inter=1536),
    Model("qwen2.5-0.5b", hidden=896, heads=14, kv_heads=2, head_dim=64, inter=4864),
    Model("qwen2.5-1.5b", hidden=1536, heads=12, kv_heads=2, head_dim=128, inter=8960),
)
EPS = 1e-6


def _rms_eager(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    xf = x.float()  # what HF's LlamaRMSNorm does
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype) * w


def _add_rms_eager(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r.add_(x)
    return _rms_eager(r, w)


def _rope_eager(q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor, cs: torch.Tensor) -> None:
    half = q.shape[-1] // 2
    c, s = cs[pos, :half].unsqueeze(1), cs[pos, half:].unsqueeze(1)  # [T, 1, D/2]
    for t in (q, k):
        x1, x2 = t[..., :half].float(), t[..., half:].float()
        t.copy_(torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1))


def _swiglu_eager(gu: torch.Tensor) -> torch.Tensor:
    g, u = gu.chunk(2, dim=-1)
    return torch.nn.functional.silu(g) * u


def _copy_of(b: Bench, n_bytes: int) -> Callable[[], object]:
    """A device copy reading and writing ``n_bytes`` in all: the bandwidth a plain copy
    reaches at a row's own size, which at a few MB is far below the 1 GiB roof."""
    src = torch.empty(n_bytes // 2, dtype=torch.uint8, device=b.device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def _norm_shape(b: Bench, m: Model, t: int) -> None:
    x, r, w = b.randn(t, m.hidden), b.randn(t, m.hidden), b.randn(m.hidden)
    shape, params = f"T={t} H={m.hidden}", {"T": t, "H": m.hidden}
    moved = 2 * x.numel() * x.element_size()
    variants = {
        "ours": b.ours(lambda: kernels.rms_norm(x, w, EPS)),
        "eager": lambda: _rms_eager(x, w),
        "compile": b.compiled("rms", _rms_eager, x, w),
        "builtin F.rms_norm": lambda: torch.nn.functional.rms_norm(x, (m.hidden,), w, EPS),
        "copy, same bytes": _copy_of(b, moved),
    }
    b.run_variants("rms_norm", m.name, shape, variants, bytes_moved=moved, tokens=t, params=params)
    variants = {
        "ours": b.ours(lambda: kernels.fused_add_rms_norm(x, r, w, EPS)),
        "eager": lambda: _add_rms_eager(x, r, w),
        "compile": b.compiled("add_rms", _add_rms_eager, x, r, w),
        "copy, same bytes": _copy_of(b, 2 * moved),
    }
    b.run_variants(
        "fused_add_rms_norm",
        m.name,
        shape,
        variants,
        bytes_moved=2 * moved,
        tokens=t,
        params=params,
    )


def _rope_shape(b: Bench, m: Model, t: int, table: torch.Tensor) -> None:
    q, k = b.randn(t, m.heads, m.head_dim), b.randn(t, m.kv_heads, m.head_dim)
    pos = torch.randint(0, table.shape[0], (t,), device=b.device)
    moved = 2 * (q.numel() + k.numel()) * q.element_size() + t * m.head_dim * 4
    variants = {
        "ours": b.ours(lambda: kernels.apply_rope_(q, k, pos, table)),
        "eager": lambda: _rope_eager(q, k, pos, table),
        "compile": b.compiled("rope", _rope_eager, q, k, pos, table),
    }
    shape = f"T={t} Hq={m.heads} Hk={m.kv_heads} D={m.head_dim}"
    b.run_variants("apply_rope_", m.name, shape, variants, bytes_moved=moved, tokens=t)


def _swiglu_shape(b: Bench, m: Model, t: int) -> None:
    gu = b.randn(t, 2 * m.inter)
    variants = {
        "ours": b.ours(lambda: kernels.swiglu(gu)),
        "eager": lambda: _swiglu_eager(gu),
        "compile": b.compiled("swiglu", _swiglu_eager, gu),
    }
    moved = 3 * t * m.inter * gu.element_size()
    b.run_variants("swiglu", m.name, f"T={t} I={m.inter}", variants, bytes_moved=moved, tokens=t)


def _skinny_projections(m: Model) -> list[tuple[str, int, int, bool]]:
    """(name, N, K, bias) of a decoder layer's products; gate_up is fused with its SwiGLU."""
    qkv = (m.heads + 2 * m.kv_heads) * m.head_dim
    bias = m.name.startswith("qwen")  # Qwen2 has q/k/v biases, Llama-family models none
    return [
        ("qkv", qkv, m.hidden, bias),
        ("o", m.hidden, m.heads * m.head_dim, False),
        ("gate_up+swiglu", 2 * m.inter, m.hidden, False),
        ("down", m.hidden, m.inter, False),
    ]


def _skinny_shape(b: Bench, m: Model, rows: int, proj: tuple[str, int, int, bool]) -> None:
    name, n, k, with_bias = proj
    x, w = b.randn(rows, k), b.randn(n, k)
    bias = b.randn(n) if with_bias else None
    fused = name.endswith("swiglu")
    out_cols = n // 2 if fused else n
    moved = (w.numel() + x.numel() + rows * out_cols + (n if with_bias else 0)) * 2
    if fused:
        variants = {
            "ours": b.ours(lambda: kernels.skinny_linear_swiglu(x, w)),
            # What the engine runs without skinny kernels: cuBLAS (on CUDA), then our SwiGLU.
            "F.linear + ours swiglu": lambda: kernels.swiglu(torch.nn.functional.linear(x, w)),
            "eager": lambda: _swiglu_eager(torch.nn.functional.linear(x, w)),
        }
    else:
        variants = {
            "ours": b.ours(lambda: kernels.skinny_linear(x, w, bias)),
            "builtin F.linear": lambda: torch.nn.functional.linear(x, w, bias),
        }
    variants["copy, same bytes"] = _copy_of(b, 2 * moved)
    shape = f"M={rows} {name} N={n} K={k}"
    params = {"M": rows, "N": n, "K": k}
    b.run_variants(
        "skinny_linear", m.name, shape, variants, bytes_moved=moved, tokens=rows, params=params
    )


def bench_skinny_linear(b: Bench) -> None:
    """Products of batch-1..8 decode: skinny_linear vs cuBLAS on every layer projection.
    The smoke run (interpreter) takes SmolLM2's at one row."""
    models, rows = (MODELS[:1], (1,)) if b.smoke else (MODELS, (1, 2, 4, 8))
    for m in models:
        for r in rows:
            for proj in _skinny_projections(m):
                _skinny_shape(b, m, r, proj)


def bench_norms(b: Bench) -> None:
    """rms_norm and fused_add_rms_norm at every model's hidden size."""
    for m in MODELS:
        for t in b.tokens:
            _norm_shape(b, m, t)


def bench_rope(b: Bench) -> None:
    """apply_rope_ on q and k in one call."""
    for m in MODELS:
        table = kernels.rope_cos_sin(m.head_dim, 32768, 1e6, None, device=b.device)
        for t in b.tokens:
            _rope_shape(b, m, t, table)


def bench_swiglu(b: Bench) -> None:
    """swiglu at every model's intermediate size."""
    for m in MODELS:
        for t in b.tokens:
            _swiglu_shape(b, m, t)


BENCHES = {
    "rms_norm": bench_norms,
    "rope": bench_rope,
    "swiglu": bench_swiglu,
    "skinny_linear": bench_skinny_linear,
    "write_kv_cache": lambda b: bench_write_kv_cache(b, MODELS),
    "rope_and_cache": lambda b: bench_rope_and_cache(b, MODELS),
    "prefill": lambda b: bench_prefill(b, MODELS),
    "decode": lambda b: bench_decode(b, MODELS),
    "varlen": bench_varlen,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes (forced without CUDA)")
    parser.add_argument(
        "--kernels", default=",".join(BENCHES), help="comma list of: " + ", ".join(BENCHES)
    )
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile rows")
    parser.add_argument(
        "--timing",
        choices=["read-flush", "do_bench"],
        default="read-flush",
        help="CUDA timing: L2 flushed by a read before each call (default), or triton's "
        "do_bench (flushes by zeroing, leaving dirty lines the timed kernel writes back)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON path (default: benchmarks/results/kernels-<device>.json)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.kernels.split(",")) - set(BENCHES)
    if unknown:
        parser.error(f"unknown kernels: {', '.join(sorted(unknown))}")
    bench = Bench(
        smoke=args.smoke, compile_enabled=not args.no_compile, root=_ROOT, timing=args.timing
    )
    bench.measure_roofs()
    out = args.out or _ROOT / "benchmarks" / "results" / f"kernels-{bench.device_slug}.json"
    for name in args.kernels.split(","):
        bench.section(name, BENCHES[name])
        bench.write(out)  # after every section: a run stopped at its time limit keeps these
    bench.print_table()
    print(f"\nwrote {out}")
    if bench.errors:
        print(f"{len(bench.errors)} benchmark(s) failed:", *bench.errors, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
