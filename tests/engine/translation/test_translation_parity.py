"""Parity of the translation engine with transformers on tiny random checkpoints (CPU, fp32).

* Encoder outputs and teacher-forced decoder logits: ``max|ours - fp64| <= 2 * max|HF fp32 -
  fp64| + eps`` with HF run in fp64 on the same weights as the reference (REFERENCE.md's
  rule), through the real checkpoint loader (tied and untied embeddings).
* Greedy and beam-4 outputs token-identical to ``generate`` on the same batch, with the
  checkpoints' generation rules (Marian: bad pad token, forced EOS; M2M100: forced target
  token, ``early_stopping=True``; Marian variants for ``early_stopping`` False / "never"
  and length penalties).
* Batched translation equals one sentence at a time.
* The static-buffer decoding CUDA graphs capture (``engine.translation.graphs``), run
  eagerly here, gives the same tokens: padded buckets, beams reordered, sentences leaving.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from seq2seq_tiny import (
    SENTENCES,
    build_m2m100,
    build_marian,
    build_nllb,
    hf_generated,
    max_error_vs,
    packed_batch,
    padded_batch,
)

import kernels
from engine.translation import TranslationEngine
from engine.translation.graphs import GraphLimits

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
EPS = 1e-5
MAX_NEW = 20

# name -> (builder, kwargs, source, target)
CASES: dict[str, tuple[Callable[..., Any], dict[str, Any], str, str]] = {
    "marian-swish": (build_marian, {"seed": 0}, "en", "de"),
    "marian-gelu-tied": (build_marian, {"seed": 3, "activation": "gelu", "tie": True}, "en", "de"),
    "marian-never-lp0.6": (
        build_marian,
        {"seed": 4, "early_stopping": "never", "length_penalty": 0.6},
        "en",
        "de",
    ),
    "marian-early-lp2": (
        build_marian,
        {"seed": 5, "early_stopping": True, "length_penalty": 2.0, "eos_boost": 11.0},
        "en",
        "de",
    ),
    "m2m100": (build_m2m100, {"seed": 1}, "en", "es"),
    "m2m100-tied": (build_m2m100, {"seed": 6, "tie": True}, "fr", "de"),
    "nllb": (build_nllb, {"seed": 2, "eos_boost": 1.0}, "en", "es"),
}
GENERATION_CASES = [
    "marian-swish",
    "marian-never-lp0.6",
    "marian-early-lp2",
    "m2m100",
    "nllb",
    "marian-gelu-tied",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, TranslationEngine]]:
    """Each case's HF model (fp32) and our engine loaded from its saved checkpoint."""
    root = tmp_path_factory.mktemp("parity")
    out = {}
    for name, (builder, kwargs, _src, _tgt) in CASES.items():
        hf = builder(root / name, **kwargs)
        out[name] = (hf, TranslationEngine.load(root / name, dtype="float32", device="cpu"))
    return out


def _inputs(case: str, engine: TranslationEngine) -> tuple[list[list[int]], int | None]:
    src, tgt = CASES[case][2:]
    plan = engine.plan(src, tgt)
    # NLLB's test tokenizer is character-level: fewer sentences keep its sources short.
    texts = SENTENCES[:4] if case == "nllb" else SENTENCES
    return engine.codec.encode(texts, plan), plan.forced_bos_id


def _two_x(ours: torch.Tensor, hf32: torch.Tensor, hf64: torch.Tensor) -> None:
    err, err_hf = max_error_vs(ours, hf32, hf64)
    assert err <= 2 * err_hf + EPS, f"ours {err:.3g} vs transformers fp32 {err_hf:.3g}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_outputs_match(case: str, built: dict[str, Any]) -> None:
    hf, engine = built[case]
    sources, _ = _inputs(case, engine)
    model = engine.loaded.model
    hf64 = copy.deepcopy(hf).double()
    batch = padded_batch(sources, hf.config.pad_token_id)
    with torch.no_grad():
        ref32 = hf.get_encoder()(**batch).last_hidden_state
        ref64 = hf64.get_encoder()(**batch).last_hidden_state
        flat, cu, _ = packed_batch(sources)
        ours = model.encode(flat, cu)
    keep = batch["attention_mask"].bool()
    _two_x(ours, ref32[keep], ref64[keep])


@pytest.mark.parametrize("case", sorted(CASES))
def test_teacher_forced_logits_match(case: str, built: dict[str, Any]) -> None:
    """Decoder logits at every step through our KV cache vs one HF forward pass."""
    hf, engine = built[case]
    sources, _ = _inputs(case, engine)
    model, config = engine.loaded.model, engine.loaded.config
    steps = 12
    gen = torch.Generator().manual_seed(7)
    targets = torch.randint(3, config.decoder_vocab_size - 1, (len(sources), steps), generator=gen)
    targets[:, 0] = config.decoder_start_token_id
    batch = padded_batch(sources, hf.config.pad_token_id)
    with torch.no_grad():
        ref32 = hf(**batch, decoder_input_ids=targets).logits
        ref64 = copy.deepcopy(hf).double()(**batch, decoder_input_ids=targets).logits
        flat, cu, lens = packed_batch(sources)
        encoded = model.encode(flat, cu)
        for step in (model.decode_step, engine.cpu_decoder.step):  # generic, then lean
            state = model.new_state(encoded, lens, 1, capacity=5)
            ours = torch.stack([step(targets[:, t], state) for t in range(steps)], 1)
            assert ours.dtype == torch.float32
            _two_x(ours, ref32, ref64)
            assert torch.equal(ours.argmax(-1), ref64.argmax(-1))


@pytest.fixture(scope="module")
def generic(built: dict[str, Any]) -> dict[str, TranslationEngine]:
    """Each case's engine decoding through the model's own step (the GPU's path), not the
    lean CPU decoder the engines in ``built`` use; same weights."""
    return {
        name: TranslationEngine(engine.loaded, name=name, cpu_decode=False)
        for name, (_, engine) in built.items()
    }


# Room for 8 sentences of 4 beams: the 6-sentence batches run in padded buckets; exactly
# the steps MAX_NEW tokens take.
STATIC_LIMITS = GraphLimits(rows=32, steps=MAX_NEW, source_tokens=256)


@pytest.fixture(scope="module")
def static(built: dict[str, Any]) -> dict[str, TranslationEngine]:
    """Each case's engine decoding on static buffers (the CUDA-graph path), eagerly."""
    out = {}
    for name, (_, engine) in built.items():
        out[name] = TranslationEngine(engine.loaded, name=name, cpu_decode=False)
        out[name].use_static_decoding(STATIC_LIMITS, capture=False)
    return out


def test_cpu_engines_decode_through_the_lean_decoder(
    built: dict[str, Any], generic: dict[str, TranslationEngine]
) -> None:
    assert all(engine.cpu_decoder is not None for _, engine in built.values())
    assert all(engine.cpu_decoder is None for engine in generic.values())


@pytest.fixture(scope="module")
def generations(
    built: dict[str, Any],
    generic: dict[str, TranslationEngine],
    static: dict[str, TranslationEngine],
) -> dict[tuple[str, int, str], tuple[list[Any], list[Any]]]:
    """(case, beams, path) -> (our outputs, transformers' outputs) on the same batch."""
    out = {}
    for case in GENERATION_CASES:
        hf, lean = built[case]
        sources, forced = _inputs(case, lean)
        extra = {"forced_bos_token_id": forced} if forced is not None else {}
        for beams in (1, 4):
            with torch.no_grad():
                ref = hf.generate(
                    **padded_batch(sources, hf.config.pad_token_id),
                    num_beams=beams,
                    do_sample=False,
                    max_new_tokens=MAX_NEW,
                    max_length=None,
                    **extra,
                )
            expected = hf_generated(ref, hf.config.eos_token_id, MAX_NEW)
            paths = (("lean", lean), ("generic", generic[case]), ("static", static[case]))
            for path, engine in paths:
                ours = engine.generate_ids(
                    sources,
                    forced_bos=[-1 if forced is None else forced] * len(sources),
                    beam_size=beams,
                    max_new_tokens=MAX_NEW,
                )
                out[case, beams, path] = ours, expected
    return out


@pytest.mark.parametrize("path", ["lean", "generic", "static"])
@pytest.mark.parametrize("beams", [1, 4])
@pytest.mark.parametrize("case", GENERATION_CASES)
def test_generation_token_identical(
    case: str, beams: int, path: str, generations: dict[Any, Any], built: dict[str, Any]
) -> None:
    ours, expected = generations[case, beams, path]
    assert ours == expected
    forced = _inputs(case, built[case][1])[1]
    if forced is not None:
        assert all(seq[0] == forced for seq in ours)


def test_static_decoding_ran_in_shrinking_padded_buckets(
    generations: dict[Any, Any], static: dict[str, TranslationEngine]
) -> None:
    """The static runs above took the static path, in buckets that shrank as sentences
    finished (greedy: 8 rows for 6 sentences, then fewer; beam 4: 32 rows, then fewer)."""
    buckets = set()  # (rows per sentence, sentences)
    for case in GENERATION_CASES:
        decoding = static[case].static
        assert decoding is not None
        buckets |= set(decoding._buckets)
        assert not decoding.graphed(6, 4)  # eager steps on the static buffers (the CPU)
    assert {(1, 8), (4, 8)} <= buckets
    assert any(per == 1 and n < 8 for per, n in buckets)
    assert any(per == 4 and n < 8 for per, n in buckets)


def test_batches_too_big_for_the_static_buffers_decode_eagerly(
    built: dict[str, Any],
) -> None:
    _, lean = built["marian-swish"]
    sources, _ = _inputs("marian-swish", lean)
    engine = TranslationEngine(lean.loaded, name="small", cpu_decode=False)
    expected = engine.generate_ids(sources, beam_size=2, max_new_tokens=MAX_NEW)
    for limits in (
        GraphLimits(rows=4, steps=MAX_NEW, source_tokens=256),  # too many rows
        GraphLimits(rows=32, steps=MAX_NEW - 1, source_tokens=256),  # too many steps
        GraphLimits(rows=32, steps=MAX_NEW, source_tokens=8),  # too many source tokens
    ):
        engine.use_static_decoding(limits, capture=False)
        assert engine.generate_ids(sources, beam_size=2, max_new_tokens=MAX_NEW) == expected
        assert engine.static is not None and not engine.static._buckets


def test_cases_exercise_eos_and_length_limit(generations: dict[Any, Any]) -> None:
    """The random weights are useful only if some outputs end early and some hit the cap."""
    lengths = [len(seq) for ours, _ in generations.values() for seq in ours]
    assert min(lengths) < MAX_NEW // 2 and max(lengths) == MAX_NEW
    assert len(set(lengths)) >= 6
    assert any(
        seq[-1] != seq[-2] for ours, _ in generations.values() for seq in ours if len(seq) > 2
    ), "outputs should not all be one repeated token"


@pytest.mark.parametrize(("case", "beams"), [("marian-swish", 1), ("m2m100", 4)])
def test_batched_equals_one_by_one(case: str, beams: int, built: dict[str, Any]) -> None:
    _, engine = built[case]
    src, tgt = CASES[case][2:]
    texts = SENTENCES[:4] + [s.upper() for s in SENTENCES[:2]]
    together = engine.translate(texts, src, tgt, beam_size=beams, max_new_tokens=MAX_NEW)
    alone = [
        engine.translate([t], src, tgt, beam_size=beams, max_new_tokens=MAX_NEW)[0] for t in texts
    ]
    assert together == alone


def test_small_batches_equal_one_batch(built: dict[str, Any]) -> None:
    """Chunking (max_batch_sentences / tokens) and sentences leaving mid-batch change nothing."""
    _, engine = built["m2m100"]
    texts = SENTENCES[:5]
    one = engine.translate(texts, "en", "es", beam_size=2, max_new_tokens=MAX_NEW)
    small = TranslationEngine(
        engine.loaded, name="m2m100", max_batch_sentences=2, max_batch_tokens=30
    )
    assert small.translate(texts, "en", "es", beam_size=2, max_new_tokens=MAX_NEW) == one


def test_triton_kernels_in_the_interpreter_match(generic: dict[str, TranslationEngine]) -> None:
    """The Triton path (one-token pages, grouped cross-attention) gives the same tokens.

    On CPU the kernels run in Triton's interpreter (tests/conftest.py sets it up), so this
    checks the kernel calls' shapes and metadata; the GPU suite checks the compiled kernels.
    The engine decodes through the model's own step, the one that calls the kernels.
    """
    engine = generic["marian-swish"]
    sources, _ = _inputs("marian-swish", engine)
    ref = engine.generate_ids(sources[1:4], beam_size=2, max_new_tokens=3)
    static = TranslationEngine(engine.loaded, name="static", cpu_decode=False)
    # Three sentences in a bucket of four: a padding sentence and the sink have no keys.
    static.use_static_decoding(GraphLimits(rows=8, steps=3, source_tokens=64), capture=False)
    with kernels.force_backend("triton"):
        assert engine.generate_ids(sources[1:4], beam_size=2, max_new_tokens=3) == ref
        assert static.generate_ids(sources[1:4], beam_size=2, max_new_tokens=3) == ref
    assert static.static is not None and (2, 4) in static.static._buckets


def test_text_round_trip_matches_transformers(built: dict[str, Any], tmp_path: Path) -> None:
    """translate() == tokenizer -> generate -> batch_decode in transformers."""
    hf, engine = built["m2m100"]
    tok = engine.loaded.tokenizer
    tok.src_lang = "en"
    enc = tok(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = hf.generate(
            **enc,
            num_beams=4,
            max_new_tokens=MAX_NEW,
            max_length=None,
            forced_bos_token_id=tok.get_lang_id("es"),
        )
    # M2M100's tokenizer keeps language tokens in decoded text; the engine drops them (the
    # forced target token, and any a model emits later).
    lang_ids = set(tok.lang_code_to_id.values())
    kept = [[t for t in row if t not in lang_ids] for row in out.tolist()]
    expected = [t.strip() for t in tok.batch_decode(kept, skip_special_tokens=True)]
    assert engine.translate(SENTENCES, "en", "es", beam_size=4, max_new_tokens=MAX_NEW) == expected
