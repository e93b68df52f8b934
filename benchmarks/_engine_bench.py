"""Helpers for ``benchmarks/engine.py``: environment, bandwidth, models, workloads, budgets.

The measurements themselves live in ``benchmarks/_engine_measure.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from engine import EngineConfig, LLMEngine, SamplingParams
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
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
            found = out.stdout.strip() if out.returncode == 0 else ""
        except OSError:
            found = ""
        # The device machine gets a copy of the tree, maybe without .git.
        return found or os.environ.get("BOTKIT_GIT_REVISION") or "unknown"

    import transformers

    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": name or platform.machine(),
        "device_type": device.type,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton_version,
        "transformers": transformers.__version__,
        "git_revision": git("rev-parse", "HEAD"),
        "cpu_threads": torch.get_num_threads(),
        "load_avg_1m": _load_average(),
    }


def _load_average() -> float | None:
    """1-minute load average when the benchmark started: on a shared machine, CPU numbers
    only compare at similar load."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device) -> dict[str, float]:
    """Device memory copy bandwidth in bytes/s, counting bytes read + written.

    On the CPU it is measured with one intra-op thread and with all of them, best of
    several runs each (the machine may be shared): ``best`` is what the bound uses.
    """
    n = (1 << 28) if device.type == "cuda" else (1 << 26)  # 1 GiB / 256 MiB of fp32
    x = torch.ones(n, dtype=torch.float32, device=device)
    y = torch.empty_like(x)

    def measure() -> float:
        best = float("inf")
        for _ in range(8):
            sync(device)
            t = time.perf_counter()
            y.copy_(x)
            sync(device)
            best = min(best, time.perf_counter() - t)
        return 2 * x.numel() * 4 / best

    if device.type == "cuda":
        bw = measure()
        return {"best": bw, "all_threads": bw}
    with intra_op_threads(1):
        one = measure()
    every = measure()
    return {"best": max(one, every), "one_thread": one, "all_threads": every}


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave as is)."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )


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
        return str(
            self.inner.decode([i % self.n for i in ids], skip_special_tokens=skip_special_tokens)
        )

    def botkit_decode_stream(self, context: list[int], skip_special_tokens: bool) -> Any:
        """The inner tokenizer's streaming decoder, as the engine uses a real one's."""
        from tokenizers.decoders import DecodeStream

        n, backend = self.n, self.inner.backend_tokenizer
        stream = DecodeStream(ids=[i % n for i in context], skip_special_tokens=skip_special_tokens)
        return lambda token: stream.step(backend, token % n)


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


def random_pair(
    name: str,
    hf_config: dict[str, Any],
    dtype: torch.dtype,
    device: torch.device,
    tokenizer: Any | None = None,
) -> Pair:
    """Random weights from a shipped config; our model gets the HF model's tensors."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(
        **{k: v for k, v in hf_config.items() if k not in ("transformers_version",)}
    )
    torch.manual_seed(0)
    with torch.device(device):
        hf = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            cfg, dtype=dtype
        ).eval()
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
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    }


def smollm2_pair(dtype: torch.dtype) -> Pair:
    """SmolLM2-135M from the packaged GGUF (converted once), and transformers on the same
    converted safetensors."""
    from transformers import AutoModelForCausalLM

    from engine.loader import load_model

    loaded = load_model("smollm2", dtype=str(dtype).removeprefix("torch."), device="cpu")
    hf = AutoModelForCausalLM.from_pretrained(  # type: ignore[no-untyped-call]
        str(loaded.path), dtype=dtype
    ).eval()
    tied = bool(loaded.model_config.tie_word_embeddings)
    return Pair("smollm2-135m", loaded.model, loaded.model_config, hf, loaded.tokenizer, tied)


def engine_for(pair: Pair, **cfg: Any) -> LLMEngine:
    return LLMEngine(pair.ours, pair.tokenizer, pair.model_config, EngineConfig(**cfg))


# ------------------------------------------------------------------ workloads
def random_prompts(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(length)] for _ in range(n)]


def greedy(n: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)


class Budget:
    """Wall-clock allowance of one section: measurements check it and stop early.

    A section that runs out reports what it measured so far and says so (``truncated``),
    so one slow contender (a compile, a slow baseline) cannot eat the whole run.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()
        self.end = math.inf if seconds is None else self.start + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    @property
    def expired(self) -> bool:
        return time.perf_counter() >= self.end

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]
