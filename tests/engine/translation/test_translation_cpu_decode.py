"""The lean CPU decoder of the translation models (engine.translation.cpu_decode).

Each run feeds the same tokens through a decoder state while doing what the searches do to
it: beam reorders (rows copying another row's history), sentences leaving the batch, and
the slot pool growing. The reference is the same checkpoint loaded in float64 and run
through the model's own step; the tolerance is REFERENCE.md's rule,
``max|lean - fp64| <= 2 * max|model's own step, same dtype - fp64| + eps``. Row counts
cover both product kinds of ``engine.cpu_linear``: bags (<= 8 rows) and one GEMM (more).
"""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from seq2seq_tiny import SENTENCES, build_m2m100, build_marian, packed_batch

from engine.layers import use_column_major_weights
from engine.translation import TranslationEngine
from engine.translation.cpu_decode import CpuSeq2SeqDecoder
from engine.translation.loader import load_translation_model
from engine.translation.model import Seq2SeqLM
from engine.translation.state import DecoderState

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")
EPS = 1e-5
STEPS = 7
Step = Callable[[torch.Tensor, DecoderState], torch.Tensor]

BUILDERS: dict[str, Callable[..., Any]] = {"marian": build_marian, "m2m100": build_m2m100}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cpu-decode")
    for name, build in BUILDERS.items():
        build(root / name, seed=11)
    return {name: root / name for name in BUILDERS}


def _model(path: Path, dtype: str) -> Seq2SeqLM:
    """The checkpoint in ``dtype``; "float64" (the reference, which the loader does not
    serve) is the float32 load converted."""
    model = load_translation_model(path, dtype="float32" if dtype == "float64" else dtype,
                                   device="cpu").model
    assert isinstance(model, Seq2SeqLM)
    if dtype == "float64":
        model.double()
        model.config = dataclasses.replace(model.config, dtype=torch.float64)
    return model


def _sources(model: Seq2SeqLM, count: int) -> list[list[int]]:
    """``count`` sources of different lengths (so cross-attention needs padding)."""
    gen = torch.Generator().manual_seed(count)
    vocab = model.config.vocab_size
    lengths = [3 + (7 * i) % 11 for i in range(count)]
    return [[int(t) for t in torch.randint(4, vocab, (n,), generator=gen)] for n in lengths]


def _run(step: Step, model: Seq2SeqLM, sources: list[list[int]], rows: int) -> torch.Tensor:
    """Logits of STEPS steps; beams reordered at steps 1 and 4, sentence 1 leaves at step 3.

    Returns ``[steps, rows of the first sentence, vocab]`` logits, float64 (the first
    sentence's rows exist at every step, whatever else leaves).
    """
    flat, cu, lens = packed_batch(sources)
    with torch.inference_mode():
        state = model.new_state(model.encode(flat, cu), lens, rows, capacity=2)  # grows twice
        gen = torch.Generator().manual_seed(3)
        out = []
        for t in range(STEPS):
            tokens = torch.randint(4, model.config.decoder_vocab_size, (state.num_rows,),
                                   generator=gen)
            out.append(step(tokens, state)[:rows].double())
            if t in (1, 4) and rows > 1:  # row i continues a random row of its sentence
                parents = torch.randint(0, rows, (state.num_rows,), generator=gen)
                base = torch.arange(state.num_rows) // rows * rows
                state.reorder_rows(base + parents)
            if t == 3 and state.num_sentences > 2:
                keep = [i for i in range(state.num_sentences) if i != 1]
                state.keep_sentences(torch.tensor(keep))
    return torch.stack(out)


@pytest.mark.parametrize("max_parts", [1, 2])
@pytest.mark.parametrize(
    ("sentences", "rows"),
    [(1, 1), (6, 1), (2, 4), (3, 4)],
    ids=["one-sentence", "6-greedy-bags", "8-beam-rows-bags", "12-beam-rows-gemm"],
)
@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_lean_steps_within_tolerance(
    case: str, sentences: int, rows: int, max_parts: int, checkpoints: dict[str, Path]
) -> None:
    generic = _model(checkpoints[case], "float32")
    ref = _model(checkpoints[case], "float64")
    lean_model = _model(checkpoints[case], "float32")
    use_column_major_weights(lean_model)
    lean = CpuSeq2SeqDecoder(lean_model, max_parts=max_parts)
    sources = _sources(generic, sentences)
    expected = _run(ref.decode_step, ref, sources, rows)
    err_generic = (_run(generic.decode_step, generic, sources, rows) - expected).abs().max()
    err_lean = (_run(lean.step, lean_model, sources, rows) - expected).abs().max()
    assert err_lean <= 2 * err_generic + EPS, f"lean {err_lean:.3g} vs generic {err_generic:.3g}"


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_bf16_lean_steps_within_tolerance(case: str, checkpoints: dict[str, Path]) -> None:
    """bf16 weights: products as F.linear, attention math in float32 (as the references)."""
    generic = _model(checkpoints[case], "bfloat16")
    ref = _model(checkpoints[case], "float64")
    lean = CpuSeq2SeqDecoder(generic, max_parts=2)
    sources = _sources(generic, 3)
    expected = _run(ref.decode_step, ref, sources, 2)
    err_generic = (_run(generic.decode_step, generic, sources, 2) - expected).abs().max()
    err_lean = (_run(lean.step, generic, sources, 2) - expected).abs().max()
    assert err_lean <= 2 * err_generic + EPS, f"lean {err_lean:.3g} vs generic {err_generic:.3g}"


def test_decoding_past_max_position_raises_before_touching_the_state(
    checkpoints: dict[str, Path],
) -> None:
    model = _model(checkpoints["marian"], "float32")
    lean = CpuSeq2SeqDecoder(model)
    flat, cu, lens = packed_batch(_sources(model, 2))
    state = model.new_state(model.encode(flat, cu), lens, 1, capacity=2)
    state.length = model.config.max_position
    table = state.table.clone()
    with pytest.raises(ValueError, match="max_position"):
        lean.step(torch.tensor([5, 6]), state)
    assert state.length == model.config.max_position and torch.equal(state.table, table)


def test_engine_without_cpu_decode_keeps_row_major_weights(checkpoints: dict[str, Path]) -> None:
    loaded = load_translation_model(checkpoints["marian"], dtype="float32", device="cpu")
    engine = TranslationEngine(loaded, name="marian", cpu_decode=False)
    assert engine.cpu_decoder is None
    assert all(p.is_contiguous() for p in loaded.model.parameters())
    text = engine.translate(SENTENCES[:2], "en", "de", max_new_tokens=4)
    lean = TranslationEngine(loaded, name="marian")  # re-lays the same weights column-major
    assert lean.cpu_decoder is not None
    assert not loaded.model.lm_head.weight.is_contiguous()
    assert lean.translate(SENTENCES[:2], "en", "de", max_new_tokens=4) == text


def test_padded_encoder_states_do_not_outlive_their_batch(checkpoints: dict[str, Path]) -> None:
    model = _model(checkpoints["m2m100"], "float32")
    lean = CpuSeq2SeqDecoder(model)
    flat, cu, lens = packed_batch(_sources(model, 3))
    state = model.new_state(model.encode(flat, cu), lens, 1, capacity=2)
    lean.step(torch.tensor([5, 6, 7]), state)
    padded = weakref.ref(lean._cross[state].keys[0])
    del state
    gc.collect()
    assert padded() is None


def test_an_empty_source_attends_to_nothing_as_in_the_model_step(
    checkpoints: dict[str, Path],
) -> None:
    """Through the model's API a sentence may come with no source tokens (every row of
    every step compared, the empty sentence's included)."""
    generic = _model(checkpoints["marian"], "float32")
    ref = _model(checkpoints["marian"], "float64")
    lean_model = _model(checkpoints["marian"], "float32")
    use_column_major_weights(lean_model)
    lean = CpuSeq2SeqDecoder(lean_model)
    two = _sources(generic, 2)
    flat, cu, lens = packed_batch([two[0], [], two[1]])
    tokens = torch.tensor([[5, 9, 7], [11, 4, 8], [6, 6, 13]])  # [steps, rows]

    def logits(step: Step, model: Seq2SeqLM) -> torch.Tensor:
        with torch.inference_mode():
            state = model.new_state(model.encode(flat, cu), lens, 1, capacity=2)
            return torch.stack([step(t, state).double() for t in tokens])

    expected = logits(ref.decode_step, ref)
    err_generic = (logits(generic.decode_step, generic) - expected).abs().max()
    got = logits(lean.step, lean_model)
    assert bool(torch.isfinite(got).all())
    assert (got - expected).abs().max() <= 2 * err_generic + EPS
