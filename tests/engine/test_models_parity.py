"""Logit parity of engine models with transformers on tiny random checkpoints (fp32, CPU).

Tolerance (shared REFERENCE.md): ``max|ours - fp64| <= 2 * max|transformers fp32 - fp64|
+ eps``, with transformers run in fp64 on the same weights as the reference, plus top-1
identity. Every forward goes through a real paged KV cache with a shuffled block table.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import torch
from hf_tiny import CASES, LLAMA3_ROPE, PagedRunner, build_pair, tiny_config
from transformers import GenerationConfig, PreTrainedModel

from engine.attention_metadata import AttentionMetadata
from engine.config import ModelConfig
from engine.errors import ModelLoadError, UnsupportedModelError
from engine.layers import use_skinny_kernels
from engine.models import config_from_hf, supported_architectures

EPS = {torch.float32: 1e-5, torch.bfloat16: 1e-2}  # ~ulp of a logit of 30-60 in fp32
CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)
DEVICES = ["cpu", CUDA]


def prompt(n: int, seed: int = 1, vocab: int = 320) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n,), generator=gen, device="cpu").tolist()


@torch.no_grad()
def hf_logits(model: PreTrainedModel, tokens: list[int]) -> torch.Tensor:
    ids = torch.tensor([tokens], device=model.device)
    return model(ids).logits[0].float().cpu()  # type: ignore[no-any-return]


def assert_two_x_rule(
    ours: torch.Tensor,
    hf_same: torch.Tensor,
    hf64: torch.Tensor,
    dtype: torch.dtype = torch.float32,
) -> None:
    """ours vs fp64 within twice transformers' own error in the same dtype; fp32: top-1 too."""
    ours, hf64 = ours.cpu().double(), hf64.cpu().double()
    err_ours = (ours - hf64).abs().max().item()
    err_hf = (hf_same.cpu().double() - hf64).abs().max().item()
    assert err_ours <= 2 * err_hf + EPS[dtype], f"ours {err_ours:.3g} vs transformers {err_hf:.3g}"
    if dtype == torch.float32:
        assert torch.equal(ours.argmax(-1), hf64.argmax(-1)), "top-1 differs from fp64"


def test_registry_has_every_architecture() -> None:
    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"} <= set(
        supported_architectures()
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_prefill_logits_match_transformers(case: str, device: str) -> None:
    hf, ours = build_pair(case, device=device)
    tokens = prompt(45)  # > 8 blocks of 4: every read crosses shuffled pages
    out = PagedRunner(ours).prefill(tokens, all_logits=True)
    assert out.dtype == torch.float32 and out.shape == (45, 320)
    assert_two_x_rule(out, hf_logits(hf, tokens), hf_logits(copy.deepcopy(hf).double(), tokens))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", sorted(CASES))
def test_bf16_prefill_within_kernel_tolerance(case: str) -> None:
    """bf16 weights and activations: error vs fp64 at most 2x transformers' bf16 error."""
    hf, ours = build_pair(case, device="cuda", dtype=torch.bfloat16)
    tokens = prompt(45)
    out = PagedRunner(ours).prefill(tokens, all_logits=True)
    hf_bf16 = copy.deepcopy(hf).to(torch.bfloat16)
    ref64 = hf_logits(copy.deepcopy(hf).double(), tokens)
    assert_two_x_rule(out, hf_logits(hf_bf16, tokens), ref64, torch.bfloat16)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_greedy_decode_matches_generate(case: str, device: str) -> None:
    hf, ours = build_pair(case, seed=3, device=device)
    tokens, steps = prompt(11, seed=5), 14
    gen = GenerationConfig(do_sample=False, max_new_tokens=steps, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        ids = torch.tensor([tokens], device=device)
        expected = hf.generate(ids, generation_config=gen)[0, 11:].tolist()
    got, step_logits = PagedRunner(ours).greedy(tokens, steps)
    n = len(expected)  # generate stops early at an EOS; our loop does not
    assert got[:n] == expected
    assert n == steps or expected[-1] in ours.config.eos_token_ids
    # Each step's logits (prefill, then decode through the cache) against full forwards.
    full = tokens + got[:-1]
    n = len(tokens) - 1
    ref32 = hf_logits(hf, full)[n:]
    ref64 = hf_logits(copy.deepcopy(hf).double(), full)[n:]
    assert_two_x_rule(torch.stack(step_logits), ref32, ref64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("prompt_len", [6, 11])
def test_greedy_decode_on_skinny_kernels(case: str, device: str, prompt_len: int) -> None:
    """EngineConfig.skinny_kernels: steps of <= 8 tokens (every decode step, and the
    6-token prompt) run kernels.skinny_linear and the fused gate/up + SwiGLU; the 11-token
    prompt still takes the ordinary product. Same tokens as generate, same 2x rule."""
    hf, ours = build_pair(case, seed=3, device=device)
    assert use_skinny_kernels(ours) == 2 * 4 + 0  # 2 layers x (qkv, o, gate_up, down)
    tokens, steps = prompt(prompt_len, seed=5), 10
    gen = GenerationConfig(do_sample=False, max_new_tokens=steps, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        ids = torch.tensor([tokens], device=device)
        expected = hf.generate(ids, generation_config=gen)[0, prompt_len:].tolist()
    got, step_logits = PagedRunner(ours).greedy(tokens, steps)
    n = len(expected)
    assert got[:n] == expected
    full = tokens + got[:-1]
    ref32 = hf_logits(hf, full)[prompt_len - 1 :]
    ref64 = hf_logits(copy.deepcopy(hf).double(), full)[prompt_len - 1 :]
    assert_two_x_rule(torch.stack(step_logits), ref32, ref64)


@pytest.mark.parametrize("device", DEVICES)
def test_chunked_prefill_extends_cached_prefix(device: str) -> None:
    hf, ours = build_pair("llama-gqa-llama3-rope", device=device)
    tokens = prompt(30, seed=7)
    runner = PagedRunner(ours)
    runner.prefill(tokens[:5])
    runner.prefill(tokens[5:13])  # chunk ends mid-block: the next chunk appends to it
    out = runner.prefill(tokens[13:], all_logits=True)
    ref = hf_logits(hf, tokens)[13:]
    assert_two_x_rule(out, ref, hf_logits(copy.deepcopy(hf).double(), tokens)[13:])


@pytest.mark.parametrize("device", DEVICES)
@torch.inference_mode()
def test_mixed_batch_matches_single_sequences(device: str) -> None:
    """Two prompts prefilled plus one decoding sequence in one step == each run alone."""
    hf, ours = build_pair("qwen2-bias-tied", device=device)
    with torch.device(device):
        _mixed_batch(hf, ours)


def _mixed_batch(hf: PreTrainedModel, ours: Any) -> None:
    cfg, bs = ours.config, 4
    shape = (32, bs, cfg.num_kv_heads, cfg.head_dim)
    caches = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(cfg.num_layers)]
    tables = torch.tensor(
        [[5, 1, 9, 12, 0], [2, 7, 3, 4, 30], [8, 6, 10, 11, 13]], dtype=torch.int32
    )
    a, b, c = prompt(9, seed=11), prompt(6, seed=12), prompt(14, seed=13)

    def slots(seq: int, positions: list[int]) -> list[int]:
        return [int(tables[seq, p // bs]) * bs + p % bs for p in positions]

    # Step 1: prefill c[:13] alone (sequence 2) so it can decode in step 2.
    meta1 = AttentionMetadata(
        slot_mapping=torch.tensor(slots(2, list(range(13)))),
        num_prefill_tokens=13,
        prefill_cu_seqlens_q=torch.tensor([0, 13], dtype=torch.int32),
        prefill_context_lens=torch.tensor([13], dtype=torch.int32),
        prefill_block_tables=tables[2:3].contiguous(),
        logits_indices=torch.tensor([12]),
    )
    ours(torch.tensor(c[:13]), torch.arange(13), caches, meta1)
    # Step 2: prefill a and b, decode c's last token.
    ids = a + b + [c[13]]
    positions = list(range(9)) + list(range(6)) + [13]
    meta2 = AttentionMetadata(
        slot_mapping=torch.tensor(
            slots(0, list(range(9))) + slots(1, list(range(6))) + slots(2, [13])
        ),
        num_prefill_tokens=15,
        prefill_cu_seqlens_q=torch.tensor([0, 9, 15], dtype=torch.int32),
        prefill_context_lens=torch.tensor([9, 6], dtype=torch.int32),
        prefill_block_tables=tables[:2].contiguous(),
        decode_context_lens=torch.tensor([14], dtype=torch.int32),
        decode_block_tables=tables[2:3].contiguous(),
        logits_indices=torch.tensor([15, 8, 14]),  # output order differs from token order
    )
    out = ours(torch.tensor(ids), torch.tensor(positions), caches, meta2)
    assert out.shape == (3, cfg.vocab_size)
    for row, seq in zip(out, (c, a, b), strict=True):
        alone = PagedRunner(ours).prefill(seq)[0]
        torch.testing.assert_close(row, alone, atol=2e-5, rtol=0)
        row = row.cpu()
        assert int(row.argmax()) == int(hf_logits(hf, seq)[-1].argmax())


@pytest.mark.parametrize("device", DEVICES)
@torch.inference_mode()
def test_forward_without_cache_for_warmup(device: str) -> None:
    hf, ours = build_pair("mistral-headdim32", device=device)
    with torch.device(device):
        _warmup(hf, ours)


def _warmup(hf: PreTrainedModel, ours: Any) -> None:
    a, b = prompt(7, seed=21), prompt(12, seed=22)
    meta = AttentionMetadata(
        slot_mapping=torch.full((19,), -1),
        num_prefill_tokens=19,
        prefill_cu_seqlens_q=torch.tensor([0, 7, 19], dtype=torch.int32),
        prefill_context_lens=torch.tensor([7, 12], dtype=torch.int32),
        logits_indices=torch.tensor([6, 18]),
    )
    out = ours(torch.tensor(a + b), torch.tensor(list(range(7)) + list(range(12))), [], meta)
    ref = torch.stack([hf_logits(hf, a)[-1], hf_logits(hf, b)[-1]])
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=0)
    bad = dataclasses.replace(meta, decode_context_lens=torch.tensor([3], dtype=torch.int32))
    with pytest.raises(ValueError, match="without a KV cache"):
        ours(torch.tensor(a + b + [5]), torch.arange(20), [], bad)


# -- config parsing ----------------------------------------------------------------------


def hf_dict(arch: str = "LlamaForCausalLM", **overrides: Any) -> dict[str, Any]:
    return tiny_config(arch, **overrides).to_dict()


def test_qwen2_config_has_qkv_bias_only() -> None:
    cfg = config_from_hf(hf_dict("Qwen2ForCausalLM"))
    assert cfg.attention_bias and not cfg.o_proj_bias
    llama = config_from_hf(hf_dict(attention_bias=True))
    assert llama.attention_bias and llama.o_proj_bias


def test_sliding_window_caps_context() -> None:
    assert config_from_hf(hf_dict("MistralForCausalLM", sliding_window=16)).max_position == 16
    assert config_from_hf(hf_dict("MistralForCausalLM", sliding_window=None)).max_position == 256
    qwen = hf_dict("Qwen2ForCausalLM", use_sliding_window=True, sliding_window=64)
    assert config_from_hf(qwen).max_position == 64


def test_legacy_and_v5_rope_layouts_agree() -> None:
    legacy = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 320,
        "rope_theta": 500000.0,
        "rope_scaling": {**LLAMA3_ROPE, "type": "llama3"},
        "torch_dtype": "bfloat16",
        "eos_token_id": [2, 7],
    }
    v5 = hf_dict(rope_parameters={**LLAMA3_ROPE, "rope_theta": 500000.0}, dtype="bfloat16")
    a, b = ModelConfig.from_hf_config(legacy), ModelConfig.from_hf_config(v5)
    assert a.rope_theta == b.rope_theta == 500000.0
    assert a.rope_scaling == b.rope_scaling and a.rope_scaling is not None
    assert a.rope_scaling["rope_type"] == "llama3" and "type" not in a.rope_scaling
    assert a.dtype == b.dtype == torch.bfloat16
    assert a.eos_token_ids == (2, 7) and a.num_kv_heads == 4 and a.head_dim == 16


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, UnsupportedModelError, "yarn"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, ModelLoadError, "missing"),
        ({"hidden_act": "gelu"}, UnsupportedModelError, "gelu"),
        ({"mlp_bias": True}, UnsupportedModelError, "mlp_bias"),
        ({"num_key_value_heads": 3}, ModelLoadError, "multiple"),
        ({"hidden_size": -4}, ModelLoadError, "hidden_size"),
        ({"architectures": ["GPT2LMHeadModel"]}, UnsupportedModelError, "GPT2LMHeadModel"),
        ({"architectures": None}, ModelLoadError, "architectures"),
    ],
)
def test_bad_configs_raise_clear_errors(
    overrides: dict[str, Any], error: type[Exception], match: str
) -> None:
    raw = {**hf_dict(), **overrides}
    if "rope_scaling" in overrides:
        raw.pop("rope_parameters")  # the v5 key wins over the legacy one
    with pytest.raises(error, match=match):
        config_from_hf(raw)


def test_missing_required_key() -> None:
    raw = hf_dict()
    del raw["intermediate_size"]
    with pytest.raises(ModelLoadError, match="intermediate_size"):
        config_from_hf(raw)


def test_models_match_transformers_on_the_triton_kernels_too() -> None:
    """The parity tests above, rerun with every kernel forced onto Triton (the CPU
    interpreter here, compiled on a GPU): the whole model on the path CUDA takes,
    fused RoPE + cache write included. A subprocess, because the interpreter must be
    chosen before the kernel modules are first imported. ``--confcutdir`` keeps out
    tests/conftest.py: its database fixtures need drivers a bare GPU image lacks."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__)
    env = {**os.environ, "TRITON_INTERPRET": "1", "BOTKIT_KERNELS": "triton"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--confcutdir={here.parent}", str(here),
         "-k", "cpu and (greedy_decode or chunked_prefill or mixed_batch)"],
        cwd=here.parents[2], env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
