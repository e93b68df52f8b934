"""Prefix caching end to end: a shared system prompt is computed once, not per request.

Counts come from ``LLMEngine.stats`` (tokens the model actually computed), so a cache that
"hits" in the block manager but still recomputes — or a benchmark that measures the wrong
thing — fails here. Token equality with the uncached engine guards the reuse itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny import build_tokenizer, save_checkpoint, tiny_config, tiny_model

from engine import EngineConfig, LLMEngine, LoadedModel, SamplingParams, load_model

GREEDY = SamplingParams(temperature=0, max_new_tokens=4, ignore_eos=True)
BLOCK = 8
# ~150 tokens with the tiny tokenizer: long enough that recomputing it dwarfs the question.
SYSTEM = (
    "You are the assistant of an online shop. Refunds take five to seven business days "
    "to appear on your statement. Your order has shipped and will arrive on Monday. "
) * 2
QUESTIONS = ["Where is my order?", "Can I get a refund?", "Bonjour, ma commande ?"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hf = tiny_model(tiny_config("LlamaForCausalLM", max_position_embeddings=512))
    return save_checkpoint(hf, build_tokenizer(), tmp_path_factory.mktemp("tiny-prefix"))


@pytest.fixture(scope="module")
def loaded(checkpoint: Path) -> LoadedModel:
    return load_model(checkpoint, dtype="float32", device="cpu")


def engine(loaded: LoadedModel, *, caching: bool = True, **cfg: Any) -> LLMEngine:
    config = EngineConfig(block_size=BLOCK, num_kv_blocks=256,
                          enable_prefix_caching=caching, **cfg)
    return LLMEngine(loaded.model, loaded.tokenizer, loaded.model_config, config,
                     chat_template=loaded.chat_template)


def chat(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def shared_prefix_len(eng: LLMEngine) -> int:
    a, b = (eng.encode(chat(q)) for q in QUESTIONS[:2])
    n = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert n >= 120, "the chat-templated system prompt should give a long common prefix"
    return n


def test_second_request_computes_only_its_new_tokens(loaded: LoadedModel) -> None:
    eng = engine(loaded)
    shared = shared_prefix_len(eng)
    prompt = len(eng.encode(chat(QUESTIONS[1])))
    first = eng.generate([chat(QUESTIONS[0])], GREEDY)
    before = eng.stats
    second = eng.generate([chat(QUESTIONS[1])], GREEDY)
    after = eng.stats
    computed = after.prompt_tokens_computed - before.prompt_tokens_computed
    # Only the part after the last full shared block (plus the question) is recomputed.
    assert computed <= prompt - shared + BLOCK
    assert after.prefix_hit_tokens - before.prefix_hit_tokens == prompt - computed
    # Without the cache the same two requests compute every prompt token, same output.
    cold = engine(loaded, caching=False)
    assert cold.generate([chat(QUESTIONS[0])], GREEDY) == first
    mark = cold.stats.prompt_tokens_computed
    assert cold.generate([chat(QUESTIONS[1])], GREEDY) == second
    assert cold.stats.prompt_tokens_computed - mark == prompt
    assert cold.stats.prefix_hit_tokens == 0


def test_requests_admitted_together_share_the_prefix_in_the_same_step(
    loaded: LoadedModel,
) -> None:
    # A burst of conversations on a fresh deployment: the first request's system-prompt
    # blocks are published when it is scheduled, so the others reuse them in that step.
    eng = engine(loaded)
    shared = shared_prefix_len(eng)
    chats = [chat(q) for q in QUESTIONS]
    prompts = [len(eng.encode(c)) for c in chats]
    together = eng.generate(chats, GREEDY)
    assert eng.stats.steps == GREEDY.max_new_tokens  # all three prefilled in one step
    assert eng.stats.prompt_tokens_computed <= prompts[0] + sum(
        p - shared + BLOCK for p in prompts[1:])
    alone = [engine(loaded, caching=False).generate([c], GREEDY)[0] for c in chats]
    assert together == alone


def test_chunked_prompt_shares_blocks_of_the_chunk_computed_in_the_same_step(
    loaded: LoadedModel,
) -> None:
    # A long prompt is prefilled in chunks; a second request with the same prefix arrives
    # mid-way and reuses the finished chunks *and* the chunk computed in its own first
    # step (written before any query of that step reads the cache) — never more.
    eng = engine(loaded, max_num_batched_tokens=4 * BLOCK, long_prefill_token_threshold=3 * BLOCK)
    chats = [chat(q) for q in QUESTIONS[:2]]
    a = eng.add_request("a", chats[0], GREEDY)
    eng.step()
    eng.step()
    before = a.num_computed_tokens
    b = eng.add_request("b", chats[1], GREEDY)
    eng.step()
    assert b.num_cached_tokens == a.num_computed_tokens // BLOCK * BLOCK > before
    while eng.has_unfinished():
        eng.step()
    ref = engine(loaded, caching=False).generate([chats[1]], GREEDY)[0][1]
    assert b.output_token_ids == ref


def test_reset_prefix_cache_makes_the_next_request_cold(loaded: LoadedModel) -> None:
    eng = engine(loaded)
    eng.generate([chat(QUESTIONS[0])], GREEDY)
    eng.block_manager.reset_prefix_cache()
    mark = eng.stats.prompt_tokens_computed
    eng.generate([chat(QUESTIONS[1])], GREEDY)
    assert eng.stats.prompt_tokens_computed - mark == len(eng.encode(chat(QUESTIONS[1])))




@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernels need a CUDA GPU")
def test_same_step_sharing_on_the_triton_kernels(checkpoint: Path) -> None:
    # The Triton write_kv_cache -> prefill_attention order must make blocks written in a
    # step visible to another sequence's queries in that step, as the reference does.
    cuda = load_model(checkpoint, dtype="float32", device="cuda")
    eng = engine(cuda)
    chats = [chat(q) for q in QUESTIONS]
    together = eng.generate(chats, GREEDY)
    assert eng.stats.prefix_hit_tokens > 0
    alone = [engine(cuda, caching=False, cuda_graphs=False).generate([c], GREEDY)[0]
             for c in chats]
    assert together == alone
