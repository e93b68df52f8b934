"""The runner's CPU decode path: weight layout, thread policy, decode-only fast path; and
the CUDA-graph step layouts, run eagerly."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hf_tiny import PagedRunner, build_pair, build_tokenizer

from engine import EngineConfig, LLMEngine, SamplingParams
from engine.cuda_graphs import DecodeGraphs, PrefillGraphs
from engine.graph_inputs import StaticInputs, flat_rows
from engine.layers import use_column_major_weights
from engine.runner import ModelRunner

GREEDY = SamplingParams(temperature=0, max_new_tokens=6, ignore_eos=True)
GREEDY_3 = SamplingParams(temperature=0, max_new_tokens=3, ignore_eos=True)


@pytest.mark.parametrize("case", ["qwen2-bias-tied", "llama-gqa-llama3-rope"])
def test_column_major_weights_keep_the_logits(case: str) -> None:
    _, model = build_pair(case)
    prompt = [5, 17, 99, 3, 42, 7]
    before = PagedRunner(model).greedy(prompt, 4)
    relaid = use_column_major_weights(model)
    layers = model.config.num_layers
    # qkv, o, gate_up, down per layer + the LM head (tied: the embedding, once)
    assert relaid == 4 * layers + 1
    assert use_column_major_weights(model) == 0  # idempotent
    weight = model.model.layers[0].self_attn.qkv_proj.weight
    assert weight.t().is_contiguous() and not weight.is_contiguous()
    after = PagedRunner(model).greedy(prompt, 4)
    assert after[0] == before[0]
    for a, b in zip(after[1], before[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _engine(**cfg: Any) -> tuple[LLMEngine, list[int]]:
    _, model = build_pair("llama-gqa-llama3-rope")
    engine = LLMEngine(model, build_tokenizer(), model.config,
                       EngineConfig(block_size=4, num_kv_blocks=64, **cfg))
    threads: list[int] = []
    forward = model.forward

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        threads.append(torch.get_num_threads())
        out: torch.Tensor = forward(*args, **kwargs)
        return out

    model.forward = spy
    return engine, threads


def test_small_steps_run_on_one_intra_op_thread_and_restore_the_setting() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # also on a 1-core machine: the policy must be visible
    try:
        engine, threads = _engine()
        # The model's own forward on every step (decode steps otherwise take the lean
        # decoder, whose thread choice tests/engine/test_cpu_decode.py covers).
        engine.runner.cpu_decoder = None
        engine.generate([list(range(3, 40))], GREEDY)  # 37-token prompt, then 5 decodes
        assert threads == [2, 1, 1, 1, 1, 1]
        assert torch.get_num_threads() == 2
        engine.generate([[4, 5, 6]], GREEDY)  # a 3-token prefill is a small step too
        assert threads[6:] == [1] * 6
        engine.runner.single_thread_tokens = 0  # the policy can be switched off
        engine.generate([[7, 8, 9]], GREEDY)
        assert threads[12:] == [2] * 6
    finally:
        torch.set_num_threads(before)


def test_decode_fast_path_matches_mixed_steps_and_partial_sampling() -> None:
    # Batched decodes (fast path) and a chunked prompt mixed with decodes (general path)
    # give each request its tokens alone; a chunk that does not sample skips the LM head.
    engine, _ = _engine(max_num_batched_tokens=8, long_prefill_token_threshold=5)
    prompts = [list(range(3, 30)), [9, 8, 7], list(range(50, 61))]
    alone = [_engine()[0].generate([p], GREEDY)[0][1] for p in prompts]
    assert [t for _, t in engine.generate(prompts, GREEDY)] == alone



def test_decode_steps_take_the_lean_decoder_on_the_threads_the_policy_picks() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # also on a 1-core machine: the policy must be visible
    try:
        engine, model_threads = _engine()
        runner = engine.runner
        decoder, policy = runner.cpu_decoder, runner.decode_threads
        assert decoder is not None
        picked: list[int] = []
        used: list[int] = []
        choose, forward = policy.choose, decoder.forward

        def spy_choose() -> int:
            picked.append(choose())
            return picked[-1]

        def spy_forward(*args: Any, **kwargs: Any) -> torch.Tensor:
            used.append(torch.get_num_threads())
            out: torch.Tensor = forward(*args, **kwargs)
            return out

        policy.choose = spy_choose  # type: ignore[method-assign]
        decoder.forward = spy_forward  # type: ignore[method-assign]
        tokens = engine.generate([list(range(3, 20))], GREEDY)[0][1]
        assert len(model_threads) == 1  # only the prefill ran the model's own forward
        assert len(used) == 5 and used == picked
        assert torch.get_num_threads() == 2  # restored after every step
        plain, _ = _engine()
        plain.runner.cpu_decoder = None  # the model's own forward on every step
        assert plain.generate([list(range(3, 20))], GREEDY)[0][1] == tokens
    finally:
        torch.set_num_threads(before)


def test_runner_cpu_decode_knobs() -> None:
    _, model = build_pair("qwen2-bias-tied")
    common: dict[str, Any] = {"vocab_size": model.config.vocab_size, "block_size": 4,
                              "device": torch.device("cpu"), "max_num_seqs": 4,
                              "max_model_len": 64}
    one = ModelRunner(model, cpu_decode_threads=1, **common)  # e.g. a 1-core machine
    assert one.cpu_decoder is not None and one.decode_threads.choose() == 1
    assert all(layer.gate_up.parts == 1 for layer in one.cpu_decoder.layers)
    two = ModelRunner(model, cpu_decode_threads=2, **common)
    assert two.cpu_decoder is not None and two.cpu_decoder.lm_head.parts == 2
    assert ModelRunner(model, cpu_decode=False, **common).cpu_decoder is None


def test_graph_step_layouts_run_eagerly_give_the_eager_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CUDA-graph steps' static inputs (decode buckets padded with rows that write
    and read nothing; prefill buckets with empty sequences and the padding "sink"), run
    eagerly on the CPU, give every request the tokens of ordinary steps: fresh prompts,
    prompts on a cached prefix, a chunked prompt whose chunks do not sample."""
    calls = {"prefill": 0, "decode": 0}
    for cls, key in ((PrefillGraphs, "prefill"), (DecodeGraphs, "decode")):
        replay = cls.replay

        def counted(self: Any, *args: Any, _replay: Any = replay, _key: str = key) -> Any:
            calls[_key] += 1
            return _replay(self, *args)

        monkeypatch.setattr(cls, "replay", counted)

    def run(graphs: bool) -> list[list[int]]:
        engine, _ = _engine(max_num_seqs=4, max_num_batched_tokens=24,
                            long_prefill_token_threshold=10)  # fmt: skip
        engine.runner.cpu_decoder = None
        if graphs:
            engine.runner.prefill_graph_tokens = 32  # buckets 16 and 32
            engine.runner.use_graphs(capture=False)
        rounds = [
            [[9, 8, 7], list(range(50, 61)), [4, 5, 6, 7, 8]],  # 3 prompts, 19 tokens
            [list(range(3, 40))],  # chunked: 10-token chunks, only the last samples
            [[9, 8, 7, 1, 2], [*range(50, 61), 12, 13]],  # on cached prefixes
        ]
        return [t for batch in rounds for _, t in engine.generate(batch, GREEDY)]

    expected = run(graphs=False)
    assert calls == {"prefill": 0, "decode": 0}
    assert run(graphs=True) == expected
    assert calls["prefill"] >= 4 and calls["decode"] >= 5


def test_static_inputs_lay_fields_out_by_dtype_with_their_fill() -> None:
    inputs = StaticInputs(torch.device("cpu"), {
        "ids": (torch.int64, (4,), 0),
        "slots": (torch.int64, (4,), -1),
        "tables": (torch.int32, (2, 3), 7),
    })  # fmt: skip
    assert inputs.device_view("slots").tolist() == [-1] * 4
    assert inputs.device_view("tables").tolist() == [[7] * 3] * 2
    inputs.host("ids")[:2] = torch.tensor([5, 6])
    inputs.upload()
    assert inputs.device_view("ids").tolist() == [5, 6, 0, 0]
    assert inputs.device_view("slots").tolist() == [-1] * 4  # its neighbour untouched
    assert flat_rows([[1, 2, 3], [4], []]) == ([1, 2, 3, 4, 0, 0, 0, 0, 0], 3)
    assert flat_rows([]) == ([], 1)


def test_prefill_graph_padding_fits_a_short_max_model_len() -> None:
    """Three 11-token prompts with max_model_len 16 make a 33-token step in the 64-token
    bucket: the padding sink's 31 tokens need more pages than a sequence may have, so the
    prefill tables are at least a bucket wide (the reference checks it; Triton would
    clamp)."""
    prompts = [list(range(10 + 20 * i, 21 + 20 * i)) for i in range(3)]

    def run(graphs: bool) -> list[list[int]]:
        engine, _ = _engine(max_model_len=16, max_num_seqs=4, max_num_batched_tokens=64)
        engine.runner.cpu_decoder = None
        if graphs:
            engine.runner.prefill_graph_tokens = 64
            engine.runner.use_graphs(capture=False)
        return [t for _, t in engine.generate(prompts, GREEDY_3)]

    assert run(graphs=True) == run(graphs=False)


def test_prefill_graph_buckets_stop_at_the_step_token_budget() -> None:
    engine, _ = _engine(max_num_batched_tokens=40, cuda_graph_prefill_tokens=256)
    assert engine.runner.prefill_graph_tokens == 40
    engine.runner.use_graphs(capture=False)
    assert engine.runner.prefill_graphs is not None
    assert engine.runner.prefill_graphs.buckets == [16, 32, 64]  # 64 holds 33..40
