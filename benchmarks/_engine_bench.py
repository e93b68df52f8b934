"""Helpers for ``benchmarks/engine.py``: model builders, timers, workloads, statistics."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import platform
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine import AsyncEngine, EngineConfig, LLMEngine, SamplingParams, TextDelta
from engine.loader import load_weights
from engine.models import config_from_hf, get_model_class

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "engine" / "configs"
_CORPUS = [
    "Hello, how can I help you today? Your order has shipped and will arrive on Monday.",
    "Bonjour, comment puis-je vous aider ? Votre commande est en route.",
    "Hallo, wie kann ich helfen? Ihre Bestellung ist unterwegs.",
    "Refunds take five to seven business days to appear on your statement.",
]


# ------------------------------------------------------------------ environment
def environment(device: torch.device) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                 timeout=10, check=False)
            return out.stdout.strip() or "unknown"
        except OSError:
            return "unknown"

    import transformers

    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {"device": name or platform.machine(), "device_type": device.type,
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "triton": triton_version,
            "transformers": transformers.__version__, "git_revision": git("rev-parse", "HEAD"),
            "cpu_threads": torch.get_num_threads()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device) -> float:
    """Device memory copy bandwidth in bytes/s, counting bytes read + written."""
    n = (1 << 28) if device.type == "cuda" else (1 << 26)  # 1 GiB / 256 MiB of fp32
    x = torch.ones(n, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    best = float("inf")
    for _ in range(6):
        sync(device)
        t = time.perf_counter()
        y.copy_(x)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * x.numel() * 4 / best


def weight_bytes_per_token(model: torch.nn.Module, tied: bool) -> int:
    """Bytes of weights one decode step reads: every matrix once; an untied input
    embedding contributes one row only (tied, it is the LM head and read in full)."""
    total = 0
    for name, p in model.named_parameters():
        size = p.numel() * p.element_size()
        if "embed_tokens" in name and not tied:
            size = p.shape[-1] * p.element_size()
        total += size
    return total


# ------------------------------------------------------------------ tokenizers
def small_tokenizer() -> Any:
    """A byte-level BPE trained on a few sentences (for random-weight models)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")


class ModTokenizer:
    """Decodes any id of a big random-weight vocabulary with a real, smaller BPE
    tokenizer (``id % vocab``), so detokenization costs what a real one costs."""

    eos_token_id = None
    chat_template = None

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.n = len(inner)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.inner.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return str(self.inner.decode([i % self.n for i in ids],
                                     skip_special_tokens=skip_special_tokens))


# ------------------------------------------------------------------ models
@dataclasses.dataclass
class Pair:
    """Our engine model and the transformers model, on the same weights."""

    name: str
    ours: Any
    model_config: Any
    hf: Any
    tokenizer: Any
    tied: bool


def random_pair(name: str, hf_config: dict[str, Any], dtype: torch.dtype,
                device: torch.device, tokenizer: Any | None = None) -> Pair:
    """Random weights from a shipped config; our model gets the HF model's tensors."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**{k: v for k, v in hf_config.items()
                                  if k not in ("transformers_version",)})
    torch.manual_seed(0)
    with torch.device(device):
        hf = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    mc = dataclasses.replace(config_from_hf(hf_config), dtype=dtype, eos_token_ids=())
    with torch.device(device):
        ours = get_model_class(mc.architecture)(mc).eval()
    load_weights(ours, hf.state_dict().items(), source=f"random {name}")
    tok = tokenizer if tokenizer is not None else ModTokenizer(small_tokenizer())
    return Pair(name, ours, mc, hf, tok, bool(hf_config.get("tie_word_embeddings")))


def shipped_config(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return data


def tiny_llama_config() -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}


def smollm2_pair(dtype: torch.dtype) -> Pair:
    """SmolLM2-135M from the packaged GGUF (converted once), and transformers on the same
    converted safetensors."""
    from transformers import AutoModelForCausalLM

    from engine.loader import load_model

    loaded = load_model("smollm2", dtype=str(dtype).removeprefix("torch."), device="cpu")
    hf = AutoModelForCausalLM.from_pretrained(str(loaded.path), dtype=dtype).eval()
    tied = bool(loaded.model_config.tie_word_embeddings)
    return Pair("smollm2-135m", loaded.model, loaded.model_config, hf, loaded.tokenizer, tied)


def engine_for(pair: Pair, **cfg: Any) -> LLMEngine:
    return LLMEngine(pair.ours, pair.tokenizer, pair.model_config, EngineConfig(**cfg))


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="botkit-bench-"))


# ------------------------------------------------------------------ measurements
def random_prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(length)] for _ in range(n)]


def greedy(n: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)


def ours_single(engine: LLMEngine, prompt: list[int], n: int) -> dict[str, float]:
    """TTFT and decode tok/s of one request running alone."""
    sync(engine.device)
    t0 = time.perf_counter()
    engine.add_request(f"single-{time.monotonic_ns()}", prompt, greedy(n))
    times: list[float] = []
    while engine.has_unfinished():
        for o in engine.step():
            times.extend(time.perf_counter() for _ in o.token_ids)
    ttft = times[0] - t0
    decode = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {"ttft_ms": 1e3 * ttft, "decode_tok_s": decode, "tokens": len(times)}


@torch.inference_mode()
def hf_single(hf: Any, prompt: list[int], n: int, device: torch.device,
              **gen: Any) -> dict[str, float]:
    """transformers generate: TTFT = time of a 1-token generate; decode from the rest."""
    ids = torch.tensor([prompt], device=device)

    def run(k: int) -> float:
        sync(device)
        t = time.perf_counter()
        hf.generate(ids, max_new_tokens=k, min_new_tokens=k, do_sample=False,
                    pad_token_id=0, **gen)
        sync(device)
        return time.perf_counter() - t

    run(2)  # warm-up: the first generate call pays one-time setup
    ttft = run(1)
    total = run(n)
    return {"ttft_ms": 1e3 * ttft, "decode_tok_s": (n - 1) / max(total - ttft, 1e-9),
            "tokens": n}


def ours_batch(engine: LLMEngine, prompts: list[list[int]], n: int) -> dict[str, float]:
    """Offline throughput: everything submitted at once, run to completion."""
    sync(engine.device)
    t = time.perf_counter()
    engine.generate(prompts, greedy(n))
    sync(engine.device)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "output_tok_s": len(prompts) * n / wall}


@torch.inference_mode()
def hf_static_batch(hf: Any, prompts: list[list[int]], n: int,
                    device: torch.device) -> dict[str, float]:
    ids = torch.tensor(prompts, device=device)  # equal lengths: no padding needed
    kw = {"do_sample": False, "pad_token_id": 0, "cache_implementation": "static"}
    hf.generate(ids[:, :16], max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
    sync(device)
    t = time.perf_counter()
    hf.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
    sync(device)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "output_tok_s": len(prompts) * n / wall}


@torch.inference_mode()
def hf_generate_batch(hf: Any, prompts: list[list[int]], n: int,
                      device: torch.device) -> dict[str, float] | None:
    """transformers' own continuous batching, when this version has it."""
    if not hasattr(hf, "generate_batch"):
        return None
    from transformers import GenerationConfig

    cfg = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           eos_token_id=None, pad_token_id=0)
    sync(device)
    t = time.perf_counter()
    outputs = hf.generate_batch(inputs=prompts, generation_config=cfg)
    sync(device)
    wall = time.perf_counter() - t
    tokens = sum(len(o.generated_tokens) for o in outputs.values())  # early EOS counts less
    return {"wall_s": wall, "output_tok_s": tokens / wall, "tokens": tokens}


def prefix_ttft(engine: LLMEngine, system: list[int], questions: list[list[int]]) -> float:
    """Mean TTFT (ms) of requests sharing ``system``, each run alone after the previous."""
    out = []
    for q in questions:
        out.append(ours_single(engine, system + q, 1)["ttft_ms"])
    return statistics.fmean(out)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


async def _serve(engine: LLMEngine, prompts: list[list[int]], n: int,
                 rate: float | None) -> dict[str, Any]:
    aeng = AsyncEngine(engine)
    aeng.start()
    rng = random.Random(1)
    records: list[dict[str, Any]] = []

    async def one(p: list[int]) -> None:
        t0 = time.perf_counter()
        stamps: list[float] = []
        final = None
        async for item in aeng.submit(p, greedy(n)):
            if isinstance(item, TextDelta):
                stamps.append(time.perf_counter())
            else:
                final = item
        end = time.perf_counter()
        assert final is not None
        ttft = (stamps[0] if stamps else end) - t0
        itl = [b - a for a, b in itertools.pairwise(stamps)]
        tpot = (end - t0 - ttft) / max(final.completion_tokens - 1, 1)
        records.append({"ttft": ttft, "itl": itl, "tpot": tpot, "latency": end - t0,
                        "tokens": final.completion_tokens})

    t_start = time.perf_counter()
    tasks = []
    for p in prompts:
        tasks.append(asyncio.create_task(one(p)))
        if rate:
            await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t_start
    await aeng.close()
    ttfts = [r["ttft"] for r in records]
    itls = [x for r in records for x in r["itl"]]
    good = [r for r in records if r["ttft"] <= 0.5 and r["tpot"] <= 0.030]
    return {
        "requests": len(records), "request_rate": rate or "burst", "wall_s": wall,
        "request_s": len(records) / wall,
        "output_tok_s": sum(r["tokens"] for r in records) / wall,
        "ttft_p50_ms": 1e3 * pct(ttfts, 50), "ttft_p99_ms": 1e3 * pct(ttfts, 99),
        "itl_p50_ms": 1e3 * pct(itls, 50), "itl_p99_ms": 1e3 * pct(itls, 99),
        "tpot_p50_ms": 1e3 * pct([r["tpot"] for r in records], 50),
        "goodput_request_s": len(good) / wall, "goodput_fraction": len(good) / len(records),
        "slo": "TTFT <= 500 ms and TPOT <= 30 ms",
    }


def serve(engine: LLMEngine, prompts: list[list[int]], n: int,
          rate: float | None) -> dict[str, Any]:
    """Online serving through ``AsyncEngine`` (Poisson arrivals at ``rate`` req/s)."""
    return asyncio.run(_serve(engine, prompts, n, rate))
