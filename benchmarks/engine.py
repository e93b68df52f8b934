"""Engine benchmark: our engine vs transformers on the same weights. Not a test.

Run from the repository root::

    python benchmarks/engine.py            # CUDA: Qwen2.5-0.5B/1.5B shapes; CPU: SmolLM2-135M
    python benchmarks/engine.py --smoke    # tiny random Llama on the CPU, end to end, < 2 min

CPU: SmolLM2-135M (the packaged GGUF, converted once) — TTFT and batch-1 decode tok/s,
ours vs transformers ``generate`` in the same dtype, and the % of the memory-bandwidth
bound (weight bytes per token / measured copy bandwidth).

CUDA: random bf16 weights from ``engine/configs/qwen2.5-*.json`` (the published HF
configs; no hub access). (a) batch-1 decode vs the weight-bandwidth bound; (b) 64 chats,
512-token prompts, 128-token replies: output tok/s vs transformers static-cache batched
``generate`` (and ``generate_batch`` with ``--hf-cb``); (c) a shared 1,000-token system
prompt: TTFT with and without prefix caching; (d) online serving through ``AsyncEngine``
with Poisson arrivals: request/s, TTFT and inter-token latency p50/p99, goodput at
TTFT <= 500 ms and TPOT <= 30 ms. Random-weight models decode with a real (smaller) BPE
tokenizer so detokenization costs what it would.

JSON goes to ``benchmarks/results/engine-<device>.json`` (written after every section).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

# `python benchmarks/engine.py` puts benchmarks/ first on sys.path, where this file would
# shadow the `engine` package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

from benchmarks import _engine_bench as eb  # noqa: E402


class Report:
    def __init__(self, device: torch.device, out: Path, args: argparse.Namespace) -> None:
        self.out = out
        self.data: dict[str, Any] = {"environment": eb.environment(device),
                                     "args": {k: v for k, v in vars(args).items()
                                              if k != "out"},
                                     "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "results": {}}
        if args.only_hf_cb and out.is_file():  # add transformers' CB numbers to the main run
            previous = json.loads(out.read_text())
            self.data["results"] = previous.get("results", {})

    def add(self, section: str, values: dict[str, Any]) -> None:
        self.data["results"][section] = values
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        print(f"[{section}] " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()),
              flush=True)

    def table(self) -> None:
        env = self.data["environment"]
        print(f"\nengine benchmark on {env['device']} ({env['device_type']}), torch "
              f"{env['torch']}, transformers {env['transformers']}, rev "
              f"{env['git_revision'][:12]}")
        print(f"{'section':44} {'metric':24} {'value':>12}")
        for section, values in self.data["results"].items():
            for k, v in values.items():
                print(f"{section:44} {k:24} {_fmt(v):>12}")
        print(f"\nJSON: {self.out}")


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# --------------------------------------------------------------------------- CPU / smoke
def single_stream(rep: Report, pair: eb.Pair, device: torch.device, prompt: list[int],
                  n: int, hf_kwargs: dict[str, Any]) -> None:
    """TTFT + batch-1 decode, ours vs transformers, and the bandwidth bound."""
    engine = eb.engine_for(pair, max_model_len=min(4096, pair.model_config.max_position))
    eb.ours_single(engine, prompt, 4)  # warm-up (kernels, allocator)
    ours = eb.ours_single(engine, prompt, n)
    hf = eb.hf_single(pair.hf, prompt, n, device, **hf_kwargs)
    bw = eb.copy_bandwidth(device)
    wbytes = eb.weight_bytes_per_token(pair.ours, pair.tied)
    bound = bw / wbytes
    rep.add(f"{pair.name}/batch1-decode", {
        "prompt_tokens": len(prompt), "new_tokens": n,
        "ours_decode_tok_s": ours["decode_tok_s"], "hf_decode_tok_s": hf["decode_tok_s"],
        "speedup_vs_hf": _ratio(ours["decode_tok_s"], hf["decode_tok_s"]),
        "ours_ttft_ms": ours["ttft_ms"], "hf_ttft_ms": hf["ttft_ms"],
        "copy_bandwidth_gb_s": bw / 1e9, "weight_mb_per_token": wbytes / 1e6,
        "bound_tok_s": bound, "pct_of_bound": 100 * ours["decode_tok_s"] / bound,
    })


def serving_suite(rep: Report, pair: eb.Pair, device: torch.device, *, chats: int,
                  prompt_len: int, reply: int, system_len: int, rate: float | None,
                  online_requests: int, hf_cb: bool, **cfg: Any) -> None:
    """(b) batched throughput vs transformers, (c) prefix caching TTFT, (d) online serving."""
    vocab = pair.model_config.vocab_size
    prompts = eb.random_prompts(chats, prompt_len, vocab)
    section = f"{pair.name}/{chats}-chats-{prompt_len}-in-{reply}-out"
    hf_static = eb.hf_static_batch(pair.hf, prompts, reply, device)
    hf_batch = eb.hf_generate_batch(pair.hf, prompts, reply, device) if hf_cb else None
    engine = eb.engine_for(pair, **cfg)
    eb.ours_batch(engine, prompts[: min(8, chats)], 4)  # warm-up
    ours = eb.ours_batch(engine, prompts, reply)
    best_hf = max(hf_static["output_tok_s"], (hf_batch or {}).get("output_tok_s", 0.0))
    rep.add(section, {
        "ours_output_tok_s": ours["output_tok_s"],
        "hf_static_output_tok_s": hf_static["output_tok_s"],
        "hf_generate_batch_output_tok_s": (hf_batch or {}).get("output_tok_s", "not run"),
        "speedup_vs_best_hf": _ratio(ours["output_tok_s"], best_hf),
        "preemptions": engine.scheduler.num_preemptions, "kv_blocks": engine.num_kv_blocks,
    })
    system = eb.random_prompts(1, system_len, vocab, seed=7)[0]
    questions = eb.random_prompts(8, 24, vocab, seed=8)
    bm = engine.block_manager
    eb.prefix_ttft(engine, system, questions[:1])  # populate the cache
    with_cache = eb.prefix_ttft(engine, system, questions[1:])
    bm.enable_prefix_caching = False
    without = eb.prefix_ttft(engine, system, questions[1:])
    bm.enable_prefix_caching = True
    rep.add(f"{pair.name}/shared-{system_len}-token-system-prompt", {
        "ttft_cached_ms": with_cache, "ttft_uncached_ms": without,
        "cached_over_uncached": _ratio(with_cache, without),
    })
    online = eb.random_prompts(online_requests, prompt_len, vocab, seed=3)
    rep.add(f"{pair.name}/online-{online_requests}-requests", eb.serve(engine, online, reply,
                                                                       rate))
    del engine
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the next engine sizes its KV cache from free memory


def run_smoke(rep: Report) -> None:
    dev = torch.device("cpu")
    pair = eb.random_pair("tiny-llama", eb.tiny_llama_config(), torch.float32, dev)
    single_stream(rep, pair, dev, eb.random_prompts(1, 24, 512)[0], 16, {})
    serving_suite(rep, pair, dev, chats=8, prompt_len=32, reply=8, system_len=100,
                  rate=50.0, online_requests=8, hf_cb=False, block_size=16,
                  num_kv_blocks=64, max_num_seqs=8)


def run_cpu(rep: Report, dtype: torch.dtype, n: int) -> None:
    dev = torch.device("cpu")
    pair = eb.smollm2_pair(dtype)
    chat = [{"role": "system", "content": "You are a concise customer-service assistant."},
            {"role": "user", "content": "Hello! My order has not arrived yet, it was due "
                                        "on Monday. What can I do?"}]
    engine = eb.engine_for(pair, max_model_len=2048)
    prompt = engine.encode(chat)
    del engine
    single_stream(rep, pair, dev, prompt, n, {})


def run_hf_generate_batch(rep: Report, models: list[str]) -> None:
    """transformers' continuous batching alone (its own process: it may be slow or hang)."""
    dev = torch.device("cuda")
    for name in models:
        pair = eb.random_pair(name, eb.shipped_config(name), torch.bfloat16, dev)
        prompts = eb.random_prompts(64, 512, pair.model_config.vocab_size)
        res = eb.hf_generate_batch(pair.hf, prompts, 128, dev)
        rep.add(f"{name}/64-chats-512-in-128-out/hf-generate-batch", res or {"available": False})
        del pair
        gc.collect()
        torch.cuda.empty_cache()


def run_cuda(rep: Report, models: list[str], rate: float, hf_cb: bool) -> None:
    dev = torch.device("cuda")
    for name in models:
        pair = eb.random_pair(name, eb.shipped_config(name), torch.bfloat16, dev)
        serving_suite(rep, pair, dev, chats=64, prompt_len=512, reply=128, system_len=1000,
                      rate=rate, online_requests=128, hf_cb=hf_cb, max_model_len=4096,
                      gpu_memory_utilization=0.5, max_num_seqs=64)
        single_stream(rep, pair, dev, eb.random_prompts(1, 32, 1000)[0], 256,
                      {"cache_implementation": "static"})
        del pair
        gc.collect()
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny random model on the CPU")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--models", default="qwen2.5-0.5b-instruct,qwen2.5-1.5b-instruct",
                   help="engine/configs names for the CUDA suite")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                   help="CPU suite dtype")
    p.add_argument("--tokens", type=int, default=64, help="CPU suite new tokens")
    p.add_argument("--rate", type=float, default=16.0, help="online arrivals, requests/s")
    p.add_argument("--hf-cb", action="store_true",
                   help="also time transformers generate_batch (continuous batching)")
    p.add_argument("--only-hf-cb", action="store_true",
                   help="CUDA: time only transformers generate_batch (run it separately)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    cuda = not args.smoke and (args.device == "cuda" or (args.device == "auto"
                                                         and torch.cuda.is_available()))
    device = torch.device("cuda" if cuda else "cpu")
    env = eb.environment(device)
    slug = re.sub(r"[^a-z0-9]+", "-", (env["device"] if cuda else "cpu").lower()).strip("-")
    out = args.out or _ROOT / "benchmarks" / "results" / (
        f"engine-{slug}{'-smoke' if args.smoke else ''}.json")
    rep = Report(device, out, args)
    t = time.perf_counter()
    if args.smoke:
        run_smoke(rep)
    elif cuda and args.only_hf_cb:
        run_hf_generate_batch(rep, args.models.split(","))
    elif cuda:
        run_cuda(rep, args.models.split(","), args.rate, args.hf_cb)
    else:
        run_cpu(rep, getattr(torch, args.dtype), args.tokens)
    rep.data["elapsed_s"] = round(time.perf_counter() - t, 1)
    rep.add("meta-hf-cb" if args.only_hf_cb else "meta", {"elapsed_s": rep.data["elapsed_s"]})
    rep.table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
