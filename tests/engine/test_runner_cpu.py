"""The runner's CPU decode path: weight layout, thread policy, decode-only fast path."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hf_tiny import PagedRunner, build_pair, build_tokenizer

from engine import EngineConfig, LLMEngine, SamplingParams
from engine.layers import use_column_major_weights

GREEDY = SamplingParams(temperature=0, max_new_tokens=6, ignore_eos=True)


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
