"""Translation benchmark: our engine vs transformers ``generate`` on the same weights.

Run from the repository root::

    python benchmarks/translation.py           # CUDA: OPUS-MT and NLLB-600M shapes, bf16
                                               # CPU: OPUS-MT shape, fp32
    python benchmarks/translation.py --smoke   # tiny random Marian on the CPU, < 1 min

Random weights in the published architectures (``Helsinki-NLP/opus-mt-en-de``:
6+6 layers, d_model 512, vocab 58,101; ``facebook/nllb-200-distilled-600M``: 12+12 layers,
d_model 1024, vocab 256,206; no hub access needed). Both systems get the same batch of
source token ids (lengths 8-48, like support-chat sentences) and generate exactly
``--new-tokens`` tokens each (EOS is made unreachable, so the work is identical), greedy
and beam 4, one sentence at a time (a bot's usual request: on the CPU our engine decodes
it through ``engine.translation.cpu_decode``) and 64 at once. Reported: sentences/s and
generated target tokens/s (median of ``--repeats`` timed runs after a warm-up), the
speed-up, and whether the outputs agree (fp32: must be token-identical; bf16: fraction
of identical sentences, since rounding flips near-ties).

JSON goes to ``benchmarks/results/translation-<device>.json``; a table is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

from benchmarks._engine_bench import environment, sync  # noqa: E402
from engine.loader import load_weights  # noqa: E402
from engine.translation import LoadedTranslationModel, TranslationEngine  # noqa: E402
from engine.translation.checkpoint import apply_fallbacks  # noqa: E402
from engine.translation.config import GenerationDefaults  # noqa: E402
from engine.translation.graphs import GraphLimits  # noqa: E402
from engine.translation.model import Seq2SeqLM  # noqa: E402
from engine.translation.registry import get_architecture  # noqa: E402

_COMMON = {
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "decoder_layerdrop": 0.0,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "opus-mt-en-de": {  # Helsinki-NLP/opus-mt-en-de config.json
        "architectures": ["MarianMTModel"],
        "model_type": "marian",
        "vocab_size": 58101,
        "d_model": 512,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "encoder_attention_heads": 8,
        "decoder_attention_heads": 8,
        "encoder_ffn_dim": 2048,
        "decoder_ffn_dim": 2048,
        "max_position_embeddings": 512,
        "activation_function": "swish",
        "scale_embedding": True,
        "pad_token_id": 58100,
        "decoder_start_token_id": 58100,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        **_COMMON,
    },
    "nllb-200-distilled-600M": {  # facebook/nllb-200-distilled-600M config.json
        "architectures": ["M2M100ForConditionalGeneration"],
        "model_type": "m2m_100",
        "vocab_size": 256206,
        "d_model": 1024,
        "encoder_layers": 12,
        "decoder_layers": 12,
        "encoder_attention_heads": 16,
        "decoder_attention_heads": 16,
        "encoder_ffn_dim": 4096,
        "decoder_ffn_dim": 4096,
        "max_position_embeddings": 1024,
        "activation_function": "relu",
        "scale_embedding": True,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        **_COMMON,
    },
    "tiny-marian": {
        "architectures": ["MarianMTModel"],
        "model_type": "marian",
        "vocab_size": 512,
        "d_model": 64,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "max_position_embeddings": 256,
        "activation_function": "swish",
        "scale_embedding": True,
        "pad_token_id": 511,
        "decoder_start_token_id": 511,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        **_COMMON,
    },
}
_LINES = [
    "Where is my order? I paid last week.",
    "Hola, ¿cómo puedo ayudarle?",
    "Bonjour, votre commande est en route.",
    "Refunds take five business days.",
]


@dataclasses.dataclass
class Setup:
    name: str
    hf: Any
    engine: TranslationEngine
    forced_bos: int | None
    dtype: torch.dtype


def _tokenizer(arch: str, tmp: Path, vocab_size: int = 3) -> Any:
    """A small real tokenizer of the right class (the ids benchmarked are random anyway);
    a Marian one names every id below ``vocab_size``, so any output decodes to text."""
    import sentencepiece as spm
    from transformers import MarianTokenizer, NllbTokenizer

    if arch == "MarianMTModel":
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(_LINES * 20),
            model_writer=buf,
            vocab_size=60,
            hard_vocab_limit=False,
            minloglevel=2,
        )
        (tmp / "s.spm").write_bytes(buf.getvalue())
        vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2} | {f"<x{i}>": i for i in range(3, vocab_size)}
        (tmp / "vocab.json").write_text(json.dumps(vocab))
        return MarianTokenizer(
            str(tmp / "s.spm"),
            str(tmp / "s.spm"),
            str(tmp / "vocab.json"),
            source_lang="en",
            target_lang="de",
        )
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    return NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn")


def build(name: str, device: torch.device, dtype: torch.dtype, graphs: GraphLimits | None) -> Setup:
    """Random HF model of a shipped config, and our engine on the very same tensors
    (decoding with CUDA graphs up to ``graphs`` on CUDA)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationConfig

    hf_config = CONFIGS[name]
    torch.manual_seed(0)
    cfg = AutoConfig.for_model(**hf_config)
    with torch.device(device):
        hf = AutoModelForSeq2SeqLM.from_config(cfg, dtype=dtype).eval()
    eos = hf_config["eos_token_id"]
    with torch.no_grad():  # EOS can never win: every run generates exactly N tokens
        if hasattr(hf, "final_logits_bias"):
            hf.final_logits_bias[0, eos] = -1e4
        else:
            hf.get_output_embeddings().weight[eos] = 0.0
    hf.generation_config = GenerationConfig(
        decoder_start_token_id=hf_config["decoder_start_token_id"],
        eos_token_id=eos,
        pad_token_id=hf_config["pad_token_id"],
        forced_eos_token_id=hf_config.get("forced_eos_token_id"),
    )
    arch = get_architecture(hf_config)
    config = dataclasses.replace(arch.parse_config(hf_config), dtype=dtype)
    generation = GenerationDefaults.from_hf(hf.generation_config.to_dict(), {}, eos)
    with torch.device(device):
        model = Seq2SeqLM(config)
    load_weights(
        model,
        apply_fallbacks(hf.state_dict().items(), model.weight_fallbacks()),
        source=f"random {name}",
    )
    tok = _tokenizer(arch.name, Path(tempfile.mkdtemp(prefix="botkit-bench-")), cfg.vocab_size)
    loaded = LoadedTranslationModel(model.eval(), tok, config, generation, arch, Path("."))
    pair = ("en", "de") if arch.family == "marian" else None
    engine = TranslationEngine(
        loaded,
        name=name,
        pair=pair,
        max_batch_sentences=1024,
        max_batch_tokens=1 << 20,
        cuda_graphs=graphs,
    )
    forced = engine.plan("en", "es").forced_bos_id if arch.family == "m2m100" else None
    return Setup(name, hf, engine, forced, dtype)


def sources(n: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [
        [rng.randrange(4, vocab - 1) for _ in range(rng.randint(8, 48))] + [2] for _ in range(n)
    ]


def _hf_run(s: Setup, batch: list[list[int]], beams: int, new: int) -> list[list[int]]:
    pad = s.engine.loaded.config.pad_token_id
    width = max(map(len, batch))
    ids = torch.tensor([b + [pad] * (width - len(b)) for b in batch], device=s.hf.device)
    mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch], device=s.hf.device)
    extra = {"forced_bos_token_id": s.forced_bos} if s.forced_bos is not None else {}
    with torch.inference_mode():
        out = s.hf.generate(
            input_ids=ids,
            attention_mask=mask,
            num_beams=beams,
            do_sample=False,
            max_new_tokens=new,
            **extra,
        )
    eos = s.engine.loaded.config.eos_token_id
    rows = [r[1 : 1 + new] for r in out.tolist()]
    return [r[: r.index(eos) + 1] if eos in r else r for r in rows]


def _ours_run(s: Setup, batch: list[list[int]], beams: int, new: int) -> list[list[int]]:
    forced = [-1 if s.forced_bos is None else s.forced_bos] * len(batch)
    return s.engine.generate_ids(batch, forced_bos=forced, beam_size=beams, max_new_tokens=new)


def _timed(fn: Any, device: torch.device, repeats: int) -> tuple[float, list[list[int]]]:
    out = fn()  # warm-up (Triton compiles, allocator grows)
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def measure(
    s: Setup, batch: list[list[int]], beams: int, new: int, device: torch.device, repeats: int
) -> dict[str, Any]:
    t_ours, ours = _timed(lambda: _ours_run(s, batch, beams, new), device, repeats)
    t_hf, ref = _timed(lambda: _hf_run(s, batch, beams, new), device, repeats)
    n_ours, n_hf = sum(map(len, ours)), sum(map(len, ref))
    same = sum(a == b for a, b in zip(ours, ref, strict=True)) / len(batch)
    static, graphs = s.engine.static, {}
    if static is not None:  # the same batch decoded eagerly: what the graphs are worth
        graphs["graphed"] = static.graphed(len(batch), beams)
        s.engine.static = None
        try:
            t_eager, _ = _timed(lambda: _ours_run(s, batch, beams, new), device, repeats)
        finally:
            s.engine.static = static
        graphs["ours_eager_s"] = t_eager
        graphs["graph_speedup"] = t_eager / t_ours
    return {
        "batch": len(batch),
        "beams": beams,
        "new_tokens": new,
        "ours_sentences_per_s": len(batch) / t_ours,
        "hf_sentences_per_s": len(batch) / t_hf,
        "ours_tokens_per_s": n_ours / t_ours,
        "hf_tokens_per_s": n_hf / t_hf,
        "speedup": t_hf / t_ours,
        "identical_fraction": same,
        "ours_s": t_ours,
        "hf_s": t_hf,
        **graphs,
    }


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(b) for b in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"want positive integers separated by commas: {text!r}")
    return sizes


# Greedy and beam 4; graphs are captured for both (what a translator configured with
# that beam size captures).
SEARCHES = (1, 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny random Marian on the CPU")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--models", default=None, help="comma-separated names from CONFIGS")
    p.add_argument(
        "--batch",
        type=_batch_sizes,
        default=None,
        help="sentences per batch, comma-separated (default: 1 and 64)",
    )
    p.add_argument("--new-tokens", type=int, default=None, help="generated tokens per sentence")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--graph-rows",
        type=int,
        default=256,
        help="decoder rows the CUDA graphs' buffers hold (batch x beams; 0: no graphs)",
    )
    args = p.parse_args(argv)
    cuda = not args.smoke and (
        args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    )
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    # One sentence is a bot's usual request (a customer's message, a reply's sentence);
    # 64 is many conversations' sentences batched together.
    if args.smoke:
        models, batches, new, repeats = ["tiny-marian"], [8], 16, 1
    elif cuda:
        models, batches, new, repeats = ["opus-mt-en-de", "nllb-200-distilled-600M"], [1, 64], 48, 3
    else:
        models, batches, new, repeats = ["opus-mt-en-de"], [1, 64], 24, 3
    models = args.models.split(",") if args.models else models
    batches = args.batch or batches
    new = args.new_tokens or new
    repeats = args.repeats or repeats
    env = environment(device)
    slug = re.sub(r"[^a-z0-9]+", "-", (env["device"] if cuda else "cpu").lower()).strip("-")
    out = args.out or _ROOT / "benchmarks" / "results" / (
        f"translation-{slug}{'-smoke' if args.smoke else ''}.json"
    )
    report: dict[str, Any] = {"environment": env, "dtype": str(dtype), "results": {}}
    started = time.perf_counter()
    graphs = None
    if args.graph_rows > 0:
        source_tokens = max(batches) * 49  # sources() makes at most 49 tokens each
        graphs = GraphLimits(
            rows=args.graph_rows, steps=new + 1, source_tokens=source_tokens, beams=SEARCHES
        )
    for name in models:
        setup = build(name, device, dtype, graphs)
        for batch_n, beams in itertools.product(batches, SEARCHES):
            batch = sources(batch_n, CONFIGS[name]["vocab_size"])
            key = f"{name}/batch{batch_n}/{'greedy' if beams == 1 else f'beam{beams}'}"
            report["results"][key] = r = measure(setup, batch, beams, new, device, repeats)
            print(
                f"[{key}] "
                + ", ".join(
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                ),
                flush=True,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
            if dtype == torch.float32 and r["identical_fraction"] != 1.0:
                print(f"WARNING: {key}: fp32 outputs differ from transformers", flush=True)
        del setup
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\ntranslation benchmark on {env['device']} ({dtype}), torch {env['torch']}, "
        f"transformers {env['transformers']}"
    )
    print(
        f"{'case':36} {'ours sent/s':>12} {'hf sent/s':>10} {'ours tok/s':>11} "
        f"{'hf tok/s':>10} {'speedup':>8} {'same':>6} {'graphs vs eager':>16}"
    )
    for key, r in report["results"].items():
        print(
            f"{key:36} {r['ours_sentences_per_s']:12.1f} {r['hf_sentences_per_s']:10.1f} "
            f"{r['ours_tokens_per_s']:11.0f} {r['hf_tokens_per_s']:10.0f} "
            f"{r['speedup']:7.2f}x {r['identical_fraction']:6.2f} "
            + (f"{r['graph_speedup']:15.2f}x" if "graph_speedup" in r else f"{'-':>16}")
        )
    print(f"\nJSON: {out}")
    fp32_mismatch = dtype == torch.float32 and any(
        r["identical_fraction"] != 1.0 for r in report["results"].values()
    )
    return 1 if fp32_mismatch else 0


if __name__ == "__main__":
    raise SystemExit(main())
