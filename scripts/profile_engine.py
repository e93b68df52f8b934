"""Where the engine's time goes on a GPU: host (Python) vs device time, per kernel.

    python3 scripts/profile_engine.py [--model qwen2.5-0.5b-instruct] [--out DIR]

This script measures, for cached and uncached requests on random weights of a shipped
config: the TTFT, the GPU time of the kernels inside it (torch.profiler), and the
functions the host spends it in (cProfile), then writes the tables to DIR. The same for
batch-1 decode steps; and two A/Bs: the cached TTFT with the prefill CUDA graphs switched
off, and decode steps without overlapping (``EngineConfig.overlap_steps``).
``--skinny-kernels`` profiles the engine with ``EngineConfig.skinny_kernels`` on. The H200 run
at f96ff16 (before overlapping) measured 1.29 ms per decode step, of which the GPU ran
kernels for 0.92 ms: the rest was the host preparing the next step while the GPU idled.

Last, the engine benchmark's many-chats case (64 chats, 512-token prompts, 128-token
replies: 13.5k output tok/s on the H200 at f96ff16, 5 times less than the weights'
bandwidth allows) as a timeline of its steps: how many computed prompt tokens, how
long, and the totals for steps with prompt chunks vs decode-only steps, so the time
the target misses by can be put where it goes.
It runs on the CPU too (``--device cpu``, a tiny smoke model) so it stays working
without a GPU.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from benchmarks import _engine_bench as eb  # noqa: E402
from benchmarks._engine_measure import ours_single  # noqa: E402


def _kernels_and_host(engine: Any, run: Callable[[], object], out: Path, name: str) -> float:
    """Run ``run`` under torch.profiler (kernel table ``<name>-kernels.txt``), then under
    cProfile (host hotspots ``<name>-host.txt``); returns the GPU kernel time in µs."""
    from torch.profiler import ProfilerActivity, profile

    cuda = engine.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        run()
    events = prof.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    (out / f"{name}-kernels.txt").write_text(events.table(sort_by=sort, row_limit=40))
    host = cProfile.Profile()
    host.enable()
    run()
    host.disable()
    text = io.StringIO()
    pstats.Stats(host, stream=text).sort_stats("cumulative").print_stats(45)
    pstats.Stats(host, stream=text).sort_stats("tottime").print_stats(30)
    (out / f"{name}-host.txt").write_text(text.getvalue())
    return sum(getattr(e, "self_device_time_total", 0.0) for e in events) if cuda else 0.0


def _profile(engine: Any, prompts: list[list[int]], out: Path, tag: str) -> dict[str, Any]:
    """TTFT of each prompt; kernel time and host hotspots over the same requests."""
    ttfts = [ours_single(engine, p, 1)["ttft_ms"] for p in prompts]  # plain timing first

    def requests() -> None:
        for p in prompts:
            ours_single(engine, p, 1)

    device_us = _kernels_and_host(engine, requests, out, f"ttft-{tag}")
    return {
        "ttft_ms_median": statistics.median(ttfts),
        "ttft_ms": [round(t, 2) for t in ttfts],
        "gpu_kernel_ms_per_request": device_us / 1e3 / len(prompts),
    }


def _profile_decode(engine: Any, prompt: list[int], steps: int, out: Path) -> dict[str, Any]:
    """Batch-1 decode: wall time per step, and the kernels a step runs (torch.profiler);
    and the wall time per step again with each step run alone (no overlapping)."""
    # Both timings before the profilers run: they slow the steps down after they stop.
    timed = ours_single(engine, prompt, steps)
    config = engine.config
    engine.config = dataclasses.replace(config, overlap_steps=False)
    try:
        alone = ours_single(engine, prompt, steps)
    finally:
        engine.config = config
    device_us = _kernels_and_host(engine, lambda: ours_single(engine, prompt, steps), out, "decode")
    return {
        "steps": steps,
        "overlap_steps": config.overlap_steps,
        "ms_per_step": 1e3 / timed["decode_tok_s"],
        "gpu_kernel_ms_per_step": device_us / 1e3 / steps,
        "ms_per_step_without_overlap": 1e3 / alone["decode_tok_s"],
    }


def _profile_chats(engine: Any, prompts: list[list[int]], reply: int) -> dict[str, Any]:
    """Every request submitted at once and run to the end, one ``step()`` call at a time:
    each call's wall time and what it computed (with overlapped steps a call may also
    queue the next one, whose tokens are counted when it is queued)."""
    tag = time.monotonic_ns()
    for i, p in enumerate(prompts):
        engine.add_request(f"chats-{tag}-{i}", p, eb.greedy(reply))
    timeline: list[dict[str, Any]] = []
    eb.sync(engine.device)
    start = time.perf_counter()
    while engine.has_unfinished():
        before, t = engine.stats, time.perf_counter()
        outputs = engine.step()
        after = engine.stats
        prompt = after.prompt_tokens_computed - before.prompt_tokens_computed
        timeline.append({
            "ms": round((time.perf_counter() - t) * 1e3, 3),
            "prompt_tokens": prompt,
            "decode_tokens": after.computed_tokens - before.computed_tokens - prompt,
            "running": engine.load.running,
            "output_tokens": sum(len(o.token_ids) for o in outputs),
        })  # fmt: skip
    eb.sync(engine.device)
    wall = time.perf_counter() - start
    mixed = [s for s in timeline if s["prompt_tokens"]]
    decode = [s for s in timeline if not s["prompt_tokens"]]
    output = sum(s["output_tokens"] for s in timeline)
    return {
        "chats": len(prompts),
        "prompt_tokens": len(prompts[0]),
        "reply_tokens": reply,
        "wall_s": wall,
        "output_tok_s": output / wall,
        "steps_with_prompt_tokens": len(mixed),
        "ms_in_steps_with_prompt_tokens": sum(s["ms"] for s in mixed),
        "decode_only_steps": len(decode),
        "ms_in_decode_only_steps": sum(s["ms"] for s in decode),
        "decode_only_ms_per_step_median": (
            statistics.median(s["ms"] for s in decode) if decode else None
        ),
        "timeline": timeline,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-0.5b-instruct")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--system-len", type=int, default=1000)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--out", type=Path, default=_ROOT / ".tmp" / "engine-profile")
    p.add_argument("--chats", type=int, default=64, help="the many-chats timeline (0: none)")
    p.add_argument(
        "--skinny-kernels",
        action="store_true",
        help="EngineConfig.skinny_kernels: steps of <= 8 tokens on kernels.skinny_linear",
    )
    args = p.parse_args(argv)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda" if cuda else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    if cuda:
        pair = eb.random_pair(args.model, eb.shipped_config(args.model), torch.bfloat16, dev)
        engine = eb.engine_for(
            pair,
            max_model_len=4096,
            gpu_memory_utilization=0.4,
            skinny_kernels=args.skinny_kernels,
        )
    else:  # smoke: keeps the script working where there is no GPU
        pair = eb.random_pair("tiny-llama", eb.tiny_llama_config(), torch.float32, dev)
        engine = eb.engine_for(pair, block_size=16, num_kv_blocks=256, max_num_seqs=4)
        args.system_len = min(args.system_len, 200)
    vocab = pair.model_config.vocab_size
    system = eb.random_prompts(1, args.system_len, vocab, seed=7)[0]
    questions = eb.random_prompts(4 * args.requests + 4, 24, vocab, seed=8)
    bm = engine.block_manager
    t = time.perf_counter()
    for q in questions[:3]:  # warm-up: kernels compiled, graphs captured
        ours_single(engine, system + q, 4)
    warm_s = time.perf_counter() - t
    n = args.requests
    result: dict[str, Any] = {
        "device": str(dev),
        "model": pair.name,
        "warmup_s": warm_s,
        "skinny_kernels": engine.config.skinny_kernels,
        "environment": eb.environment(dev),
    }
    bm.enable_prefix_caching = True
    ours_single(engine, system + questions[3], 1)
    result["cached"] = _profile(
        engine, [system + q for q in questions[4 : 4 + n]], args.out, "cached"
    )
    # The same kind of request with its small prefill run eagerly: what the prefill CUDA
    # graphs are worth (fresh questions, so nothing but the system prompt is cached).
    runner = engine.runner
    graphs, runner.prefill_graphs = runner.prefill_graphs, None
    try:
        eager = [ours_single(engine, system + q, 1)["ttft_ms"] for q in questions[4 + 3 * n :]]
    finally:
        runner.prefill_graphs = graphs
    result["cached_eager_prefill"] = {
        "ttft_ms_median": statistics.median(eager),
        "ttft_ms": [round(t, 2) for t in eager],
        "prefill_graphs": graphs is not None,
    }
    bm.enable_prefix_caching = False
    bm.reset_prefix_cache()
    result["uncached"] = _profile(
        engine, [system + q for q in questions[4 + n : 4 + 2 * n]], args.out, "uncached"
    )
    result["new_tokens_only"] = _profile(
        engine, questions[4 + 2 * n : 4 + 3 * n], args.out, "new-tokens-only"
    )
    result["decode"] = _profile_decode(engine, questions[0], 64, args.out)
    if args.chats:
        prompt_len, reply = (512, 128) if cuda else (48, 16)
        chats = eb.random_prompts(args.chats if cuda else 6, prompt_len, vocab, seed=9)
        result["chats"] = _profile_chats(engine, chats, reply)
    (args.out / "ttft-profile.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
